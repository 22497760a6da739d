// CPU loops over the sparse-graph updates of csrc/heatbath/sparse.h.
// Compiled once per instruction-set level; each copy exports its SparseTable.
// For each node of a block, the chains are taken 256 at a time (spins: one
// group of 16 Philox blocks; Potts: 128, one tile of 32 blocks) and the
// updates run on SIMD vectors of chains (16 on AVX-512, 8 on AVX2),
// neighbour states read contiguously. On AVX-512 CPUs with VBMI and GFNI
// the spin fields come from tables indexed by transposed neighbour bits
// (field tables, below).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// the first scheduling pass interleaves the independent chains of operations
// of the spin updates with field tables (about 4% on Zen 4)
#pragma GCC optimize("schedule-insns", "sched-pressure")
#endif
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "heatbath/sparse.h"
#include "sparse.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

using cpu::SparseGraph;
using cpu::SparseSchedule;

constexpr i64 kTile = 4 * kTileBlocks;  // chains per Philox tile (128)

// The 128 words of tile t of stream (seed, stream), by chain offset r:
// element r of the tile is word r / 32 of block 32 t + r % 32.
inline void tile_words(u64 seed, u64 stream, u64 t, u32 out[kTile]) {
#if defined(HB_HAVE_SIMD)
  constexpr int kChains = kTileBlocks / simd::kWidth;
  vu32 c[kChains][4];
  const u64 base = t * kTileBlocks;
  vu32 lane;
  for (int i = 0; i < simd::kWidth; ++i) lane[i] = static_cast<u32>(i);
  for (int v = 0; v < kChains; ++v) {
    c[v][0] = lane + static_cast<u32>(base + v * simd::kWidth);
    c[v][1] = vu32{} + static_cast<u32>(base >> 32);
    c[v][2] = vu32{} + static_cast<u32>(stream);
    c[v][3] = vu32{} + static_cast<u32>(stream >> 32);
  }
  philox4x32_10_n<kChains>(c, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
  for (int v = 0; v < kChains; ++v)
    for (int l = 0; l < 4; ++l) std::memcpy(out + l * kTileBlocks + v * simd::kWidth, &c[v][l], sizeof(vu32));
#else
  for (int b = 0; b < kTileBlocks; ++b) {
    const Words4 r = philox_block(seed, stream, t * kTileBlocks + b);
    for (int l = 0; l < 4; ++l) out[l * kTileBlocks + b] = r.w[l];
  }
#endif
}

#if defined(HB_HAVE_SIMD)
// Bit i of the kWidth-bit mask m -> lane i all ones (else zero).
inline vi32 expand_bits(u32 m) {
  vi32 bit;
  for (int l = 0; l < simd::kWidth; ++l) bit[l] = 1 << l;
  return ((vi32{} + static_cast<std::int32_t>(m)) & bit) == bit;
}
#if !defined(__AVX512F__)
// The 8 lane masks of each byte (bit l of the byte -> lane l all ones): one
// load instead of a broadcast, an and and a compare per neighbour.
struct ByteLanes {
  alignas(32) std::int32_t m[256][8];
  constexpr ByteLanes() : m() {
    for (int b = 0; b < 256; ++b)
      for (int l = 0; l < 8; ++l) m[b][l] = (b >> l) & 1 ? -1 : 0;
  }
};
inline constexpr ByteLanes kByteLanes{};
inline vi32 byte_lanes(std::uint8_t b) {
  vi32 v;
  std::memcpy(&v, kByteLanes.m[b], sizeof v);
  return v;
}
#endif
// Lane mask -> kWidth bits.
inline u32 lane_bits(vi32 m) {
#if defined(__AVX512F__)
  return static_cast<u32>(_mm512_movepi32_mask(reinterpret_cast<__m512i>(m)));
#else
  return static_cast<u32>(_mm256_movemask_ps(reinterpret_cast<__m256>(m)));
#endif
}
// f + (bit ? w2 : 0) lane by lane.
inline vf32 add_if(vf32 f, u32 m, vf32 w2) {
#if defined(__AVX512F__)
  return reinterpret_cast<vf32>(_mm512_mask_add_ps(reinterpret_cast<__m512>(f), static_cast<__mmask16>(m),
                                                   reinterpret_cast<__m512>(f), reinterpret_cast<__m512>(w2)));
#else
  return select(expand_bits(m), f + w2, f);
#endif
}
// f + (bit ? w2 : 0) with the kWidth bits read from p.
inline vf32 add_if_bits(vf32 f, const std::uint8_t* p, vf32 w2) {
#if defined(__AVX512F__)
  __mmask16 m;  // loaded straight into a mask register
  std::memcpy(&m, p, sizeof m);
  return reinterpret_cast<vf32>(_mm512_mask_add_ps(reinterpret_cast<__m512>(f), m, reinterpret_cast<__m512>(f),
                                                   reinterpret_cast<__m512>(w2)));
#else
  return select(byte_lanes(p[0]), f + w2, f);
#endif
}
// (bit ? w2 : +0) lane by lane with the kWidth bits read from p: 0 + w2 is
// w2, so this starts a group's sum exactly as add_if_bits on zeros would.
inline vf32 first_if_bits(const std::uint8_t* p, vf32 w2) {
#if defined(__AVX512F__)
  __mmask16 m;
  std::memcpy(&m, p, sizeof m);
  return reinterpret_cast<vf32>(_mm512_maskz_mov_ps(m, reinterpret_cast<__m512>(w2)));
#else
  return reinterpret_cast<vf32>(byte_lanes(p[0]) & reinterpret_cast<vi32>(w2));
#endif
}
inline void store_bits(std::uint8_t* p, u32 m) {
  p[0] = static_cast<std::uint8_t>(m);
  if (simd::kWidth == 16) p[1] = static_cast<std::uint8_t>(m >> 8);
}
#endif

constexpr i64 kGroup = 256;  // chains per group of 16 Philox blocks (spins)

// The random bytes B of chains 256 g + o, o = 0..255 (csrc/heatbath/sparse.h).
inline void group_bytes(u64 seed, u64 stream, u64 g, std::uint8_t out[kGroup]) {
#if defined(HB_HAVE_SIMD)
  constexpr int kW = simd::kWidth, kV = 16 / kW;
  vu32 c[kV][4];
  vu32 lane;
  for (int i = 0; i < kW; ++i) lane[i] = static_cast<u32>(i);
  const u64 base = g * 16;  // a multiple of 16: the low word cannot carry
  for (int v = 0; v < kV; ++v) {
    c[v][0] = lane + static_cast<u32>(base + v * kW);
    c[v][1] = vu32{} + static_cast<u32>(base >> 32);
    c[v][2] = vu32{} + static_cast<u32>(stream);
    c[v][3] = vu32{} + static_cast<u32>(stream >> 32);
  }
  philox4x32_10_n<kV>(c, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
#if defined(__AVX512F__)
  // word l of the 16 blocks j: byte q of lane j goes to out[16 (4 l + q) + j]. A
  // byte shuffle groups each 128-bit lane's bytes by q (4 blocks each), a
  // dword permutation puts the four lanes' groups of one q side by side.
  const __m512i by_q = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  const __m512i lanes = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int l = 0; l < 4; ++l) {
    const __m512i x = _mm512_shuffle_epi8(reinterpret_cast<__m512i>(c[0][l]), by_q);
    _mm512_storeu_si512(out + 64 * l, _mm512_permutexvar_epi32(lanes, x));
  }
#else
  // 8 blocks per vector: the same byte shuffle per 128-bit lane, then the two
  // lanes' groups of one q side by side (8 bytes of out per q)
  const __m256i by_q = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9,
                                        13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i lanes = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int v = 0; v < kV; ++v)
    for (int l = 0; l < 4; ++l) {
      const __m256i x = _mm256_permutevar8x32_epi32(
          _mm256_shuffle_epi8(reinterpret_cast<__m256i>(c[v][l]), by_q), lanes);
      alignas(32) std::uint8_t q8[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(q8), x);
      for (int q = 0; q < 4; ++q) std::memcpy(out + 16 * (4 * l + q) + v * kW, q8 + 8 * q, 8);
    }
#endif
#else
  for (int j = 0; j < 16; ++j) {
    const Words4 r = philox_block(seed, stream, g * 16 + j);
    for (int k = 0; k < 16; ++k) out[16 * k + j] = static_cast<std::uint8_t>(spin_byte(r, k));
  }
#endif
}

