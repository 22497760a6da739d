// Transforms of Philox words into uniforms, normals, Bernoulli bits and
// integers, written once for the CPU loops (scalar and SIMD) and the CUDA
// kernels. The float32 paths use only IEEE-exact operations (+, -, *,
// explicit fma, sqrt, integer ops) and the build turns floating-point
// contraction off, so float32 results are identical to the bit on every CPU
// level and on the GPU.
//
// Element-to-counter map ("tiles"). A tile is kTileBlocks consecutive Philox
// blocks. A transform that takes k words per value (k = 1: float32 uniform,
// normal, Bernoulli; k = 2: float64 uniform and normal, integers) has
// V = 4 / k values per block and kTileBlocks * V values per tile. Element j:
//   tile  = j / (kTileBlocks * V),  r = j % (kTileBlocks * V)
//   block = tile * kTileBlocks + r % kTileBlocks
//   slot  = r / kTileBlocks         (value slot within the block, 0 .. V-1)
// so a tile is written as V contiguous runs of kTileBlocks values: whole
// SIMD stores on the CPU, one coalesced warp store per run on the GPU.
#pragma once
#include "defines.h"
#include "philox.h"

#include <cstring>

namespace heatbath {
inline namespace HB_ISA {

constexpr int kTileBlocks = 32;

struct ElementSlot {
  u64 block;
  int slot;
};

// words_per_value: 1 or 2.
HB_HD ElementSlot element_slot(u64 j, int words_per_value) {
  const u64 per_tile = static_cast<u64>(kTileBlocks) * (4 / words_per_value);
  const u64 tile = j / per_tile, r = j % per_tile;
  return ElementSlot{tile * kTileBlocks + r % kTileBlocks, static_cast<int>(r / kTileBlocks)};
}

// ---- uniforms -------------------------------------------------------------

// 23 random bits -> (k + 1/2) 2^-23, k in [0, 2^23): strictly inside (0, 1),
// in [2^-24, 1 - 2^-24], symmetric about 1/2, exact in float32 (k + 1/2
// needs 24 significant bits).
//
// Formed without an integer-to-float conversion: the 23 bits as the mantissa
// of a float in [1, 2), minus 1 (exact), plus 2^-24 (exact): the same value
// as k 2^-23 + 2^-24.
template <class U>
HB_HD auto unit_f32(U w) {
  return (as_f32((w >> 9) | 0x3f800000u) - 1.0f) + 0x1p-24f;
}

// 52 random bits from two words -> (k + 1/2) 2^-52, k in [0, 2^52): strictly
// inside (0, 1), exact in float64.
HB_HD double unit_f64(u32 hi, u32 lo) {
  const u64 k = (static_cast<u64>(hi) << 20) | static_cast<u64>(lo >> 12);
  return static_cast<double>(static_cast<std::int64_t>(k)) * 0x1p-52 + 0x1p-53;
}

// ---- float32 elementary functions for Box-Muller ------------------------

// Natural log for x in [2^-32, 1] (positive, normal): cephes logf polynomial,
// about 1 ulp, branch-free.
template <class F>
HB_HD F log_unit_f32(F x) {
  const auto bits = as_u32(x);
  auto e = as_i32(bits >> 23) - 126;
  F m = as_f32((bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  const auto small = m < 0.707106781186547524f;
  e = select(small, e - 1, e);
  m = select(small, m + m - 1.0f, m - 1.0f);
  const F z = m * m;
  F y = fma_(m, K<F>(7.0376836292e-2f), K<F>(-1.1514610310e-1f));
  y = fma_(y, m, K<F>(1.1676998740e-1f));
  y = fma_(y, m, K<F>(-1.2420140846e-1f));
  y = fma_(y, m, K<F>(1.4249322787e-1f));
  y = fma_(y, m, K<F>(-1.6668057665e-1f));
  y = fma_(y, m, K<F>(2.0000714765e-1f));
  y = fma_(y, m, K<F>(-2.4999993993e-1f));
  y = fma_(y, m, K<F>(3.3333331174e-1f));
  y = y * m * z;
  const F fe = to_f32(e);
  y = fma_(fe, K<F>(-2.12194440e-4f), y);
  y = fma_(z, K<F>(-0.5f), y);
  return fma_(fe, K<F>(0.693359375f), m + y);
}

// sin and cos of 2 pi u for u in (0, 1) on the 2^-23 grid: reduce to the
// nearest quarter turn (exact), then cephes minimax polynomials on
// [-pi/4, pi/4].
//
// The nearest integer q of v = 4u by adding and subtracting 1.5 2^23 (exact
// for 0 <= v <= 4; v is never halfway between integers on the 2^-23 grid, so
// this is floor(v + 1/2)); the low bits of the sum's pattern are q's.
template <class F>
HB_HD void sincos_2pi_f32(F u, F& s, F& c) {
  const F v = 4.0f * u;  // exact
  const F big = v + 12582912.0f;  // 1.5 2^23: integer spacing 1
  const auto q = as_i32(as_u32(big));
  const F r = (v - (big - 12582912.0f)) * 1.57079632679489662f;  // [-pi/4, pi/4]
  const F r2 = r * r;
  F ps = fma_(K<F>(-1.9515295891e-4f), r2, K<F>(8.3321608736e-3f));
  ps = fma_(ps, r2, K<F>(-1.6666654611e-1f));
  const F sr = fma_(ps * r2, r, r);
  F pc = fma_(K<F>(2.443315711809948e-5f), r2, K<F>(-1.388731625493765e-3f));
  pc = fma_(pc, r2, K<F>(4.166664568298827e-2f));
  const F cr = fma_(pc * r2, r2, fma_(K<F>(-0.5f), r2, K<F>(1.0f)));
  const auto quadrant = q & 3;
  const auto swap = (quadrant & 1) != 0;
  const F s0 = select(swap, cr, sr);
  const F c0 = select(swap, sr, cr);
  s = select((quadrant & 2) != 0, -s0, s0);
  c = select(((quadrant + 1) & 2) != 0, -c0, c0);
}

// Box-Muller on two words -> two standard normals. The radius uses 31 bits,
// u0 in [2^-32, 1], so |z| reaches 6.66; the angle uses 23 bits.
template <class U, class F>
HB_HD void box_muller_f32(U w0, U w1, F& z0, F& z1) {
  const F u0 = to_f32(as_i32(w0 >> 1)) * 0x1p-31f + 0x1p-32f;
  const F r = sqrt_(-2.0f * log_unit_f32(u0));
  F s, c;
  sincos_2pi_f32(unit_f32(w1), s, c);
  z0 = r * c;
  z1 = r * s;
}

// ---- float64 elementary functions for Box-Muller ------------------------
//
// Written with IEEE-exact operations only (+, -, *, /, sqrt, explicit fma,
// integer ops): no libm, so every CPU level and the GPU give the same bits.
// Polynomials of fdlibm (Sun Microsystems, 1993), within about 1 ulp.

HB_HD double fma_f64(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}
HB_HD double sqrt_f64(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return __builtin_sqrt(x);
#endif
}
HB_HD double div_f64(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
HB_HD u64 f64_as_u64(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<u64>(__double_as_longlong(x));
#else
  u64 u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
HB_HD double u64_as_f64(u64 u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Natural log for a positive normal x (fdlibm e_log.c): x = 2^k (1 + f),
// sqrt(2)/2 < 1 + f < sqrt(2), s = f / (2 + f), log(1 + f) = f - s (f - R).
HB_HD double log_f64(double x) {
  const u64 bits = f64_as_u64(x);
  std::int32_t k = static_cast<std::int32_t>(bits >> 52) - 1023;
  u64 mb = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  // [1, 2)
  if ((mb & 0x000fffffffffffffull) > 0x6a09e667f3bcdull) {          // m > sqrt(2)
    mb = (mb & 0x000fffffffffffffull) | 0x3fe0000000000000ull;       // m / 2
    k += 1;
  }
  const double f = u64_as_f64(mb) - 1.0;
  const double s = div_f64(f, 2.0 + f);
  const double z = s * s, w = z * z;
  const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  const double dk = static_cast<double>(k);
  return dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + dk * 1.90821492927058770002e-10)) - f);
}

// sin and cos of x + y on [-pi/4, pi/4], y a tail (fdlibm k_sin.c, k_cos.c).
HB_HD double ksin_f64(double x, double y) {
  const double z = x * x, v = z * x;
  const double r = 8.33333333332248946124e-03 +
                   z * (-1.98412698298579493134e-04 +
                        z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
  return x - ((z * (0.5 * y - v * r) - y) - v * -1.66666666666666324348e-01);
}
HB_HD double kcos_f64(double x, double y) {
  const double z = x * x;
  const double r =
      z * (4.16666666666666019037e-02 +
           z * (-1.38888888888741095749e-03 +
                z * (2.48015872894767294178e-05 +
                     z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
  const u64 ax = f64_as_u64(x) & 0x7fffffffffffffffull;
  if (ax < 0x3fd3333300000000ull) return 1.0 - (0.5 * z - (z * r - x * y));  // |x| < 0.3
  // qx: x/4 with the low word cleared, or 0.28125 for |x| > 0.78125
  const double qx = ax > 0x3fe9000000000000ull ? 0.28125 : u64_as_f64((ax - 0x0020000000000000ull) & 0xffffffff00000000ull);
  const double hz = 0.5 * z - qx, a = 1.0 - qx;
  return a - (hz - (z * r - x * y));
}

// sin and cos of 2 pi u for u in (0, 1): the nearest quarter turn q (exact),
// then r = (4u - q) pi/2 as a double-double (its product error from an fma).
HB_HD void sincos_2pi_f64(double u, double& s, double& c) {
  const double v = 4.0 * u;  // exact
  const double qf = static_cast<double>(static_cast<std::int64_t>(v + 0.5));  // v >= 0, never a tie
  const double y = v - qf;                                                  // exact, [-1/2, 1/2]
  const double rh = y * 1.57079632679489655800e+00;
  const double rl = fma_f64(y, 1.57079632679489655800e+00, -rh) + y * 6.12323399573676603587e-17;
  const double r = rh + rl, rt = rl - (r - rh);
  const double sr = ksin_f64(r, rt), cr = kcos_f64(r, rt);
  const int quadrant = static_cast<int>(qf) & 3;
  const double s0 = (quadrant & 1) ? cr : sr;
  const double c0 = (quadrant & 1) ? sr : cr;
  s = (quadrant & 2) ? -s0 : s0;
  c = ((quadrant + 1) & 2) ? -c0 : c0;
}

HB_HD void box_muller_f64(double u0, double u1, double& z0, double& z1) {
  const double r = sqrt_f64(-2.0 * log_f64(u0));
  double s, c;
  sincos_2pi_f64(u1, s, c);
  z0 = r * c;
  z1 = r * s;
}

// ---- one block -> its values (slot order) ---------------------------------

HB_HD void uniform_f32_block(u64 seed, u64 stream, u64 block, float out[4]) {
  const Words4 r = philox_block(seed, stream, block);
  for (int l = 0; l < 4; ++l) out[l] = unit_f32(r.w[l]);
}

HB_HD void uniform_f64_block(u64 seed, u64 stream, u64 block, double out[2]) {
  const Words4 r = philox_block(seed, stream, block);
  out[0] = unit_f64(r.w[0], r.w[1]);
  out[1] = unit_f64(r.w[2], r.w[3]);
}

// Slots (0, 1): cosine and sine of Box-Muller on words (0, 1); slots (2, 3):
// the same on words (2, 3).
HB_HD void normal_f32_block(u64 seed, u64 stream, u64 block, float out[4]) {
  const Words4 r = philox_block(seed, stream, block);
  box_muller_f32(r.w[0], r.w[1], out[0], out[1]);
  box_muller_f32(r.w[2], r.w[3], out[2], out[3]);
}

// Slot 0: cosine, slot 1: sine, from the block's two 52-bit uniforms.
HB_HD void normal_f64_block(u64 seed, u64 stream, u64 block, double out[2]) {
  const Words4 r = philox_block(seed, stream, block);
  box_muller_f64(unit_f64(r.w[0], r.w[1]), unit_f64(r.w[2], r.w[3]), out[0], out[1]);
}

// ---- Bernoulli and integers ----------------------------------------------

// P(w < t) = t / 2^32 for a uniform 32-bit word w. t = floor(p 2^32) is exact
// for float32 and float64 p (a power-of-two scaling), so CPU and GPU agree.
// p outside [0, 1] (or NaN) gives kBadThreshold, which callers report.
constexpr u64 kBadThreshold = u64(1) << 33;

template <class T>
HB_HD u64 bernoulli_threshold(T p) {
  if (!(p >= T(0) && p <= T(1))) return kBadThreshold;
  return static_cast<u64>(static_cast<double>(p) * 4294967296.0);
}

// Uniform integer in [0, range) from a 64-bit word by multiply-shift
// (Lemire); bias at most range / 2^64.
HB_HD u64 mulhi64(u64 a, u64 b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<u64>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

HB_HD void integers_block(u64 seed, u64 stream, u64 block, u64 range, u64 out[2]) {
  const Words4 r = philox_block(seed, stream, block);
  out[0] = mulhi64((static_cast<u64>(r.w[0]) << 32) | r.w[1], range);
  out[1] = mulhi64((static_cast<u64>(r.w[2]) << 32) | r.w[3], range);
}

}  // namespace HB_ISA
}  // namespace heatbath
