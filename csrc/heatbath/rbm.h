// Per-element formulas of the restricted Boltzmann machine samplers, written
// once for the CPU loops (scalar and SIMD) and the CUDA kernels.
//
// A Gibbs half-step of an RBM is a GEMM (numpy/cupy) into a buffer of
// pre-activations x, followed by one pass that adds the bias, applies the
// conditional distribution and draws. With a per-row inverse temperature s
// (1 for the model itself; AIS and parallel tempering use s in [0, 1]) and an
// optional base-rate bias a (the visible biases of the AIS base model):
//
//   Bernoulli units: u = s (x + b) + (1 - s) a,   p = sigmoid(u),
//                    sample = [w < floor(p 2^32)]  (w: one Philox word)
//   Gaussian units:  mean = b + sigma s x,        sample = b + sigma (s x + z)
//                    (z: one standard normal, Box-Muller as in distributions.h)
//
// Element (r, c) of a rows x cols draw is stream element
// offset + r * cols + c of (seed, stream), with the element-to-counter map of
// distributions.h. So an RBM draw equals heatbath.random.bernoulli(p, seed,
// offset, stream=stream) (or bias + sigma * (s x + normal(...))) on the same
// probabilities, bit for bit, on every CPU level and on the GPU.
//
// The float32 paths use only IEEE-exact operations (+, -, *, /, explicit fma,
// integer ops) and the build turns contraction off, so float32 results are
// identical on every CPU level and on the GPU. The float64 paths use each
// side's libm exp.
#pragma once
#include "defines.h"
#include "distributions.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace heatbath {
inline namespace HB_ISA {

// Signed 32-bit integer -> its bits as u32 (scalar; vectors below).
HB_HD u32 i32_bits(std::int32_t i) { return static_cast<u32>(i); }
#if defined(HB_HAVE_SIMD)
inline vu32 i32_bits(vi32 i) { return reinterpret_cast<vu32>(i); }
#endif

// exp(x) for float32 (cephes expf: Cody-Waite reduction by ln 2, degree-5
// minimax polynomial, about 1 ulp). x is clamped to [-87, 88], so the result
// is a positive normal float in [exp(-87), exp(88)].
template <class F>
HB_HD F exp_f32(F x) {
  x = select(x < K<F>(-87.0f), K<F>(-87.0f), x);
  x = select(x > K<F>(88.0f), K<F>(88.0f), x);
  F fx = fma_(x, K<F>(1.44269504088896341f), K<F>(0.5f));
  const F t = to_f32(to_i32_trunc(fx));
  fx = select(t > fx, t - 1.0f, t);  // floor
  F r = fma_(fx, K<F>(-0.693359375f), x);
  r = fma_(fx, K<F>(2.12194440e-4f), r);
  const F z = r * r;
  F y = fma_(K<F>(1.9875691500e-4f), r, K<F>(1.3981999507e-3f));
  y = fma_(y, r, K<F>(8.3334519073e-3f));
  y = fma_(y, r, K<F>(4.1665795894e-2f));
  y = fma_(y, r, K<F>(1.6666665459e-1f));
  y = fma_(y, r, K<F>(5.0000001201e-1f));
  y = fma_(y, z, r) + 1.0f;
  const auto n = to_i32_trunc(fx);
  // the exponent bits shifted as unsigned, and a NaN fx converted to a
  // defined int (to_i32_trunc): a NaN x (which the clamps let through) gives a
  // NaN result (y is NaN), not undefined behaviour
  return y * as_f32(i32_bits(n + 127) << 23);
}

// sigmoid(u) = 1 / (1 + exp(-u)), in [0, 1].
template <class F>
HB_HD F sigmoid_f32(F u) {
  return K<F>(1.0f) / (exp_f32(-u) + 1.0f);
}

// Bernoulli bit for a float32 probability p in [0, 1] and a uniform word w:
// exactly [w < floor(p 2^32)] (distributions.h, bernoulli_threshold), in
// float32 arithmetic that vectorizes. With a = w >> 8 (24 bits, exact in
// float32), beta = (w & 255) + 1 and y = p 2^24 (exact):
//   w < floor(p 2^32)  <=>  w + 1 <= p 2^32  <=>  y - a >= beta / 256,
// and y - a is computed exactly whenever it can be below beta / 256 <= 1
// (Sterbenz, or a = 0), so the rounded comparison is the exact one.
// Returns a mask (bool, or an all-ones lane for vectors).
template <class U, class F>
HB_HD auto bernoulli_bit_f32(U w, F p) {
  const F a = to_f32(as_i32(w >> 8));
  const F beta = (to_f32(as_i32(w & 255u)) + 1.0f) * 0.00390625f;
  return (p * 16777216.0f - a) >= beta;
}

// One Bernoulli unit in float32: probability and 0/1 sample.
template <class U, class F>
HB_HD void bernoulli_unit_f32(F x, F b, F a, F s, U w, F& p, F& bit) {
  const F u = fma_(K<F>(1.0f) - s, a, s * (x + b));
  p = sigmoid_f32(u);
  bit = select(bernoulli_bit_f32(w, p), K<F>(1.0f), K<F>(0.0f));
}

// One Gaussian unit in float32: mean and sample from the normal z.
template <class F>
HB_HD void gaussian_unit_f32(F x, F b, F sigma, F s, F z, F& mean, F& sample) {
  const F sx = s * x;
  mean = fma_(sigma, sx, b);
  sample = fma_(sigma, sx + z, b);
}

// ---- float64 (scalar) -----------------------------------------------------

HB_HD double sigmoid_f64(double u) {
  return 1.0 / (1.0 + exp(-u));
}

HB_HD void bernoulli_unit_f64(double x, double b, double a, double s, u32 w, double& p, double& bit) {
  const double u = s * (x + b) + (1.0 - s) * a;
  p = sigmoid_f64(u);
  bit = static_cast<u64>(w) < bernoulli_threshold(p) ? 1.0 : 0.0;
}

HB_HD void gaussian_unit_f64(double x, double b, double sigma, double s, double z, double& mean,
                             double& sample) {
  const double sx = s * x;
  mean = b + sigma * sx;
  sample = b + sigma * (sx + z);
}

}  // namespace HB_ISA
}  // namespace heatbath