#if defined(HB_HAVE_SIMD)
inline vi32 load_bytes(const std::uint8_t* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<vi32>(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#else
  return reinterpret_cast<vi32>(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#endif
}

// New spins of kWidth chains from c0 (rule of spin_decide, vectorized); d
// from spin_denominator.
inline u32 decide_vec(vf32 d, const std::uint8_t* bytes, u64 seed, u64 stream, u64 c0) {
  const vi32 b = load_bytes(bytes);
  const vf32 bf = to_f32(b);
#if defined(__AVX512F__)
  const __m512 up_t = reinterpret_cast<__m512>(fma_(bf + 1.0f, d, K<vf32>(-256.0f)));
  const __m512 down_t = reinterpret_cast<__m512>(fma_(bf, d, K<vf32>(-256.0f)));
  u32 up = _mm512_cmp_ps_mask(up_t, _mm512_setzero_ps(), _CMP_LE_OQ);
  const u32 down = _mm512_cmp_ps_mask(down_t, _mm512_setzero_ps(), _CMP_GE_OQ);
#else
  u32 up = lane_bits(fma_(bf + 1.0f, d, K<vf32>(-256.0f)) <= 0.0f);
  const u32 down = lane_bits(fma_(bf, d, K<vf32>(-256.0f)) >= 0.0f);
#endif
  u32 tie = ~(up | down) & ((1u << simd::kWidth) - 1u);
  while (tie) {
    const int l = __builtin_ctz(tie);
    tie &= tie - 1;
    if (spin_tie_up(b[l], spin_tie_bits(seed, stream, c0 + static_cast<u64>(l)), d[l])) up |= 1u << l;
  }
  return up;
}
#endif

#if defined(HB_HAVE_SIMD)
// The denominators and decisions of U vectors of chains from c0 = c_begin +
// off, f[u] holding their fields.
template <int U>
inline void spin_finish(vf32 (&f)[U], const float* neg2beta, std::uint8_t* si, const std::uint8_t* bytes, i64 off,
                        i64 c0, u64 seed, u64 stream, u64 chain0) {
  constexpr int kW = simd::kWidth;
  // all denominators first (independent, branch-free), then the decisions
  for (int u = 0; u < U; ++u) {
    vf32 nb2;  // -(beta + beta): nb2 f is exactly -((beta + beta) f) of spin_denominator
    std::memcpy(&nb2, neg2beta + c0 + u * kW, sizeof(vf32));
    f[u] = exp_f32(nb2 * f[u]) + 1.0f;
  }
  for (int u = 0; u < U; ++u)
    store_bits(si + (c0 + u * kW) / 8, decide_vec(f[u], bytes + off + u * kW, seed, stream, chain0 + c0 + u * kW));
}

// U vectors of chains from c_begin + off: the fields (spin_field: per group
// of neighbours a masked add per up neighbour from zero, then f + S), the
// denominators, the decisions.
template <int U>
inline void spin_block(const std::uint8_t* bits, i64 row_bytes, const SparseGraph& g, i64 k0, i64 k1, float f0,
                       const float* neg2beta, std::uint8_t* si, const std::uint8_t* bytes, i64 off, i64 c_begin,
                       u64 seed, u64 stream, u64 chain0) {
  constexpr int kW = simd::kWidth;
  const i64 c0 = c_begin + off;
  vf32 f[U];
  for (int u = 0; u < U; ++u) f[u] = K<vf32>(f0);
  for (i64 k = k0; k < k1; k += kFieldGroup) {
    const i64 e = k1 - k < kFieldGroup ? k1 : k + kFieldGroup;
    vf32 sum[U];
    {
      const vf32 w2 = K<vf32>(g.w[k] + g.w[k]);
      const std::uint8_t* nb = bits + static_cast<i64>(g.col[k]) * row_bytes + c0 / 8;
      for (int u = 0; u < U; ++u) sum[u] = first_if_bits(nb + u * (kW / 8), w2);
    }
    for (i64 q = k + 1; q < e; ++q) {
      const vf32 w2 = K<vf32>(g.w[q] + g.w[q]);
      const std::uint8_t* nb = bits + static_cast<i64>(g.col[q]) * row_bytes + c0 / 8;
      for (int u = 0; u < U; ++u) sum[u] = add_if_bits(sum[u], nb + u * (kW / 8), w2);
    }
    for (int u = 0; u < U; ++u) f[u] = f[u] + sum[u];
  }
  spin_finish<U>(f, neg2beta, si, bytes, off, c0, seed, stream, chain0);
}
#endif

// Spins packed one bit per chain: node i's chains in row i of `bits`
// (row_bytes bytes; bit c % 8 of byte c / 8 is chain c, 1 = up). The field
// f = b_i + sum_k J_ik s_k is summed as in spin_field (sparse.h).
// Updates chain groups [g0, g1).
// Chain c of the array is chain chain0 + c of the run (chain0 a multiple of
// kGroup) for every random number. `beta` holds C values (the scalar loop);
// `neg2beta`, -(beta + beta), at least C rounded up to a multiple of the
// vector width (the padding lanes of the last word are updated too, with
// random numbers of chains past the end, and ignored).
inline void ising_node(std::uint8_t* bits, i64 row_bytes, i64 C, const SparseGraph& g, const float* bias,
                       const float* beta, const float* neg2beta, i64 i, u64 seed, u64 stream, i64 g0, i64 g1,
                       u64 chain0) {
  const u64 group0 = chain0 / kGroup;
  const i64 k0 = g.row[i], k1 = g.row[i + 1];
  const float f0 = spin_field_base(bias[i], g.w + k0, k1 - k0);
  std::uint8_t* si = bits + i * row_bytes;
  alignas(64) std::uint8_t bytes[kGroup];
  for (i64 t = g0; t < g1; ++t) {
    group_bytes(seed, stream, group0 + static_cast<u64>(t), bytes);
    const i64 c_begin = t * kGroup;
    i64 nc = C - c_begin < kGroup ? C - c_begin : kGroup;
    i64 off = 0;
#if defined(HB_HAVE_SIMD)
    constexpr int kW = simd::kWidth;
    nc = (nc + kW - 1) / kW * kW;  // within the row: rows hold a multiple of 32 chains
    // blocks of 8 vectors of chains (independent sums hide the add latency),
    // then 4, 2, 1 for the rest
    for (; off + 8 * kW <= nc; off += 8 * kW) spin_block<8>(bits, row_bytes, g, k0, k1, f0, neg2beta, si, bytes, off,
                                                            c_begin, seed, stream, chain0);
    if (off + 4 * kW <= nc) {
      spin_block<4>(bits, row_bytes, g, k0, k1, f0, neg2beta, si, bytes, off, c_begin, seed, stream, chain0);
      off += 4 * kW;
    }
    if (off + 2 * kW <= nc) {
      spin_block<2>(bits, row_bytes, g, k0, k1, f0, neg2beta, si, bytes, off, c_begin, seed, stream, chain0);
      off += 2 * kW;
    }
    if (off + kW <= nc) {
      spin_block<1>(bits, row_bytes, g, k0, k1, f0, neg2beta, si, bytes, off, c_begin, seed, stream, chain0);
      off += kW;
    }
#endif
    for (; off < nc; ++off) {
      const i64 c = c_begin + off;
      const float f = spin_field(f0, g.w + k0, k1 - k0, [&](i64 k) {
        return ((bits[static_cast<i64>(g.col[k0 + k]) * row_bytes + c / 8] >> (c % 8)) & 1) != 0;
      });
      const std::uint8_t bit = static_cast<std::uint8_t>(1u << (c % 8));
      const bool up =
          spin_decide(bytes[off], spin_denominator(f, beta[c]), seed, stream, chain0 + static_cast<u64>(c));
      si[c / 8] = up ? (si[c / 8] | bit) : (si[c / 8] & ~bit);
    }
  }
}

#if defined(__AVX512F__) && defined(__GNUC__)
// Field tables (AVX-512 with VBMI and GFNI, chosen at run time): the sum S of
// a group of four neighbours (spin_field) is one of 16 values, a table of 16
// floats built per node by the same additions, and each chain's four
// neighbour bits index it (vpermps, which reads the low four bits of each
// lane). The bits come from a transpose of the neighbours' rows: 16 bytes
// (128 chains) of each of eight neighbours, bytes gathered by vpermt2b into
// 8x8 bit matrices (8 neighbours x 8 chains) that gf2p8affineqb transposes
// into one byte per chain: bit k is neighbour k. With its unit bytes rotated
// by k (k = 0..3), the transpose puts the byte of chain 4 l + k in the low
// byte of lane l, which indexes the tables: the chains of a vector are
// strided by 4, so the random bytes are taken by byte shuffles, the betas
// are reordered once per call and the four decision masks of 64 chains
// interleave with pdep.
#define HB_FIELD_TABLES 1
#define HB_UNROLL _Pragma("GCC unroll 16")
#define HB_FT_TARGET __attribute__((target("avx512vbmi,gfni,bmi2")))
constexpr int kTableGroups = 16;  // nodes of degree <= 64 use tables

bool field_tables_supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni") && __builtin_cpu_supports("bmi2");
}
bool g_field_tables = field_tables_supported();

// T[g][m] = spin_group_sum(w + 4 g, n, m), vectorized over m: bit b of the
// lane index m selects the masked add of neighbour b (in order, from zero).
inline void build_tables(const float* w, i64 deg, __m512* T) {
  static constexpr __mmask16 kBit[4] = {0xAAAA, 0xCCCC, 0xF0F0, 0xFF00};
  for (i64 g = 0; g < deg; g += kFieldGroup) {
    __m512 t = _mm512_setzero_ps();
    for (int b = 0; b < kFieldGroup && g + b < deg; ++b)
      t = _mm512_mask_add_ps(t, kBit[b], t, _mm512_set1_ps(w[g + b] + w[g + b]));
    T[g / kFieldGroup] = t;
  }
}

// d = exp_f32(x) + 1 for N vectors, written stage by stage across the vectors
// (the scheduler then holds N independent operations per stage rather than
// one chain), with the same values as exp_f32 (csrc/heatbath/sparse.h)
// followed by + 1, from cheaper operations:
// - k = rint(t) of t = x 16/ln2 as (t + 1.5 2^23) - 1.5 2^23, exact
//   ties-to-even rounding for |t| < 2^22 (here |t| <= 2041), and the low bits
//   of t + 1.5 2^23 are k: they index the table (vpermps reads the low four)
//   and give (k & ~15) << 19 = floor(k / 16) << 23;
// - y 2^n as the integer sum of y's bits and n << 23: exact while the result
//   is normal. Below 2^-126 it differs from the rounded product, but both are
//   below 2^-25, so d = 1 either way.
// - the clamps of x to [-87.3, 88.37] only when `clamp`: a caller that
//   knows |x| <= 87.3 for every lane skips them (they change nothing there).
template <int N>
HB_FT_TARGET inline void denominators_n(__m512* x, bool clamp) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);  // 1.5 2^23
  const __m512 table = _mm512_loadu_ps(reinterpret_cast<const float*>(kExp2Sixteenths));
  __m512 kf[N], r[N], q[N];
  __m512i vb[N];
  if (clamp) {
    HB_UNROLL
    for (int n = 0; n < N; ++n)
      x[n] = _mm512_max_ps(_mm512_min_ps(x[n], _mm512_set1_ps(88.37f)), _mm512_set1_ps(-87.3f));
  }
  HB_UNROLL
  for (int n = 0; n < N; ++n) {
    const __m512 v = _mm512_add_ps(_mm512_mul_ps(x[n], _mm512_set1_ps(0x1.715476p+4f)), magic);
    kf[n] = _mm512_sub_ps(v, magic);
    vb[n] = _mm512_castps_si512(v);
  }
  HB_UNROLL
  for (int n = 0; n < N; ++n) r[n] = _mm512_fmadd_ps(kf[n], _mm512_set1_ps(-0x1.63p-5f), x[n]);
  HB_UNROLL
  for (int n = 0; n < N; ++n) r[n] = _mm512_fmadd_ps(kf[n], _mm512_set1_ps(0x1.bd0106p-17f), r[n]);
  HB_UNROLL
  for (int n = 0; n < N; ++n) q[n] = _mm512_fmadd_ps(_mm512_set1_ps(0x1.555556p-3f), r[n], _mm512_set1_ps(0.5f));
  HB_UNROLL
  for (int n = 0; n < N; ++n) q[n] = _mm512_fmadd_ps(q[n], _mm512_mul_ps(r[n], r[n]), r[n]);
  HB_UNROLL
  for (int n = 0; n < N; ++n) {
    const __m512 t = _mm512_permutexvar_ps(vb[n], table);
    const __m512i n23 = _mm512_slli_epi32(_mm512_andnot_si512(_mm512_set1_epi32(15), vb[n]), 19);
    x[n] = _mm512_add_ps(
        _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(_mm512_fmadd_ps(t, q[n], t)), n23)),
        _mm512_set1_ps(1.0f));
  }
}

