// CPU loops over the sparse-graph updates of csrc/heatbath/sparse.h.
// Compiled once per instruction-set level; each copy exports its SparseTable.
// For each node of a block, the chains are taken 128 at a time (one Philox
// tile: 32 blocks, vectorized) and the spin updates run on SIMD vectors of
// chains (16 on AVX-512, 8 on AVX2), neighbour states read contiguously.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
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
  return add_if(f, p[0], w2);
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
  for (int v = 0; v < kV; ++v)
    for (int l = 0; l < 4; ++l)
      for (int q = 0; q < 4; ++q) {
        const vu32 x = (c[v][l] >> (8 * q)) & 0xFFu;
        std::uint8_t* o = out + 16 * (4 * l + q) + v * kW;
#if defined(__AVX512F__)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtepi32_epi8(reinterpret_cast<__m512i>(x)));
#else
        for (int i = 0; i < kW; ++i) o[i] = static_cast<std::uint8_t>(x[i]);
#endif
      }
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
// U vectors of chains from c_begin + off: the fields (a masked add per up
// neighbour, CSR order), the denominators, the decisions.
template <int U>
inline void spin_block(const std::uint8_t* bits, i64 row_bytes, const SparseGraph& g, i64 k0, i64 k1, float f0,
                       const float* neg2beta, std::uint8_t* si, const std::uint8_t* bytes, i64 off, i64 c_begin,
                       u64 seed, u64 stream, u64 chain0) {
  constexpr int kW = simd::kWidth;
  const i64 c0 = c_begin + off;
  vf32 f[U];
  for (int u = 0; u < U; ++u) f[u] = K<vf32>(f0);
  for (i64 k = k0; k < k1; ++k) {
    const vf32 w2 = K<vf32>(g.w[k] + g.w[k]);
    const std::uint8_t* nb = bits + static_cast<i64>(g.col[k]) * row_bytes + c0 / 8;
    for (int u = 0; u < U; ++u) f[u] = add_if_bits(f[u], nb + u * (kW / 8), w2);
  }
  // all denominators first (independent, branch-free), then the decisions
  for (int u = 0; u < U; ++u) {
    vf32 nb2;  // -(beta + beta): nb2 f is exactly -((beta + beta) f) of spin_denominator
    std::memcpy(&nb2, neg2beta + c0 + u * kW, sizeof(vf32));
    f[u] = exp_f32(nb2 * f[u]) + 1.0f;
  }
  for (int u = 0; u < U; ++u)
    store_bits(si + (c0 + u * kW) / 8, decide_vec(f[u], bytes + off + u * kW, seed, stream, chain0 + c0 + u * kW));
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
      float f = f0;
      for (i64 k = k0; k < k1; ++k)
        if ((bits[static_cast<i64>(g.col[k]) * row_bytes + c / 8] >> (c % 8)) & 1) f = f + (g.w[k] + g.w[k]);
      const std::uint8_t bit = static_cast<std::uint8_t>(1u << (c % 8));
      const bool up =
          spin_decide(bytes[off], spin_denominator(f, beta[c]), seed, stream, chain0 + static_cast<u64>(c));
      si[c / 8] = up ? (si[c / 8] | bit) : (si[c / 8] & ~bit);
    }
  }
}

