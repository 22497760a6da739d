// C++ API of the CPU Gaussian-diffusion kernels. Knows nothing of Python:
// raw pointers, counts, sample strides, (seed, stream, offset); see
// csrc/heatbath/diffusion.h for the per-element formula and StepArgs.
#pragma once
#include "dispatch.h"
#include "heatbath/diffusion.h"

namespace heatbath {
namespace cpu {

// Flags returned by a step: a model output (m, and v for var_mode 1 and 2)
// is NaN or infinite; the sample x is; the noise z is.
constexpr i64 kBadOutput = 1;
constexpr i64 kBadSample = 2;
constexpr i64 kBadNoise = 4;

struct DiffusionTable {
  // One fused step over a.n_samples * a.inner elements. Returns the flags
  // kBadOutput, kBadSample and kBadNoise of the non-finite inputs met (0 when all are
  // finite); the outputs are written regardless.
  i64 (*step_f32)(const StepArgs<float>& a);
  i64 (*step_f64)(const StepArgs<double>& a);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(DiffusionTable, diffusion_table)
