// Gaussian diffusion: the per-element formula of every fused step (forward
// q_sample, posterior mean, DDPM, DDIM, DPM-Solver++(2M), Sohl-Dickstein
// reverse step), written once for the CPU loops (scalar and SIMD) and the
// CUDA kernels.
//
// Every step of a Gaussian diffusion sampler is, per element, an affine map
// of the current sample x, the model output m, an optional history h (the
// previous data prediction of a multistep solver) and a standard normal z,
// with an optionally clipped data prediction x0 = clip(px x + pm m) in the
// middle:
//
//   x0   = ps * (a + r * b),  (a, b) = (x, m), or (m, x) when swapped
//   x0   = min(max(x0, lo), hi) * scale            (clipping / thresholding)
//   std  = sigma                                    (var_mode 0: per sample)
//        | sigma exp(0.5 (f max_log + (1 - f) min_log)),  (var_mode 1:
//          f = (v + 1) / 2                     learned range, v per element)
//        | sigma sqrt(v)                            (var_mode 2: v is the
//                                                    model's variance)
//   out  = ax * x + am * m + c0 * x0 + ch * h + std * z
//
// The coefficients are per sample (per-sample timesteps), computed by the
// Python layer in float64 from the schedule and rounded once to the state
// dtype; see python/heatbath/diffusion/schedulers.py for each sampler's map.
//
// The data prediction px x + pm m cancels badly at large t (epsilon
// prediction: px = 1/sqrt(abar) ~ 150, and x0 = O(1)). It is written as
// ps (a + r b) with |r| <= 1 and r split into a float hi part and a lo
// remainder, a + r b formed by two fused multiply-adds: the sum is then
// rounded once, relative to itself, and x0 keeps full float32 accuracy
// where a plain px x + pm m would lose 7 bits.
#pragma once
#include "defines.h"
#include "distributions.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace heatbath {

// Layout of one sample's coefficient row (float64, kStepCoefs values).
enum StepCoef : int {
  kCoefAx = 0,
  kCoefAm,
  kCoefC0,
  kCoefCh,
  kCoefPs,  // x0 = ps (a + r b)
  kCoefR,
  kCoefLo,
  kCoefHi,
  kCoefScale,
  kCoefSigma,
  kCoefMinLog,
  kCoefMaxLog,
  kCoefSwap,  // nonzero: (a, b) = (m, x)
  kStepCoefs
};

enum StepVarMode : int { kVarSigma = 0, kVarLearnedRange = 1, kVarGiven = 2 };

// Which optional terms a step has (uniform over a call).
struct StepFlags {
  bool has_m;     // the am * m term (and m is counted for non-finite values)
  bool has_h;     // the ch * h term
  bool use_x0;    // the c0 * x0 term
  bool clip;      // x0 is clipped and scaled
  bool want_x0;   // x0 is written out
  bool has_noise; // the std * z term
  int var_mode;   // StepVarMode
};

