// Heat-bath updates of spin (+/-1) and categorical (Potts, K states) nodes of
// sparse graphs with real couplings, written once for the CPU loops (scalars
// and SIMD vectors over chains) and the CUDA kernels (one thread per node and
// chain).
//
// Floating point: float32 with explicit fused multiply-adds and an exp built
// from IEEE-exact operations (a table of 2^(j/16) and a cubic polynomial),
// contraction off; so the CPU
// (every level) and the GPU compute the same fields and probabilities and
// make the same decisions.
//
// Counter layout: the update of node i in chain c at sweep t uses the stream
// (seed, stream = t * 2^32 + i) at an index given by the chain only (spins:
// see spin_byte below; Potts: the 32-bit word of element c under the
// element-to-counter map of distributions.h): a pure function of
// (seed, sweep, node, chain), independent of the chain count and of the
// colouring.
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

// Round to the nearest integer, ties to even (IEEE roundToIntegralTiesToEven).
HB_HD float rint_f32(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  return __builtin_rintf(x);
#endif
}
#if defined(HB_HAVE_SIMD)
inline vf32 rint_f32(vf32 x) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf32>(
      _mm512_roundscale_ps(reinterpret_cast<__m512>(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
  return reinterpret_cast<vf32>(
      _mm256_round_ps(reinterpret_cast<__m256>(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
}
#endif

// min(x, c) and max(x, c) as select(x < c, x, c), select(x > c, x, c): c
// when x is NaN (one min/max instruction on AVX-512).
HB_HD float min_c(float x, float c) { return x < c ? x : c; }
HB_HD float max_c(float x, float c) { return x > c ? x : c; }
#if defined(__AVX512F__) && !defined(__CUDA_ARCH__)
inline vf32 min_c(vf32 x, float c) {
  return reinterpret_cast<vf32>(_mm512_min_ps(reinterpret_cast<__m512>(x), _mm512_set1_ps(c)));
}
inline vf32 max_c(vf32 x, float c) {
  return reinterpret_cast<vf32>(_mm512_max_ps(reinterpret_cast<__m512>(x), _mm512_set1_ps(c)));
}
#elif defined(HB_HAVE_SIMD) && defined(__AVX__) && !defined(__CUDA_ARCH__)
inline vf32 min_c(vf32 x, float c) {
  return reinterpret_cast<vf32>(_mm256_min_ps(reinterpret_cast<__m256>(x), _mm256_set1_ps(c)));
}
inline vf32 max_c(vf32 x, float c) {
  return reinterpret_cast<vf32>(_mm256_max_ps(reinterpret_cast<__m256>(x), _mm256_set1_ps(c)));
}
#elif defined(HB_HAVE_SIMD)
inline vf32 min_c(vf32 x, float c) { return select(x < c, x, K<vf32>(c)); }
inline vf32 max_c(vf32 x, float c) { return select(x > c, x, K<vf32>(c)); }
#endif

// 2^(j / 16), j = 0..15, rounded to float32 (bit patterns).
#define HB_EXP2_SIXTEENTHS                                                                                     \
  {0x3f800000u, 0x3f85aac3u, 0x3f8b95c2u, 0x3f91c3d3u, 0x3f9837f0u, 0x3f9ef532u, 0x3fa5fed7u, 0x3fad583fu, \
   0x3fb504f3u, 0x3fbd08a4u, 0x3fc5672au, 0x3fce248cu, 0x3fd744fdu, 0x3fe0ccdfu, 0x3feac0c7u, 0x3ff5257du}
constexpr u32 kExp2Sixteenths[16] = HB_EXP2_SIXTEENTHS;
#if defined(__CUDACC__)
static __constant__ u32 kExp2SixteenthsDevice[16] = HB_EXP2_SIXTEENTHS;
#endif

// 2^((k mod 16) / 16) from the table.
HB_HD float exp2_sixteenth(std::int32_t k) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(kExp2SixteenthsDevice[k & 15]);
#else
  return u32_as_f32(kExp2Sixteenths[k & 15]);
#endif
}
// y 2^floor(k / 16) (k / 16 rounded down), exact for results of at least 2^-126.
HB_HD float scale_sixteenths(float y, std::int32_t k) { return y * pow2i_f32((k - (k & 15)) / 16); }
#if defined(HB_HAVE_SIMD)
inline vf32 exp2_sixteenth(vi32 k) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf32>(_mm512_permutexvar_ps(
      reinterpret_cast<__m512i>(k), _mm512_loadu_ps(reinterpret_cast<const float*>(kExp2Sixteenths))));
#else
  const __m256i kk = reinterpret_cast<__m256i>(k);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(kExp2Sixteenths)), kk);
  const __m256 hi =
      _mm256_permutevar8x32_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(kExp2Sixteenths) + 8), kk);
  // bit 3 of k, moved to the sign bit, picks the upper half
  return reinterpret_cast<vf32>(_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(kk, 28))));
#endif
}
inline vf32 scale_sixteenths(vf32 y, vi32 k) { return y * pow2i_f32((k - (k & 15)) >> 4); }
#endif