// The new spins of the 64 chains of a half (vector k: chains cbase + 4 l + k),
// d[k] their denominators, Bz their random bytes in chain order: bit 4 l + k
// of the result is chain cbase + 4 l + k (spin_decide, vectorized stage by stage).
HB_FT_TARGET inline u64 decide_half(const __m512* d, __m512i Bz, u64 seed, u64 stream, u64 cbase) {
  __m512 bf[4];
  __mmask16 up[4], down[4];
  HB_UNROLL
  for (int k = 0; k < 4; ++k) {
    // byte k of each lane, zero-extended: a byte shuffle within 128-bit lanes (index bytes with bit 7 give 0)
    const int z = static_cast<int>(0x80808000u) | k;
    const __m512i lanes = _mm512_broadcast_i32x4(_mm_setr_epi32(z, z + 4, z + 8, z + 12));
    bf[k] = _mm512_cvtepi32_ps(_mm512_shuffle_epi8(Bz, lanes));
  }
  const __m512 m256 = _mm512_set1_ps(-256.0f);
  HB_UNROLL
  for (int k = 0; k < 4; ++k)
    up[k] = _mm512_cmp_ps_mask(_mm512_fmadd_ps(_mm512_add_ps(bf[k], _mm512_set1_ps(1.0f)), d[k], m256),
                               _mm512_setzero_ps(), _CMP_LE_OQ);
  HB_UNROLL
  for (int k = 0; k < 4; ++k)
    down[k] = _mm512_cmp_ps_mask(_mm512_fmadd_ps(bf[k], d[k], m256), _mm512_setzero_ps(), _CMP_GE_OQ);
  u64 word = 0;
  HB_UNROLL
  for (int k = 0; k < 4; ++k) {
    u32 u = _cvtmask16_u32(up[k]);
    if (__builtin_expect(!_kortestc_mask16_u8(up[k], down[k]), 0)) {  // a tie: neither up nor down
      u32 tie = ~(u | _cvtmask16_u32(down[k])) & 0xFFFFu;
      alignas(64) float bl[16], dl[16];
      _mm512_store_ps(bl, bf[k]);
      _mm512_store_ps(dl, d[k]);
      while (tie) {
        const int l = __builtin_ctz(tie);
        tie &= tie - 1;
        const u64 c = cbase + 4 * static_cast<u64>(l) + static_cast<u64>(k);
        if (spin_tie_up(static_cast<std::int32_t>(bl[l]), spin_tie_bits(seed, stream, c), dl[l])) u |= 1u << l;
      }
    }
    word |= _pdep_u64(u, 0x1111111111111111ull << k);
  }
  return word;
}