inline void potts_node(std::uint8_t* s, i64 C, int K, const SparseGraph& g, const float* bias, const float* beta,
                       i64 i, u64 seed, u64 stream, i64 t0, i64 t1, u64 chain0) {
  const i64 k0 = g.row[i], k1 = g.row[i + 1];
  alignas(64) u32 words[kTile];
  float a[kPottsMaxStates];
  for (i64 t = t0; t < t1; ++t) {
    tile_words(seed, stream, chain0 / kTile + static_cast<u64>(t), words);
    const i64 c_begin = t * kTile;
    const i64 nc = C - c_begin < kTile ? C - c_begin : kTile;
    for (i64 off = 0; off < nc; ++off) {
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

// Calls body(c_begin, c_end) over chain ranges, in parallel when large.
template <class Body>
void over_chains(i64 chains, i64 cost, Body body) {
#if defined(_OPENMP)
  if (chains * cost >= 65536 && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
      const i64 chunk = (chains + nt - 1) / nt;
      const i64 b = t * chunk, e = b + chunk < chains ? b + chunk : chains;
      if (b < e) body(b, e);
    }
    return;
  }
#endif
  body(0, chains);
}

void k_ising_observe(const std::uint32_t* s, i64 C, const SparseGraph& g, const float* bias, double* energy,
                     double* mag, const std::int32_t* nodes, i64 nnodes, double* m1, const std::int32_t* pairs,
                     i64 npairs, double* m2) {
  if (C <= 0) return;
  const i64 W = (C + 31) / 32;
  auto spin = [&](i64 i, i64 c) { return ((s[i * W + (c >> 5)] >> (c & 31)) & 1u) ? 1 : -1; };
  over_chains(C, g.row[g.n] + g.n, [&](i64 cb, i64 ce) {
    std::vector<double> e(static_cast<size_t>(ce - cb), 0.0), m(static_cast<size_t>(ce - cb), 0.0);
    for (i64 i = 0; i < g.n; ++i) {
      for (i64 c = cb; c < ce; ++c) {
        double f = 0.0;
        for (i64 k = g.row[i]; k < g.row[i + 1]; ++k) f += static_cast<double>(g.w[k]) * spin(g.col[k], c);
        const int si = spin(i, c);
        e[c - cb] += si * (-0.5 * f - static_cast<double>(bias[i]));
        m[c - cb] += si;
      }
    }
    for (i64 c = cb; c < ce; ++c) {
      energy[c] = e[c - cb];
      mag[c] = g.n ? m[c - cb] / static_cast<double>(g.n) : 0.0;
    }
  });
  for (i64 k = 0; k < nnodes; ++k) {
    i64 acc = 0;
    for (i64 c = 0; c < C; ++c) acc += spin(nodes[k], c);
    m1[k] += static_cast<double>(acc);
  }
  for (i64 k = 0; k < npairs; ++k) {
    i64 acc = 0;
    for (i64 c = 0; c < C; ++c) acc += spin(pairs[2 * k], c) * spin(pairs[2 * k + 1], c);
    m2[k] += static_cast<double>(acc);
  }
}

void k_potts_observe(const std::uint8_t* s, i64 C, int K, const SparseGraph& g, const float* bias, double* energy,
                     const std::int32_t* nodes, i64 nnodes, double* m1, const std::int32_t* pairs, i64 npairs,
                     double* m2) {
  if (C <= 0) return;
  over_chains(C, g.row[g.n] + g.n, [&](i64 cb, i64 ce) {
    std::vector<double> e(static_cast<size_t>(ce - cb), 0.0);
    for (i64 i = 0; i < g.n; ++i) {
      const std::uint8_t* si = s + i * C;
      for (i64 c = cb; c < ce; ++c) {
        double f = 0.0;
        for (i64 k = g.row[i]; k < g.row[i + 1]; ++k)
          f += s[static_cast<i64>(g.col[k]) * C + c] == si[c] ? static_cast<double>(g.w[k]) : 0.0;
        e[c - cb] += -0.5 * f - static_cast<double>(bias[i * K + si[c]]);
      }
    }
    for (i64 c = cb; c < ce; ++c) energy[c] = e[c - cb];
  });
  for (i64 k = 0; k < nnodes; ++k) {
    const std::uint8_t* si = s + static_cast<i64>(nodes[k]) * C;
    for (i64 c = 0; c < C; ++c) m1[k * K + si[c]] += 1.0;
  }
  for (i64 k = 0; k < npairs; ++k) {
    const std::uint8_t* a = s + static_cast<i64>(pairs[2 * k]) * C;
    const std::uint8_t* b = s + static_cast<i64>(pairs[2 * k + 1]) * C;
    i64 acc = 0;
    for (i64 c = 0; c < C; ++c) acc += a[c] == b[c];
    m2[k] += static_cast<double>(acc);
  }
}

}  // namespace

const cpu::SparseTable kSparseTable = {k_ising_sweeps, k_potts_sweeps, k_ising_observe, k_potts_observe};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(SparseTable, sparse_table, kSparseTable)