// exp(x) in float32 for any x, clamped to [-87.3, 88.37], as 2^n 2^(j/16) e^r:
// k = rint(x 16/ln2) (the float product, ties to even), n = floor(k / 16),
// j = k mod 16; r = x - k ln2/16 in two fused multiply-adds (Cody-Waite: k
// times the 9-bit leading part is exact), |r| <= 0.0217; e^r - 1 as q = r +
// r^2 (1/2 + r/6) (truncation below 1e-8 relative); then t + t q with t the
// float 2^(j/16), times 2^n (an exact scaling: the results lie in [~1e-38,
// ~3e38]). Within 1.1 ulp of exp.
template <class F>
HB_HD F exp_f32(F x) {
  x = min_c(x, 88.37f);
  x = max_c(x, -87.3f);
  const F kf = rint_f32(x * 0x1.715476p+4f);  // 16 / ln 2
  F r = fma_(kf, K<F>(-0x1.63p-5f), x);       // ln2/16 = 0x1.63p-5 - 0x1.bd0106p-17
  r = fma_(kf, K<F>(0x1.bd0106p-17f), r);
  const F s = fma_(K<F>(0x1.555556p-3f), r, K<F>(0.5f));
  const F q = fma_(s, r * r, r);
  const auto k = to_i32_trunc(kf);
  const F t = exp2_sixteenth(k);
  return scale_sixteenths(fma_(t, q, t), k);
}

// Spin nodes: with d = 1 + exp(-2 beta f) in float32 (f = b_i + sum_j J_ij
// s_j, the local field), the new spin is up iff the exact real product
// U d < 2^32 for a uniform 32-bit U: P(up) = ceil(2^32 / d) / 2^32, i.e.
// 1 / d to 2^-32, with no division. U = (B << 24) | R, B a random byte, R 24
// random bits:
//   (B + 1) d <= 256  -> up   (whatever R),
//   B d >= 256        -> down (whatever R),
//   otherwise (a tie, probability 1/256) decide U d < 2^32 with R.
// Each test is the sign of one fused multiply-add, which is exact (float32
// for the byte tests, float64 for the tie), so CPU levels and the GPU decide
// alike. An update costs about 8 random bits: four updates per Philox word.
// The local field of a spin node, f = b_i + sum_k J_ik s_k (s_k = +/-1), is
// summed as f0 = b_i - J_i1 - J_i2 - ... (all neighbours down, CSR order),
// then group by group: the neighbours in CSR order form groups of
// kFieldGroup (the last one may be shorter), a group's sum is S = 0 + 2 J_ik
// + ... over its up neighbours in order, and f = f + S for each group in
// order. S takes one of 16 values, so the CPU looks it up in a table of the
// group (built by the same float32 additions) indexed by the four neighbour
// bits. The same float32 operations on the GPU.
constexpr int kFieldGroup = 4;

HB_HD float spin_field_base(float b, const float* w, i64 deg) {
  float f = b;
  for (i64 k = 0; k < deg; ++k) f = f - w[k];
  return f;
}

// S of the group of kFieldGroup (or fewer: n) weights w whose bit k of `up`
// is set.
HB_HD float spin_group_sum(const float* w, int n, u32 up) {
  float s = 0.0f;
  for (int k = 0; k < n; ++k)
    if ((up >> k) & 1u) s = s + (w[k] + w[k]);
  return s;
}

// f from f0 and the weights w[0..deg); up(k) the state of neighbour k.
template <class Up>
HB_HD float spin_field(float f0, const float* w, i64 deg, Up up) {
  float f = f0;
  for (i64 g = 0; g < deg; g += kFieldGroup) {
    const int n = deg - g < kFieldGroup ? static_cast<int>(deg - g) : kFieldGroup;
    u32 m = 0;
    for (int k = 0; k < n; ++k) m |= (up(g + k) ? 1u : 0u) << k;
    f = f + spin_group_sum(w + g, n, m);
  }
  return f;
}

template <class F>
HB_HD F spin_denominator(F f, F beta) {
  return exp_f32(-((beta + beta) * f)) + 1.0f;
}

HB_HD bool spin_tie_up(std::int32_t b, std::int32_t r, float d) {
  const double u = static_cast<double>((static_cast<u64>(b) << 24) | static_cast<u64>(r));
#if defined(__CUDA_ARCH__)
  return __fma_rn(u, static_cast<double>(d), -4294967296.0) < 0.0;
#else
  return __builtin_fma(u, static_cast<double>(d), -4294967296.0) < 0.0;
#endif
}

// Counter layout of the spin updates of node i at sweep t: stream
// sparse_stream(t, i); chains in groups of 256: byte q of word l of block
// 16 g + j is the byte B of chain 256 g + 16 (4 l + q) + j. The 24 tie bits
// R of chain c are word c % 4 of block 2^62 + c / 4, shifted right by 8.
constexpr u64 kTieBlock = u64(1) << 62;

HB_HD u32 spin_byte(const Words4& r, int k) { return (r.w[k >> 2] >> (8 * (k & 3))) & 0xFFu; }

HB_HD std::int32_t spin_tie_bits(u64 seed, u64 stream, u64 chain) {
  return static_cast<std::int32_t>(philox_block(seed, stream, kTieBlock + chain / 4).w[chain % 4] >> 8);
}

// The decision for one chain (scalar): byte b, denominator d.
HB_HD bool spin_decide(std::int32_t b, float d, u64 seed, u64 stream, u64 chain) {
  const float bf = static_cast<float>(b);
  if (hb_fmaf(bf + 1.0f, d, -256.0f) <= 0.0f) return true;
  if (hb_fmaf(bf, d, -256.0f) >= 0.0f) return false;
  return spin_tie_up(b, spin_tie_bits(seed, stream, chain), d);
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
