// Common macros for code shared between the CPU loops and the CUDA kernels.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HB_HD __host__ __device__ __forceinline__
#else
#define HB_HD inline __attribute__((always_inline))
#endif

// Every CPU translation unit is compiled for one instruction-set level
// (baseline, AVX2, AVX-512: see CMakeLists.txt). Inline functions live in an
// inline namespace named after that level, so the linker can never hand
// AVX-512 code to a baseline caller.
#if !defined(HB_ISA)
#define HB_ISA isa_base
#endif

namespace heatbath {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

inline namespace HB_ISA {

HB_HD u32 f32_as_u32(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  u32 u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

HB_HD float u32_as_f32(u32 u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Fused multiply-add written out, so that CPU and GPU round the same way
// whatever the compiler would contract (the build turns contraction off).
HB_HD float hb_fmaf(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

HB_HD float hb_sqrtf(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return __builtin_sqrtf(x);
#endif
}

// Scalar forms of the few operations that the SIMD layer overloads
// (csrc/heatbath/simd.h), so that formulas written once as templates run on
// scalars (CUDA threads, CPU head/tail elements) and on CPU vectors alike.
HB_HD float as_f32(u32 u) { return u32_as_f32(u); }
HB_HD u32 as_u32(float x) { return f32_as_u32(x); }
HB_HD float to_f32(std::int32_t i) { return static_cast<float>(i); }
// A NaN (which the clamps of exp_f32 let through, from a NaN input) gives
// INT32_MIN, the value of x86's conversion, instead of undefined behaviour;
// every other caller passes values inside the int32 range.
HB_HD std::int32_t to_i32_trunc(float x) { return x == x ? static_cast<std::int32_t>(x) : INT32_MIN; }
HB_HD std::int32_t as_i32(u32 u) { return static_cast<std::int32_t>(u); }
HB_HD float fma_(float a, float b, float c) { return hb_fmaf(a, b, c); }
HB_HD float sqrt_(float x) { return hb_sqrtf(x); }
template <class T>
HB_HD T select(bool c, T a, T b) { return c ? a : b; }

// A float32 constant as an F (a scalar, or a vector with every lane set).
template <class F>
struct Splat {
  static HB_HD F of(float x) { return x; }
};
template <class F>
HB_HD F K(float x) { return Splat<F>::of(x); }

HB_HD void mulhilo(u32 m, u32 c, u32& hi, u32& lo) {
  const u64 p = static_cast<u64>(m) * c;
  hi = static_cast<u32>(p >> 32);
  lo = static_cast<u32>(p);
}

}  // namespace HB_ISA
}  // namespace heatbath

#include "simd.h"