// group_bytes of group g in 64-bit lanes: each block's four words in the low
// halves of qwords (8 blocks per vector, two vectors), so that one vpmuludq
// gives a whole 32x32 -> 64-bit product (low half lo, high half hi, which a
// dword swap brings down) and the high halves carry garbage that vpmuludq
// ignores. vpermt2b then gathers byte q of word l of block j (qword j of the
// pair) into out[64 l + 16 q + j].
HB_FT_TARGET inline void group_bytes_q(u64 seed, u64 stream, u64 g, std::uint8_t out[kGroup]) {
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  const u64 base = g * 16;  // a multiple of 16: the low word cannot carry
  const __m512i j8 = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  __m512i c[2][4];
  for (int v = 0; v < 2; ++v) {
    c[v][0] = _mm512_add_epi64(j8, _mm512_set1_epi64(static_cast<long long>(static_cast<u32>(base) + 8 * v)));
    c[v][1] = _mm512_set1_epi64(static_cast<u32>(base >> 32));
    c[v][2] = _mm512_set1_epi64(static_cast<u32>(stream));
    c[v][3] = _mm512_set1_epi64(static_cast<u32>(stream >> 32));
  }
  u32 k0 = static_cast<u32>(seed), k1 = static_cast<u32>(seed >> 32);
  HB_UNROLL
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const __m512i K0 = _mm512_set1_epi64(k0), K1 = _mm512_set1_epi64(k1);
    HB_UNROLL
    for (int v = 0; v < 2; ++v) {
      const __m512i p0 = _mm512_mul_epu32(c[v][0], m0), p1 = _mm512_mul_epu32(c[v][2], m1);
      c[v][0] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1, _MM_PERM_CDAB), c[v][1], K0, 0x96);
      c[v][1] = p1;
      c[v][2] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0, _MM_PERM_CDAB), c[v][3], K1, 0x96);
      c[v][3] = p0;
    }
  }
  // out[64 l + 16 q + j] = byte 8 j + q of the pair (block j < 8 in the first)
  alignas(64) static constexpr std::uint8_t kIdx[64] = {
#define HB_Q(q) q, 8 + q, 16 + q, 24 + q, 32 + q, 40 + q, 48 + q, 56 + q, 64 + q, 72 + q, 80 + q, 88 + q, 96 + q, \
                104 + q, 112 + q, 120 + q
      HB_Q(0), HB_Q(1), HB_Q(2), HB_Q(3)};
#undef HB_Q
  const __m512i idx = _mm512_load_si512(kIdx);
  HB_UNROLL
  for (int l = 0; l < 4; ++l) _mm512_store_si512(out + 64 * l, _mm512_permutex2var_epi8(c[0][l], idx, c[1][l]));
}

// f[h][k] += table t0 at the low nibble and, when kTwo, t1 at the high nibble
// of each lane's low byte: the neighbour bits of the pass (z[h]: the bytes
// gathered for half h). The transpose with unit bytes 1 << ((j + k) % 8)
// (units[k]) makes byte j of qword q chain 8 q + (j + k) % 8, so the low
// byte of lane l is chain 4 l + k: no shift of the transposed bytes, and
// gf2p8affineqb runs beside the adds.
template <int HH, bool kTwo>
HB_FT_TARGET inline void add_groups(__m512 (*f)[4], const __m512i* z, const __m512i* units, __m512 t0, __m512 t1) {
  HB_UNROLL
  for (int h = 0; h < HH; ++h)
    HB_UNROLL
    for (int k = 0; k < 4; ++k) {
      const __m512i lo = _mm512_gf2p8affine_epi64_epi8(units[k], z[h], 0);
      f[h][k] = _mm512_add_ps(f[h][k], _mm512_permutexvar_ps(lo, t0));
      if (kTwo) f[h][k] = _mm512_add_ps(f[h][k], _mm512_permutexvar_ps(_mm512_srli_epi32(lo, 4), t1));
    }
}

// Adds the group sums to f[h][k] (vector k of half h: chains c0 + 64 h + 4 l
// + k) for the HH (1 or 2) halves of 64 chains from c0 (a multiple of 128),
// of which the row holds nbytes bytes from c0 / 8 (loads stay within them).
template <int HH>
HB_FT_TARGET inline void field_tables(__m512 (*f)[4], const std::uint8_t* bits, i64 row_bytes, const SparseGraph& g,
                                      i64 k0, i64 k1, i64 c0, i64 nbytes, const __m512* T) {
  // kSel[h]: byte 8 q + k of the result is byte q + 8 h of neighbour 7 - k
  // (row 7 - k at bytes 16 (7 - k) of the pair A:B), so that qword q is the
  // 8x8 matrix gf2p8affineqb transposes with unit bytes 1 << j into byte j =
  // chain 64 h + 8 q + j, bit k = neighbour k.
  alignas(64) static constexpr std::uint8_t kSel[2][64] = {
#define HB_SEL_Q(q) 112 + (q), 96 + (q), 80 + (q), 64 + (q), 48 + (q), 32 + (q), 16 + (q), 0 + (q)
#define HB_SEL(q0)                                                                                          \
  {HB_SEL_Q(q0 + 0), HB_SEL_Q(q0 + 1), HB_SEL_Q(q0 + 2), HB_SEL_Q(q0 + 3), HB_SEL_Q(q0 + 4), HB_SEL_Q(q0 + 5), \
   HB_SEL_Q(q0 + 6), HB_SEL_Q(q0 + 7)}
      HB_SEL(0), HB_SEL(8)};
#undef HB_SEL
#undef HB_SEL_Q
  const __m512i units[4] = {_mm512_set1_epi64(static_cast<long long>(0x8040201008040201ull)),
                            _mm512_set1_epi64(static_cast<long long>(0x0180402010080402ull)),
                            _mm512_set1_epi64(static_cast<long long>(0x0201804020100804ull)),
                            _mm512_set1_epi64(static_cast<long long>(0x0402018040201008ull))};
  const bool whole = nbytes >= 16;
  const __mmask16 used = static_cast<__mmask16>(whole ? 0xFFFFu : (1u << nbytes) - 1u);
  const i64 deg = k1 - k0;
  for (i64 p = 0; p < deg; p += 2 * kFieldGroup) {
    __m128i r[8];
    HB_UNROLL
    for (int k = 0; k < 8; ++k) {
      if (p + k < deg) {
        const std::uint8_t* nb = bits + static_cast<i64>(g.col[k0 + p + k]) * row_bytes + c0 / 8;
        r[k] = whole ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(nb)) : _mm_maskz_loadu_epi8(used, nb);
      } else {
        r[k] = _mm_setzero_si128();
      }
    }
    const __m512i A = _mm512_inserti32x4(
        _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(r[0]), r[1], 1), r[2], 2), r[3], 3);
    const __m512i B = _mm512_inserti32x4(
        _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(r[4]), r[5], 1), r[6], 2), r[7], 3);
    __m512i z[HH];
    HB_UNROLL
    for (int h = 0; h < HH; ++h)
      z[h] = _mm512_permutex2var_epi8(A, _mm512_load_si512(kSel[h]), B);
    // a branch per pass (not per vector): whether it holds a second group
    if (p + kFieldGroup < deg)
      add_groups<HH, true>(f, z, units, T[p / kFieldGroup], T[p / kFieldGroup + 1]);
    else
      add_groups<HH, false>(f, z, units, T[p / kFieldGroup], T[p / kFieldGroup]);
  }
}

