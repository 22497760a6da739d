// Heat-bath updates of spin (+/-1) and categorical (Potts, K states) nodes of
// sparse graphs with real couplings, written once for the CPU loops (scalars
// and SIMD vectors over chains) and the CUDA kernels (one thread per node and
// chain).
//
// Floating point: float32 with explicit fused multiply-adds and an exp built
// from IEEE-exact operations (cephes polynomial), contraction off; so the CPU
// (every level) and the GPU compute the same fields and probabilities and
// make the same decisions.
//
// Counter layout: the update of node i in chain c at sweep t uses the 32-bit
// word of element c of the stream (seed, stream = t * 2^32 + i) under the
// element-to-counter map of distributions.h (tiles of 128 chains): a pure
// function of (seed, sweep, node, chain), independent of the chain count and
// of the colouring.
#pragma once
#include "defines.h"
#include "distributions.h"
#include "philox.h"

namespace heatbath {
inline namespace HB_ISA {

HB_HD u64 sparse_stream(u64 sweep, u64 node) { return (sweep << 32) + node; }

HB_HD float pow2i_f32(std::int32_t n) { return u32_as_f32(static_cast<u32>(n + 127) << 23); }
#if defined(HB_HAVE_SIMD)
inline vf32 pow2i_f32(vi32 n) { return reinterpret_cast<vf32>((n + 127) << 23); }
#endif

// exp(x) in float32 for any x (clamped to [-87.3, 88.7]: results in
// [~1e-38, ~3e38]); cephes expf polynomial, about 1 ulp.
template <class F>
HB_HD F exp_f32(F x) {
  x = select(x > 88.7f, K<F>(88.7f), x);
  x = select(x < -87.3f, K<F>(-87.3f), x);
  const F fx = x * 1.44269504088896341f;
  const auto n = to_i32_trunc(fx + select(fx < 0.0f, K<F>(-0.5f), K<F>(0.5f)));
  const F fn = to_f32(n);
  F r = fma_(fn, K<F>(-0.693359375f), x);
  r = fma_(fn, K<F>(2.12194440e-4f), r);
  F p = fma_(K<F>(1.9875691500e-4f), r, K<F>(1.3981999507e-3f));
  p = fma_(p, r, K<F>(8.3334519073e-3f));
  p = fma_(p, r, K<F>(4.1665795894e-2f));
  p = fma_(p, r, K<F>(1.6666665459e-1f));
  p = fma_(p, r, K<F>(5.0000001201e-1f));
  const F y = fma_(p, r * r, r) + 1.0f;
  return y * pow2i_f32(n);
}

// New spin of a +/-1 node with local field f (bias + sum_j J_ij s_j) at
// inverse temperature beta, from a 32-bit word w: up with probability
// 1 / (1 + exp(-2 beta f)), decided as u (1 + exp(-2 beta f)) < 1 with
// u = unit_f32(w) in (0, 1).
template <class F, class U>
HB_HD auto spin_up(F f, F beta, U w) {
  const F e = exp_f32(-((beta + beta) * f));
  return unit_f32(w) * (e + 1.0f) < 1.0f;
}

// Potts: weights a[0..K) = bias + sum_j J_ij [s_j == k]; returns the new
// state drawn with probability proportional to exp(beta a_k), by inverse CDF
// on u = unit_f32(w).
HB_HD int potts_draw(const float* a, int K, float beta, u32 w) {
  float m = beta * a[0];
  for (int k = 1; k < K; ++k) m = beta * a[k] > m ? beta * a[k] : m;
  float total = 0.0f;
  float e[64];
  for (int k = 0; k < K; ++k) {
    e[k] = exp_f32(beta * a[k] - m);
    total = total + e[k];
  }
  const float target = unit_f32(w) * total;
  float cum = 0.0f;
  for (int k = 0; k < K - 1; ++k) {
    cum = cum + e[k];
    if (target < cum) return k;
  }
  return K - 1;
}

// Word of chain c in the stream of (seed, sweep, node).
HB_HD u32 sparse_word(u64 seed, u64 stream, u64 chain) {
  const ElementSlot es = element_slot(chain, 1);
  return philox_block(seed, stream, es.block).w[es.slot];
}

constexpr int kPottsMaxStates = 64;

}  // namespace HB_ISA
}  // namespace heatbath
