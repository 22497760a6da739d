// C++ API of the CPU restricted Boltzmann machine kernels: the argument
// structs of csrc/heatbath/rbm_args.h (raw pointers, counts, leading
// dimensions, (seed, stream, offset)) with host pointers. Knows nothing of
// Python. The per-element formulas are in csrc/heatbath/rbm.h.
#pragma once
#include <cstdint>

#include "dispatch.h"
#include "heatbath/rbm_args.h"

namespace heatbath {
namespace cpu {

// Each returns the number of non-finite values of x it met (the pass is done
// anyway; the caller decides what to do with a non-zero count).
struct RbmTable {
  i64 (*bernoulli_f32)(const RbmBernoulliArgs<float>& a);
  i64 (*bernoulli_f64)(const RbmBernoulliArgs<double>& a);
  i64 (*gaussian_f32)(const RbmGaussianArgs<float>& a);
  i64 (*gaussian_f64)(const RbmGaussianArgs<double>& a);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(RbmTable, rbm_table)
