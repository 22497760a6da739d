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

struct RbmTable {
  void (*bernoulli_f32)(const RbmBernoulliArgs<float>& a);
  void (*bernoulli_f64)(const RbmBernoulliArgs<double>& a);
  void (*gaussian_f32)(const RbmGaussianArgs<float>& a);
  void (*gaussian_f64)(const RbmGaussianArgs<double>& a);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(RbmTable, rbm_table)
