// C++ API of the CPU Gaussian-diffusion kernels. Knows nothing of Python:
// raw pointers, counts, sample strides, (seed, stream, offset); see
// csrc/heatbath/diffusion.h for the per-element formula and StepArgs.
#pragma once
#include "dispatch.h"
#include "heatbath/diffusion.h"

namespace heatbath {
namespace cpu {

struct DiffusionTable {
  // One fused step over a.n_samples * a.inner elements. Returns a positive
  // number when any model output (m, and v for var_mode 1 and 2) is NaN or
  // infinite, else 0; the outputs are written regardless.
  i64 (*step_f32)(const StepArgs<float>& a);
  i64 (*step_f64)(const StepArgs<double>& a);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(DiffusionTable, diffusion_table)