// Updates the chains [c0, c0 + 64 H) of node i (c0 a multiple of 256; H =
// 1..4 halves of 64; bytes: their random bytes), of which the row holds
// nbytes bytes from c0 / 8 (loads and stores stay within them).
template <int H>
HB_FT_TARGET inline void spin_block_tables(const std::uint8_t* bits, i64 row_bytes, const SparseGraph& g, i64 k0,
                                           i64 k1, float f0, const __m512* T, const float* nb2s, bool clamp,
                                           std::uint8_t* si, const std::uint8_t* bytes, i64 c0, i64 nbytes,
                                           u64 seed, u64 stream, u64 chain0) {
  __m512 f[H][4];
  HB_UNROLL
  for (int h = 0; h < H; ++h)
    HB_UNROLL
    for (int k = 0; k < 4; ++k) f[h][k] = _mm512_set1_ps(f0);
  field_tables<H >= 2 ? 2 : 1>(f, bits, row_bytes, g, k0, k1, c0, nbytes, T);
  if (H > 2) field_tables<H - 2 >= 2 ? 2 : 1>(f + 2, bits, row_bytes, g, k0, k1, c0 + 128, nbytes - 16, T);
  // all denominators first (independent, branch-free), then the decisions
  HB_UNROLL
  for (int h = 0; h < H; ++h) {
    HB_UNROLL
    for (int k = 0; k < 4; ++k) f[h][k] = _mm512_mul_ps(_mm512_loadu_ps(nb2s + c0 + 64 * h + 16 * k), f[h][k]);
    denominators_n<4>(f[h], clamp);
  }
  HB_UNROLL
  for (int h = 0; h < H; ++h) {
    const i64 nb = nbytes - 8 * h < 8 ? nbytes - 8 * h : 8;
    if (nb <= 0) break;
    // chain 4 l + k: byte k of lane l
    const u64 word = decide_half(f[h], _mm512_load_si512(bytes + 64 * h), seed, stream, chain0 + c0 + 64 * h);
    std::memcpy(si + c0 / 8 + 8 * h, &word, static_cast<size_t>(nb));
  }
}

// ising_node with field tables (degree <= 4 kTableGroups); nb2s holds
// -(beta + beta) in the strided order of each 64 chains: chain 4 l + k at
// 16 k + l.
HB_FT_TARGET void ising_node_tables(std::uint8_t* bits, i64 row_bytes, i64 C, const SparseGraph& g,
                                    const float* bias, const float* nb2s, double nb2_max, i64 i, u64 seed,
                                    u64 stream, i64 g0, i64 g1, u64 chain0) {
  const u64 group0 = chain0 / kGroup;
  const i64 k0 = g.row[i], k1 = g.row[i + 1];
  const float f0 = spin_field_base(bias[i], g.w + k0, k1 - k0);
  __m512 T[kTableGroups];
  build_tables(g.w + k0, k1 - k0, T);
  // |x| = |nb2 f| <= nb2_max (|b_i| + 3 sum |J_ik|) bounds every partial sum of the field (float rounding
  // is far inside the 1% margin): below 87 the clamps of the exp change nothing and are skipped
  double fmax = std::fabs(static_cast<double>(bias[i]));
  for (i64 k = k0; k < k1; ++k) fmax += 3.0 * std::fabs(static_cast<double>(g.w[k]));
  const bool clamp = !(1.01 * nb2_max * fmax <= 87.0);
  std::uint8_t* si = bits + i * row_bytes;
  alignas(64) std::uint8_t bytes[kGroup];
  for (i64 t = g0; t < g1; ++t) {
    group_bytes_q(seed, stream, group0 + static_cast<u64>(t), bytes);
    const i64 c0 = t * kGroup;
    const i64 nc = C - c0 < kGroup ? C - c0 : kGroup;
    const i64 nbytes = row_bytes - c0 / 8 < 32 ? row_bytes - c0 / 8 : 32;
    switch ((nc + 63) / 64) {
#define HB_BLOCK(n)                                                                                        \
  case n:                                                                                                  \
    spin_block_tables<n>(bits, row_bytes, g, k0, k1, f0, T, nb2s, clamp, si, bytes, c0, nbytes, seed, stream, \
                         chain0);                                                                          \
    break;
      HB_BLOCK(1) HB_BLOCK(2) HB_BLOCK(3) HB_BLOCK(4)
#undef HB_BLOCK
      default:
        break;
    }
  }
}
#endif

#if defined(HB_HAVE_SIMD)
// The kWidth chains from c (c + kWidth <= C) of Potts node i (nq states):
// potts_draw lane by lane, the same operations in the same order (weights a[q] summed
// over the neighbours in CSR order), words: their Philox words.
inline void potts_vec(std::uint8_t* s, i64 C, int nq, const SparseGraph& g, const float* bias, const float* beta,
                      i64 i, i64 c, const u32* words) {
  constexpr int kW = simd::kWidth;
  vf32 a[kPottsMaxStates];
  for (int q = 0; q < nq; ++q) a[q] = K<vf32>(bias[i * nq + q]);
  for (i64 k = g.row[i]; k < g.row[i + 1]; ++k) {
    const vi32 sj = load_bytes(s + static_cast<i64>(g.col[k]) * C + c);
    const vf32 w = K<vf32>(g.w[k]);
    for (int q = 0; q < nq; ++q) a[q] = select(sj == q, a[q] + w, a[q]);
  }
  vf32 bt;
  std::memcpy(&bt, beta + c, sizeof bt);
  vf32 m = bt * a[0];
  for (int q = 1; q < nq; ++q) {
    const vf32 x = bt * a[q];
    m = select(x > m, x, m);
  }
  vf32 total = K<vf32>(0.0f);
  for (int q = 0; q < nq; ++q) {
    a[q] = exp_f32(bt * a[q] - m);
    total = total + a[q];
  }
  vu32 wv;
  std::memcpy(&wv, words, sizeof wv);
  const vf32 target = unit_f32(wv) * total;
  vi32 r = vi32{} + (nq - 1), found = vi32{};
  vf32 cum = K<vf32>(0.0f);
  for (int q = 0; q < nq - 1; ++q) {
    cum = cum + a[q];
    const vi32 hit = (target < cum) & ~found;
    r = select(hit, vi32{} + q, r);
    found = found | hit;
  }
  std::uint8_t* out = s + i * C + c;
  for (int l = 0; l < kW; ++l) out[l] = static_cast<std::uint8_t>(r[l]);
}
#endif