inline namespace HB_ISA {

HB_HD float exp_(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return std::exp(x);
#endif
}
HB_HD double exp_(double x) { return exp(x); }
HB_HD double fma_(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}
HB_HD double sqrt_(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return __builtin_sqrt(x);
#endif
}

// One sample's coefficients as values of the element type F (a float, a
// double, or a SIMD vector with every lane equal).
template <class F>
struct StepCoefs {
  F ax, am, c0, ch, ps, rhi, rlo, lo, hi, scale, sigma, min_log, max_log;
  bool swap;
};

// A float64 coefficient as an F: rounded once to the state's precision,
// then splatted over the lanes of a vector.
template <class F>
struct CoefAs {
  static HB_HD F of(double c) { return static_cast<F>(c); }
};

// The scalar type of F's lanes.
template <class F>
struct LaneOf {
  typedef F type;
};
#if defined(HB_HAVE_SIMD)
template <>
struct CoefAs<vf32> {
  static vf32 of(double c) { return Splat<vf32>::of(static_cast<float>(c)); }
};
template <>
struct LaneOf<vf32> {
  typedef float type;
};
#endif

template <class F>
HB_HD StepCoefs<F> load_step_coefs(const double* c) {
  auto v = [&](int k) { return CoefAs<F>::of(c[k]); };
  typedef typename LaneOf<F>::type L;
  const double r = c[kCoefR];
  const double r_hi = static_cast<double>(static_cast<L>(r));
  return StepCoefs<F>{v(kCoefAx),    v(kCoefAm),  v(kCoefC0),          v(kCoefCh),          v(kCoefPs),
                      CoefAs<F>::of(r_hi), CoefAs<F>::of(r - r_hi), v(kCoefLo),  v(kCoefHi), v(kCoefScale),
                      v(kCoefSigma), v(kCoefMinLog), v(kCoefMaxLog), c[kCoefSwap] != 0.0};
}

// The clipped data prediction ps (a + r b) with (a, b) = (x, m) or (m, x).
template <class F>
HB_HD F step_x0(const StepCoefs<F>& k, F x, F m, bool clip) {
  const F a = k.swap ? m : x, b = k.swap ? x : m;
  F x0 = k.ps * fma_(k.rlo, b, fma_(k.rhi, b, a));
  if (clip) {
    x0 = select(x0 < k.lo, k.lo, x0);
    x0 = select(x0 > k.hi, k.hi, x0);
    x0 = x0 * k.scale;
  }
  return x0;
}

// The whole per-element step. std is computed by the caller for var_mode 1
// and 2 (step_std below) and passed in; for var_mode 0 it is k.sigma.
template <class F>
HB_HD F step_out(const StepCoefs<F>& k, F x, F m, F h, F x0, F sd, F z, const StepFlags& f) {
  F y = k.ax * x;
  if (f.has_m) y = y + k.am * m;
  if (f.use_x0) y = y + k.c0 * x0;
  if (f.has_h) y = y + k.ch * h;
  if (f.has_noise) y = y + sd * z;
  return y;
}

// Per-element standard deviation for var_mode 1 (learned range, scalar only)
// and 2 (given variance); sigma multiplies it (0 switches the noise off for
// a sample, e.g. at t = 0).
template <class T>
HB_HD T step_std_scalar(const StepCoefs<T>& k, T v, int var_mode) {
  if (var_mode == kVarLearnedRange) {
    const T frac = (v + T(1)) * T(0.5);
    return k.sigma * exp_(T(0.5) * (frac * k.max_log + (T(1) - frac) * k.min_log));
  }
  if (var_mode == kVarGiven) return k.sigma * sqrt_(v);
  return k.sigma;
}

// Non-finite test that also works on SIMD vectors: x - x is 0 for finite x
// and NaN for NaN or +-inf.
template <class F>
HB_HD auto not_finite(F x) {
  const F d = x - x;
  return d != d;
}

// One element with scalar arithmetic in A (the state type). Returns the
// output; writes x0 and whether m or v is not finite.
template <class T, class A>
HB_HD T step_scalar(const StepCoefs<A>& k, const StepFlags& f, T x, T m, T h, T v, T z, T& x0_out, bool& bad) {
  const A xa = static_cast<A>(x), ma = static_cast<A>(m);
  A x0 = A(0);
  if (f.use_x0 || f.want_x0) x0 = step_x0(k, xa, ma, f.clip);
  A sd = k.sigma;
  bad = f.has_m && not_finite(m);
  if (f.var_mode != kVarSigma) {
    bad = bad || not_finite(v);
    sd = step_std_scalar(k, static_cast<A>(v), f.var_mode);
  }
  x0_out = static_cast<T>(x0);
  return static_cast<T>(step_out(k, xa, ma, static_cast<A>(h), x0, sd, static_cast<A>(z), f));
}


}  // namespace HB_ISA

// Arguments of one fused step over n_samples * inner elements (C++ API of
// the CPU and CUDA kernels; device pointers for CUDA). Element (b, i) of an
// input p lives at p[b * p_ss + i] (p_ss: the sample stride); outputs are
// contiguous [n_samples, inner]. Optional pointers may be null.
template <class T>
struct StepArgs {
  i64 n_samples, inner;
  const double* coef;  // [n_samples or 1, kStepCoefs], float64
  i64 coef_stride;     // kStepCoefs, or 0 to broadcast one row
  const T* x;          // current sample (x_t; x0 for q_sample)
  i64 x_ss;
  const T* m;  // model output (nullable)
  i64 m_ss;
  const T* h;  // history: previous data prediction (nullable)
  i64 h_ss;
  const T* v;  // per-element variance input (var_mode 1, 2; nullable)
  i64 v_ss;
  const T* z;  // given standard normals (nullable: drawn from Philox)
  i64 z_ss;
  T* out;     // [n_samples, inner]
  T* x0_out;  // [n_samples, inner] (nullable)
  T* z_out;   // [n_samples, inner]: the normals used (nullable)
  StepFlags flags;
  // Drawn normal of element (b, i): element offset + b * inner + i of the
  // Philox normal stream (seed, stream), i.e. heatbath.random.normal.
  u64 seed, stream, offset;
};

}  // namespace heatbath
