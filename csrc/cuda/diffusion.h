// C++ API of the CUDA Gaussian-diffusion step: the per-element map of
// csrc/heatbath/diffusion.h on device pointers, its coefficients already in
// the state's precision (computed once per call by the caller), a
// cudaStream_t passed as void*. Returns nullptr on success or the CUDA error
// string of the launch. Nothing here synchronizes with the host or
// allocates, so a step can be captured in a CUDA graph.
#pragma once
#include "heatbath/diffusion.h"

namespace heatbath {
namespace cuda {

// One sample's coefficients in the state precision T, the layout of a row of
// a device coefficient table (python/heatbath/diffusion/_kernels.py
// gpu_rows): the StepCoef order with r split into a hi and a lo part, then
// swap (0/1) and valid (0: a timestep the scheduler does not take).
enum GpuCoef : int {
  kGAx = 0,
  kGAm,
  kGC0,
  kGCh,
  kGPs,
  kGRhi,
  kGRlo,
  kGLo,
  kGHi,
  kGScale,
  kGSigma,
  kGMinLog,
  kGMaxLog,
  kGSwap,
  kGValid,
  kGRowWords = 16
};

template <class T>
struct CoefRow {
  T v[kGRowWords];
};

// Where a sample's coefficients come from.
enum CoefMode : int {
  kCoefRow = 0,       // `row` for every sample
  kCoefByTime = 1,    // table[t_b], t_b = tsteps[b * t_stride] (device timesteps)
  kCoefBySample = 2,  // table[b] (per-sample rows)
};

template <class T>
struct GpuStepArgs {
  i64 n_samples, inner;
  int mode;               // CoefMode
  CoefRow<T> row;         // kCoefRow
  const T* table;         // [table_rows, kGRowWords] (kCoefByTime, kCoefBySample)
  i64 table_rows;
  const void* tsteps;     // device timesteps, int32 or int64 (t_bytes), or null
  int t_bytes;
  i64 t_stride;           // in elements; 0: one timestep for all samples
  i64 t_expect;           // >= 0 (modes kCoefRow, kCoefBySample): every t_b must equal this
  const T* x;             // element (b, i) of an input p at p[b * p_ss + i]
  i64 x_ss;
  const T* m;
  i64 m_ss;
  const T* h;
  i64 h_ss;
  const T* v;
  i64 v_ss;
  const T* z;
  i64 z_ss;
  T* out;                 // [n_samples, inner] contiguous
  T* x0_out;
  T* z_out;
  StepFlags flags;
  u64 seed, stream, offset;
  // Device counters, added to: bad[0] non-finite model outputs (and
  // variances), bad[1] timesteps outside the table or not taken.
  i64* bad;
};

const char* diffusion_step_f32(const GpuStepArgs<float>& a, void* stream);
const char* diffusion_step_f64(const GpuStepArgs<double>& a, void* stream);

}  // namespace cuda
}  // namespace heatbath
