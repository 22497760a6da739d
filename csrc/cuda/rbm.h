// C++ API of the CUDA restricted Boltzmann machine kernels: device pointers,
// counts, leading dimensions (row strides in elements), (seed, stream,
// offset) and a cudaStream_t passed as void*. The argument structs are those
// of csrc/heatbath/rbm_args.h, with device pointers; scale and sigma with
// stride 0 are read from the host-side value given separately. Each function
// returns nullptr on success or the CUDA error string of the launch.
#pragma once
#include <cstdint>

#include "heatbath/rbm_args.h"

namespace heatbath {
namespace cuda {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

// scale_value: used when a.scale_stride == 0 (a.scale is then ignored).
const char* rbm_bernoulli_f32(const RbmBernoulliArgs<float>& a, float scale_value, void* stream);
const char* rbm_bernoulli_f64(const RbmBernoulliArgs<double>& a, double scale_value, void* stream);
// sigma_value / scale_value: used when the matching stride is 0.
const char* rbm_gaussian_f32(const RbmGaussianArgs<float>& a, float sigma_value, float scale_value,
                             void* stream);
const char* rbm_gaussian_f64(const RbmGaussianArgs<double>& a, double sigma_value, double scale_value,
                             void* stream);

}  // namespace cuda
}  // namespace heatbath