inline void potts_node(std::uint8_t* s, i64 C, int K, const SparseGraph& g, const float* bias, const float* beta,
                       i64 i, u64 seed, u64 stream, i64 t0, i64 t1, u64 chain0) {
  const i64 k0 = g.row[i], k1 = g.row[i + 1];
  alignas(64) u32 words[kTile];
  float a[kPottsMaxStates];
  for (i64 t = t0; t < t1; ++t) {
    tile_words(seed, stream, chain0 / kTile + static_cast<u64>(t), words);
    const i64 c_begin = t * kTile;
    const i64 nc = C - c_begin < kTile ? C - c_begin : kTile;
    i64 off = 0;
#if defined(HB_HAVE_SIMD)
    for (; off + simd::kWidth <= nc; off += simd::kWidth)
      potts_vec(s, C, K, g, bias, beta, i, c_begin + off, words + off);
#endif
    for (; off < nc; ++off) {
      const i64 c = c_begin + off;
      for (int q = 0; q < K; ++q) a[q] = bias[i * K + q];
      for (i64 k = k0; k < k1; ++k) {
        const int sj = s[static_cast<i64>(g.col[k]) * C + c];
        a[sj] = a[sj] + g.w[k];
      }
      s[i * C + c] = static_cast<std::uint8_t>(potts_draw(a, K, beta[c], words[off]));
    }
  }
}

// Runs the sweeps; node(i, stream, t0, t1) updates node i in chain tiles
// [t0, t1). Chains are independent, so with enough chains every thread takes
// a range of tiles and runs the whole schedule on it without any barrier;
// otherwise the nodes of each block are split among the threads.
// Threads split the tiles in runs of `align` tiles (64 bytes of a node's row),
// so that with 64-byte aligned states no two threads write one cache line.
template <class Node>
void run_sweeps(const SparseSchedule& sch, i64 chains, i64 unit, i64 align, u64 sweep0, i64 nsweeps, Node node) {
  i64 work = 0;
  for (i64 b = 0; b < sch.nblocks; ++b) work += sch.block_ptr[b + 1] - sch.block_ptr[b];
  const i64 ntiles = (chains + unit - 1) / unit;
  const i64 nruns = (ntiles + align - 1) / align;
  auto all = [&](i64 t0, i64 t1) {
    for (i64 t = 0; t < nsweeps; ++t) {
      const u64 sweep = sweep0 + static_cast<u64>(t);
      for (i64 q = 0; q < sch.block_ptr[sch.nblocks]; ++q) {
        const i64 i = sch.order[q];
        node(i, sparse_stream(sweep, static_cast<u64>(i)), t0, t1);
      }
    }
  };
#if defined(_OPENMP)
  const int nt = omp_get_max_threads();
  if (nt > 1 && work * chains * nsweeps >= 65536) {
    if (nruns >= nt) {
#pragma omp parallel
      {
        const i64 id = omp_get_thread_num(), n = omp_get_num_threads();
        const i64 t0 = nruns * id / n * align, t1 = std::min(ntiles, nruns * (id + 1) / n * align);
        if (t0 < t1) all(t0, t1);
      }
      return;
    }
#pragma omp parallel
    {
      for (i64 t = 0; t < nsweeps; ++t) {
        const u64 sweep = sweep0 + static_cast<u64>(t);
        for (i64 b = 0; b < sch.nblocks; ++b) {
#pragma omp for schedule(static)
          for (i64 q = sch.block_ptr[b]; q < sch.block_ptr[b + 1]; ++q) {
            const i64 i = sch.order[q];
            node(i, sparse_stream(sweep, static_cast<u64>(i)), 0, ntiles);
          }
        }
      }
    }
    return;
  }
#endif
  all(0, ntiles);
}

void k_ising_sweeps(std::uint32_t* s, i64 chains, const SparseGraph& g, const float* bias, const float* beta,
                    const SparseSchedule& sch, u64 seed, u64 chain0, u64 sweep0, i64 nsweeps) {
  if (chains <= 0 || nsweeps <= 0) return;
  const i64 row_bytes = 4 * ((chains + 31) / 32);
  auto* bits = reinterpret_cast<std::uint8_t*>(s);
  // -(beta + beta) per chain, padded to whole rows (the last vector of a row
  // updates padding lanes too)
  std::vector<float> neg2(static_cast<size_t>(row_bytes * 8), -(beta[chains - 1] + beta[chains - 1]));
  for (i64 c = 0; c < chains; ++c) neg2[static_cast<size_t>(c)] = -(beta[c] + beta[c]);
  const float* nb2 = neg2.data();
#if defined(HB_FIELD_TABLES)
  if (g_field_tables) {
    // -(beta + beta) in the strided order of each 64 chains, whole groups
    const i64 padded = (chains + kGroup - 1) / kGroup * kGroup;
    std::vector<float> strided(static_cast<size_t>(padded));
    for (i64 c = 0; c < padded; ++c) {
      const i64 src = c - c % 64 + 4 * (c % 16) + (c % 64) / 16;
      strided[static_cast<size_t>(c)] = src < chains ? neg2[static_cast<size_t>(src)] : neg2.back();
    }
    const float* nb2s = strided.data();
    double nb2_max = 0.0;
    for (const float v : neg2) nb2_max = std::max(nb2_max, std::fabs(static_cast<double>(v)));
    run_sweeps(sch, chains, kGroup, 2, sweep0, nsweeps, [&](i64 i, u64 stream, i64 t0, i64 t1) {
      if (g.row[i + 1] - g.row[i] <= kFieldGroup * kTableGroups)
        ising_node_tables(bits, row_bytes, chains, g, bias, nb2s, nb2_max, i, seed, stream, t0, t1, chain0);
      else
        ising_node(bits, row_bytes, chains, g, bias, beta, nb2, i, seed, stream, t0, t1, chain0);
    });
    return;
  }
#endif
  run_sweeps(sch, chains, kGroup, 2, sweep0, nsweeps, [&](i64 i, u64 stream, i64 t0, i64 t1) {
    ising_node(bits, row_bytes, chains, g, bias, beta, nb2, i, seed, stream, t0, t1, chain0);
  });
}

void k_potts_sweeps(std::uint8_t* s, i64 chains, int K, const SparseGraph& g, const float* bias, const float* beta,
                    const SparseSchedule& sch, u64 seed, u64 chain0, u64 sweep0, i64 nsweeps) {
  if (chains <= 0 || nsweeps <= 0) return;
  run_sweeps(sch, chains, kTile, 1, sweep0, nsweeps, [&](i64 i, u64 stream, i64 t0, i64 t1) {
    potts_node(s, chains, K, g, bias, beta, i, seed, stream, t0, t1, chain0);
  });
}

// ---- observers ----
//
// Energies are sums over the upper triangle of the couplings (i < j; the
// matrix is symmetric): -J s_i s_j = -J + 2 J [s_i != s_j] and -b s_i =
// b - 2 b [s_i up], so E = e0 + (a sum of masked adds per chain), the masks
// being packed words of 32 chains (xor of two rows, or a row). Every chain's
// sum runs over the same terms in the same order at every instruction-set
// level, so the levels agree to the bit.

