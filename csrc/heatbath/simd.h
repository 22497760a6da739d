// Vector overloads of the operations in defines.h, for CPU translation units
// compiled with AVX2 or AVX-512 (GCC/Clang vector extensions plus a few
// intrinsics). The formulas in philox.h and distributions.h are templates
// over the element type, so the same source runs 8 or 16 lanes at a time.
#pragma once
#if !defined(__CUDACC__) && (defined(__AVX512F__) || defined(__AVX2__)) && \
    (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cstdint>

#define HB_HAVE_SIMD 1

namespace heatbath {
inline namespace HB_ISA {
namespace simd {

#if defined(__AVX512F__)
constexpr int kWidth = 16;
#define HB_VBYTES 64
#else
constexpr int kWidth = 8;
#define HB_VBYTES 32
#endif

typedef std::uint32_t vu32 __attribute__((vector_size(HB_VBYTES)));
typedef std::int32_t vi32 __attribute__((vector_size(HB_VBYTES)));
typedef float vf32 __attribute__((vector_size(HB_VBYTES)));

}  // namespace simd

using simd::vf32;
using simd::vi32;
using simd::vu32;

template <>
struct Splat<vf32> {
  static vf32 of(float x) { return vf32{} + x; }
};

inline vf32 as_f32(vu32 u) { return reinterpret_cast<vf32>(u); }
inline vu32 as_u32(vf32 x) { return reinterpret_cast<vu32>(x); }
inline vi32 as_i32(vu32 u) { return reinterpret_cast<vi32>(u); }
inline vf32 to_f32(vi32 i) { return __builtin_convertvector(i, vf32); }
inline vi32 to_i32_trunc(vf32 x) { return __builtin_convertvector(x, vi32); }
inline vf32 select(vi32 c, vf32 a, vf32 b) { return c ? a : b; }
inline vi32 select(vi32 c, vi32 a, vi32 b) { return c ? a : b; }

#if defined(__AVX512F__)
typedef __m512 hw_f32;
typedef __m512i hw_i;
inline hw_f32 hw_fma(hw_f32 a, hw_f32 b, hw_f32 c) { return _mm512_fmadd_ps(a, b, c); }
inline hw_f32 hw_sqrt(hw_f32 x) { return _mm512_sqrt_ps(x); }
inline void hw_mulhilo(hw_i a, hw_i mm, hw_i& hi, hw_i& lo) {
  const hw_i pe = _mm512_mul_epu32(a, mm);                         // even lanes
  const hw_i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mm);  // odd lanes
  lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}
inline hw_i hw_set1(std::uint32_t m) { return _mm512_set1_epi32(static_cast<int>(m)); }
#else
typedef __m256 hw_f32;
typedef __m256i hw_i;
inline hw_f32 hw_fma(hw_f32 a, hw_f32 b, hw_f32 c) { return _mm256_fmadd_ps(a, b, c); }
inline hw_f32 hw_sqrt(hw_f32 x) { return _mm256_sqrt_ps(x); }
inline void hw_mulhilo(hw_i a, hw_i mm, hw_i& hi, hw_i& lo) {
  const hw_i pe = _mm256_mul_epu32(a, mm);
  const hw_i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mm);
  lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}
inline hw_i hw_set1(std::uint32_t m) { return _mm256_set1_epi32(static_cast<int>(m)); }
#endif

inline vf32 fma_(vf32 a, vf32 b, vf32 c) {
  return reinterpret_cast<vf32>(
      hw_fma(reinterpret_cast<hw_f32>(a), reinterpret_cast<hw_f32>(b), reinterpret_cast<hw_f32>(c)));
}
inline vf32 sqrt_(vf32 x) { return reinterpret_cast<vf32>(hw_sqrt(reinterpret_cast<hw_f32>(x))); }
inline void mulhilo(std::uint32_t m, vu32 c, vu32& hi, vu32& lo) {
  hw_i h, l;
  hw_mulhilo(reinterpret_cast<hw_i>(c), hw_set1(m), h, l);
  hi = reinterpret_cast<vu32>(h);
  lo = reinterpret_cast<vu32>(l);
}

}  // namespace HB_ISA
}  // namespace heatbath
#endif
