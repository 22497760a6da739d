// C++ API of the CUDA Gaussian-diffusion step: the StepArgs of
// csrc/heatbath/diffusion.h with device pointers, a device counter of
// non-finite model outputs (added to, not reset) and a cudaStream_t passed as
// void*. Returns nullptr on success or the CUDA error string of the launch.
#pragma once
#include "heatbath/diffusion.h"

namespace heatbath {
namespace cuda {

const char* diffusion_step_f32(const StepArgs<float>& a, i64* bad, void* stream);
const char* diffusion_step_f64(const StepArgs<double>& a, i64* bad, void* stream);

}  // namespace cuda
}  // namespace heatbath