inline int popc32(u32 x) {
#if defined(__POPCNT__)
  return __builtin_popcount(x);
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return static_cast<int>((((x + (x >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
#endif
}

// Per-chain float64 sums for NW words (32 NW chains): add(x, w) adds w to
// chain 32 q + b where bit b of x[q] is set.
#if defined(__AVX512F__)
constexpr int kObsWords = 4;
template <int NW>
struct ChainSums {
  __m512d v[4 * NW];
  ChainSums() {
    for (auto& a : v) a = _mm512_setzero_pd();
  }
  inline void add(const u32* x, double w) {
    const __m512d wv = _mm512_set1_pd(w);
    for (int q = 0; q < NW; ++q)
      for (int h = 0; h < 4; ++h)
        v[4 * q + h] = _mm512_mask_add_pd(v[4 * q + h], static_cast<__mmask8>(x[q] >> (8 * h)), v[4 * q + h], wv);
  }
  void store(double* out) const {
    for (int k = 0; k < 4 * NW; ++k) _mm512_storeu_pd(out + 8 * k, v[k]);
  }
};
#elif defined(__AVX2__)
constexpr int kObsWords = 1;
// Nibble -> 4 lanes of all ones or zeros.
struct NibbleMasks {
  alignas(32) u64 m[16][4];
  NibbleMasks() {
    for (int n = 0; n < 16; ++n)
      for (int l = 0; l < 4; ++l) m[n][l] = ((n >> l) & 1) ? ~u64{0} : u64{0};
  }
};
inline const NibbleMasks& nibble_masks() {
  static const NibbleMasks t;
  return t;
}
template <int NW>
struct ChainSums {
  __m256d v[8 * NW];
  const NibbleMasks& t = nibble_masks();
  ChainSums() {
    for (auto& a : v) a = _mm256_setzero_pd();
  }
  inline void add(const u32* x, double w) {
    const __m256d wv = _mm256_set1_pd(w);
    for (int q = 0; q < NW; ++q)
      for (int h = 0; h < 8; ++h) {
        const __m256d m = _mm256_load_pd(reinterpret_cast<const double*>(t.m[(x[q] >> (4 * h)) & 15u]));
        v[8 * q + h] = _mm256_add_pd(v[8 * q + h], _mm256_and_pd(m, wv));  // + w or + 0
      }
  }
  void store(double* out) const {
    for (int k = 0; k < 8 * NW; ++k) _mm256_storeu_pd(out + 4 * k, v[k]);
  }
};
#elif defined(__SSE2__)
constexpr int kObsWords = 1;
// Two bits -> 2 lanes of all ones or zeros.
alignas(16) constexpr u64 kPairMasks[4][2] = {{0, 0}, {~u64{0}, 0}, {0, ~u64{0}}, {~u64{0}, ~u64{0}}};
template <int NW>
struct ChainSums {
  __m128d v[16 * NW];
  ChainSums() {
    for (auto& a : v) a = _mm_setzero_pd();
  }
  inline void add(const u32* x, double w) {
    const __m128d wv = _mm_set1_pd(w);
    for (int q = 0; q < NW; ++q)
      for (int h = 0; h < 16; ++h) {
        const __m128d m = _mm_load_pd(reinterpret_cast<const double*>(kPairMasks[(x[q] >> (2 * h)) & 3u]));
        v[16 * q + h] = _mm_add_pd(v[16 * q + h], _mm_and_pd(m, wv));  // + w or + 0
      }
  }
  void store(double* out) const {
    for (int k = 0; k < 16 * NW; ++k) _mm_storeu_pd(out + 2 * k, v[k]);
  }
};
#else
constexpr int kObsWords = 1;
template <int NW>
struct ChainSums {
  double v[32 * NW] = {};
  inline void add(const u32* x, double w) {
    for (int q = 0; q < NW; ++q)
      for (int b = 0; b < 32; ++b) v[32 * q + b] += ((x[q] >> b) & 1u) ? w : 0.0;
  }
  void store(double* out) const { std::memcpy(out, v, sizeof v); }
};
#endif

// The couplings with col > row (2 J in float64 for the spins, -J for Potts)
// and the constant part of the energy.
struct Upper {
  std::vector<i64> ptr;
  std::vector<std::int32_t> col;
  std::vector<double> w;
  double e0 = 0.0;
};

// spins: e0 = sum_i b_i - sum_{i<j} J_ij - 1/2 sum_i J_ii; potts: e0 = -1/2
// sum_i J_ii (a self-coupling always agrees).
Upper upper_of(const SparseGraph& g, bool spins) {
  Upper u;
  u.ptr.assign(static_cast<size_t>(g.n + 1), 0);
  for (i64 i = 0; i < g.n; ++i) {
    for (i64 k = g.row[i]; k < g.row[i + 1]; ++k) {
      const i64 j = g.col[k];
      const double w = g.w[k];
      if (j == i) {
        u.e0 -= 0.5 * w;
      } else if (j > i) {
        u.col.push_back(static_cast<std::int32_t>(j));
        u.w.push_back(spins ? w + w : -w);
        if (spins) u.e0 -= w;
      }
    }
    u.ptr[static_cast<size_t>(i + 1)] = static_cast<i64>(u.col.size());
  }
  return u;
}

// Calls body(b) for b in [0, n), in parallel when the work (n cost) is large.
template <class Body>
void parallel_for(i64 n, i64 cost, Body body) {
#if defined(_OPENMP)
  if (n > 1 && n * cost >= 65536 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (i64 b = 0; b < n; ++b) body(b);
    return;
  }
#endif
  for (i64 b = 0; b < n; ++b) body(b);
}

// Words per block of chains: kObsWords, or 1 when that leaves threads idle.
inline i64 block_words(i64 W) {
#if defined(_OPENMP)
  if (W < kObsWords * static_cast<i64>(omp_get_max_threads())) return 1;
#endif
  return W < kObsWords ? 1 : kObsWords;
}

// Spin sums of the NW words from w0 of every row: acc (energy less e0) and
// up (up spins), 32 NW chains each.
template <int NW>
void ising_sums(const u32* s, i64 W, const Upper& u, const float* bias, i64 n, i64 w0, double* acc,
                double* up) {
  ChainSums<NW> e;
  for (i64 i = 0; i < n; ++i) {
    u32 a[NW];
    std::memcpy(a, s + i * W + w0, sizeof a);
    if (bias[i] != 0.0f) e.add(a, -2.0 * static_cast<double>(bias[i]));
    for (i64 k = u.ptr[i]; k < u.ptr[i + 1]; ++k) {
      const u32* r = s + static_cast<i64>(u.col[k]) * W + w0;
      u32 x[NW];
      for (int q = 0; q < NW; ++q) x[q] = a[q] ^ r[q];
      e.add(x, u.w[k]);
    }
  }
  e.store(acc);
  ChainSums<NW> cnt;  // a second pass: the sums of both would not fit the registers
  for (i64 i = 0; i < n; ++i) cnt.add(s + i * W + w0, 1.0);
  cnt.store(up);
}

void k_ising_observe(const std::uint32_t* s, i64 C, const SparseGraph& g, const float* bias,
                     double* energy, double* mag, const std::int32_t* nodes, i64 nnodes, double* m1,
                     const std::int32_t* pairs, i64 npairs, double* m2) {
  if (C <= 0) return;
  const i64 W = (C + 31) / 32;
  const u32 tail = C % 32 ? (1u << (C % 32)) - 1u : ~0u;  // valid chains of a row's last word
  Upper u = upper_of(g, true);
  for (i64 i = 0; i < g.n; ++i) u.e0 += static_cast<double>(bias[i]);
  const i64 nw = block_words(W);
  const i64 nblocks = (W + nw - 1) / nw;
  parallel_for(nblocks, (g.row[g.n] / 2 + g.n) * nw, [&](i64 b) {
    const i64 w0 = b * nw, w1 = std::min(W, w0 + nw);
    alignas(64) double acc[32 * kObsWords], up[32 * kObsWords];
    if (w1 - w0 == kObsWords) {
      ising_sums<kObsWords>(s, W, u, bias, g.n, w0, acc, up);
    } else {
      for (i64 w = w0; w < w1; ++w)
        ising_sums<1>(s, W, u, bias, g.n, w, acc + 32 * (w - w0), up + 32 * (w - w0));
    }
    const double n = static_cast<double>(g.n);
    for (i64 c = 32 * w0; c < std::min(C, 32 * w1); ++c) {
      energy[c] = u.e0 + acc[c - 32 * w0];
      mag[c] = g.n ? (up[c - 32 * w0] + up[c - 32 * w0] - n) / n : 0.0;
    }
  });
  // moments: integer counts of up spins and of disagreeing pairs
  auto ups = [&](i64 i) {
    const u32* r = s + i * W;
    i64 p = 0;
    for (i64 w = 0; w + 1 < W; ++w) p += popc32(r[w]);
    return p + popc32(r[W - 1] & tail);
  };
  parallel_for(nnodes, W, [&](i64 k) { m1[k] += static_cast<double>(2 * ups(nodes[k]) - C); });
  parallel_for(npairs, 2 * W, [&](i64 k) {
    const u32* a = s + static_cast<i64>(pairs[2 * k]) * W;
    const u32* b = s + static_cast<i64>(pairs[2 * k + 1]) * W;
    i64 p = 0;
    for (i64 w = 0; w + 1 < W; ++w) p += popc32(a[w] ^ b[w]);
    p += popc32((a[W - 1] ^ b[W - 1]) & tail);
    m2[k] += static_cast<double>(C - 2 * p);
  });
}

// Bit o of the result: a[o] == b[o], o < n <= 32.
inline u32 eq_bits(const std::uint8_t* a, const std::uint8_t* b, i64 n) {
#if defined(__AVX2__)
  if (n == 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    return _mm256_cmpeq_epi8_mask(va, vb);
#else
    return static_cast<u32>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(va, vb)));
#endif
  }
#elif defined(__SSE2__)
  if (n == 32) {
    u32 m = 0;
    for (int h = 0; h < 2; ++h) {
      const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * h));
      const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * h));
      m |= static_cast<u32>(_mm_movemask_epi8(_mm_cmpeq_epi8(va, vb))) << (16 * h);
    }
    return m;
  }
#endif
  u32 m = 0;
  for (i64 o = 0; o < n; ++o) m |= static_cast<u32>(a[o] == b[o]) << o;
  return m;
}

// Potts sums for the chains [c0, c0 + 32 NW) (nc of them valid): acc = sum
// over edges of -J [s_i == s_j] (masked adds), bsum = sum_i b_i[s_i].
template <int NW>
void potts_sums(const std::uint8_t* s, i64 C, int K, const Upper& u, const float* bias, i64 n, i64 c0, i64 nc,
                double* acc, double* bsum) {
  ChainSums<NW> e;
  for (i64 c = 0; c < 32 * NW; ++c) bsum[c] = 0.0;
  for (i64 i = 0; i < n; ++i) {
    const std::uint8_t* si = s + i * C + c0;
    const float* bi = bias + i * K;
    for (i64 c = 0; c < nc; ++c) bsum[c] += static_cast<double>(bi[si[c]]);
    for (i64 k = u.ptr[i]; k < u.ptr[i + 1]; ++k) {
      const std::uint8_t* sj = s + static_cast<i64>(u.col[k]) * C + c0;
      u32 x[NW];
      for (int q = 0; q < NW; ++q) {
        const i64 m = std::min<i64>(32, nc - 32 * q);
        x[q] = m > 0 ? eq_bits(si + 32 * q, sj + 32 * q, m) : 0u;
      }
      e.add(x, u.w[k]);
    }
  }
  e.store(acc);
}

void k_potts_observe(const std::uint8_t* s, i64 C, int K, const SparseGraph& g, const float* bias,
                     double* energy, const std::int32_t* nodes, i64 nnodes, double* m1,
                     const std::int32_t* pairs, i64 npairs, double* m2) {
  if (C <= 0) return;
  const Upper u = upper_of(g, false);
  const i64 W = (C + 31) / 32;
  const i64 nw = block_words(W);
  const i64 nblocks = (W + nw - 1) / nw;
  parallel_for(nblocks, (g.row[g.n] / 2 + g.n) * nw * 8, [&](i64 b) {
    const i64 c0 = 32 * b * nw, c1 = std::min(C, c0 + 32 * nw);
    alignas(64) double acc[32 * kObsWords], bs[32 * kObsWords];
    if (c1 - c0 == 32 * kObsWords) {
      potts_sums<kObsWords>(s, C, K, u, bias, g.n, c0, c1 - c0, acc, bs);
    } else {
      for (i64 w = c0; w < c1; w += 32)
        potts_sums<1>(s, C, K, u, bias, g.n, w, std::min<i64>(32, c1 - w), acc + (w - c0), bs + (w - c0));
    }
    for (i64 c = c0; c < c1; ++c) energy[c] = u.e0 + acc[c - c0] - bs[c - c0];
  });
  parallel_for(nnodes, C, [&](i64 k) {
    const std::uint8_t* si = s + static_cast<i64>(nodes[k]) * C;
    i64 cnt[kPottsMaxStates] = {};
    for (i64 c = 0; c < C; ++c) ++cnt[si[c]];
    for (int q = 0; q < K; ++q) m1[k * K + q] += static_cast<double>(cnt[q]);
  });
  parallel_for(npairs, C, [&](i64 k) {
    const std::uint8_t* a = s + static_cast<i64>(pairs[2 * k]) * C;
    const std::uint8_t* b = s + static_cast<i64>(pairs[2 * k + 1]) * C;
    i64 p = 0;
    for (i64 c = 0; c < C; c += 32) p += popc32(eq_bits(a + c, b + c, std::min<i64>(32, C - c)));
    m2[k] += static_cast<double>(p);
  });
}

}  // namespace

bool k_field_tables(int mode) {
#if defined(HB_FIELD_TABLES)
  if (mode == 0) g_field_tables = false;
  if (mode == 1) g_field_tables = field_tables_supported();
  return g_field_tables;
#else
  (void)mode;
  return false;
#endif
}

void k_denominators(const float* x, float* d, i64 n, int path) {
  i64 j = 0;
#if defined(HB_FIELD_TABLES)
  if (path > 0 && g_field_tables) {
    for (; j + 64 <= n; j += 64) {
      __m512 v[4];
      for (int u = 0; u < 4; ++u) v[u] = _mm512_loadu_ps(x + j + 16 * u);
      denominators_n<4>(v, path == 1);
      for (int u = 0; u < 4; ++u) _mm512_storeu_ps(d + j + 16 * u, v[u]);
    }
  }
#endif
#if defined(HB_HAVE_SIMD)
  constexpr int kW = simd::kWidth;
  for (; j + kW <= n; j += kW) {
    vf32 v;
    std::memcpy(&v, x + j, sizeof v);
    v = exp_f32(v) + 1.0f;
    std::memcpy(d + j, &v, sizeof v);
  }
#endif
  (void)path;
  for (; j < n; ++j) d[j] = exp_f32(x[j]) + 1.0f;
}

const cpu::SparseTable kSparseTable = {k_ising_sweeps, k_potts_sweeps, k_ising_observe, k_field_tables,
                                       k_denominators, k_potts_observe};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(SparseTable, sparse_table, kSparseTable)
