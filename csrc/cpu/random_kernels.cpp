// CPU loops over the formulas of csrc/heatbath/distributions.h. Compiled once
// per instruction-set level (HB_ISA = isa_base, isa_avx2, isa_avx512; see
// CMakeLists.txt); each copy exports its RandomTable.
#include <cstdint>
#include <cstring>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "heatbath/distributions.h"
#include "philox_tile.h"
#include "random.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

// Below this many elements a fill runs on the calling thread.
constexpr i64 kParallelMin = i64(1) << 15;

// Runs body(begin, end) over [0, n) split into one contiguous chunk per
// thread. Chunk edges cannot change results: every element is a pure
// function of its index.
template <class Body>
void parallel_chunks(i64 n, Body body) {
#if defined(_OPENMP)
  if (n >= kParallelMin && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
      const i64 chunk = (n + nt - 1) / nt;
      const i64 begin = t * chunk;
      const i64 end = begin + chunk < n ? begin + chunk : n;
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(0, n);
}

// Calls elem(j, i) for the partial tiles at both ends and tile(t, i) for each
// whole tile t, where j is the stream index and i the output index.
template <class Tile, class Elem>
void over_tiles(u64 offset, i64 begin, i64 end, u64 per_tile, Tile tile, Elem elem) {
  u64 j = offset + static_cast<u64>(begin);
  const u64 j_end = offset + static_cast<u64>(end);
  const u64 first_full = (j + per_tile - 1) / per_tile * per_tile;
  for (; j < j_end && j < first_full; ++j) elem(j, static_cast<i64>(j - offset));
  for (; j_end - j >= per_tile && j < j_end; j += per_tile) tile(j / per_tile, static_cast<i64>(j - offset));
  for (; j < j_end; ++j) elem(j, static_cast<i64>(j - offset));
}


// The four words of the kTileBlocks blocks of tile t, word-major: w[l][b].
inline void philox_tile(u64 seed, u64 stream, u64 t, u32 w[4][kTileBlocks]) {
#if defined(HB_HAVE_SIMD)
  vu32 c[kChains][4];
  philox_tile_vec(seed, stream, t, c);
  for (int v = 0; v < kChains; ++v)
    for (int l = 0; l < 4; ++l) std::memcpy(&w[l][v * simd::kWidth], &c[v][l], sizeof(vu32));
#else
  const u64 base = t * kTileBlocks;
  for (int b = 0; b < kTileBlocks; ++b) {
    const Words4 r = philox_block(seed, stream, base + b);
    for (int l = 0; l < 4; ++l) w[l][b] = r.w[l];
  }
#endif
}

void k_philox(const u32* counter, const u32* key, u32* out, i64 n) {
  parallel_chunks(n, [&](i64 begin, i64 end) {
    for (i64 i = begin; i < end; ++i) {
      u32 c0 = counter[4 * i], c1 = counter[4 * i + 1], c2 = counter[4 * i + 2], c3 = counter[4 * i + 3];
      philox4x32_10(c0, c1, c2, c3, key[2 * i], key[2 * i + 1]);
      out[4 * i] = c0;
      out[4 * i + 1] = c1;
      out[4 * i + 2] = c2;
      out[4 * i + 3] = c3;
    }
  });
}

constexpr u64 kTile1 = 4 * kTileBlocks;  // values per tile, one word per value
constexpr u64 kTile2 = 2 * kTileBlocks;  // values per tile, two words per value

// Fused float32 tile: Philox and the transform on whole vectors, then V
// contiguous stores.
template <bool kNormal>
inline void f32_tile(u64 seed, u64 stream, u64 t, float* o) {
#if defined(HB_HAVE_SIMD)
  vu32 c[kChains][4];
  philox_tile_vec(seed, stream, t, c);
  for (int h = 0; h < kChains; ++h) {
    vf32 v[4];
    if (kNormal) {
      box_muller_f32(c[h][0], c[h][1], v[0], v[1]);
      box_muller_f32(c[h][2], c[h][3], v[2], v[3]);
    } else {
      for (int l = 0; l < 4; ++l) v[l] = unit_f32(c[h][l]);
    }
    for (int l = 0; l < 4; ++l) std::memcpy(o + l * kTileBlocks + h * simd::kWidth, &v[l], sizeof(vf32));
  }
#else
  for (int b = 0; b < kTileBlocks; ++b) {
    float v[4];
    if (kNormal)
      normal_f32_block(seed, stream, t * kTileBlocks + b, v);
    else
      uniform_f32_block(seed, stream, t * kTileBlocks + b, v);
    for (int l = 0; l < 4; ++l) o[l * kTileBlocks + b] = v[l];
  }
#endif
}

template <bool kNormal>
void k_f32(u64 seed, u64 stream, u64 offset, i64 n, float* out) {
  parallel_chunks(n, [&](i64 begin, i64 end) {
    over_tiles(
        offset, begin, end, kTile1, [&](u64 t, i64 i) { f32_tile<kNormal>(seed, stream, t, out + i); },
        [&](u64 j, i64 i) {
          const ElementSlot s = element_slot(j, 1);
          float v[4];
          if (kNormal)
            normal_f32_block(seed, stream, s.block, v);
          else
            uniform_f32_block(seed, stream, s.block, v);
          out[i] = v[s.slot];
        });
  });
}

template <bool kNormal>
inline void f64_pair(u32 w0, u32 w1, u32 w2, u32 w3, double v[2]) {
  if (kNormal) {
    box_muller_f64(unit_f64(w0, w1), unit_f64(w2, w3), v[0], v[1]);
  } else {
    v[0] = unit_f64(w0, w1);
    v[1] = unit_f64(w2, w3);
  }
}

template <bool kNormal>
void k_f64(u64 seed, u64 stream, u64 offset, i64 n, double* out) {
  parallel_chunks(n, [&](i64 begin, i64 end) {
    over_tiles(
        offset, begin, end, kTile2,
        [&](u64 t, i64 i) {
          u32 w[4][kTileBlocks];
          philox_tile(seed, stream, t, w);
          for (int b = 0; b < kTileBlocks; ++b) {
            double v[2];
            f64_pair<kNormal>(w[0][b], w[1][b], w[2][b], w[3][b], v);
            out[i + b] = v[0];
            out[i + kTileBlocks + b] = v[1];
          }
        },
        [&](u64 j, i64 i) {
          const ElementSlot s = element_slot(j, 2);
          const Words4 r = philox_block(seed, stream, s.block);
          double v[2];
          f64_pair<kNormal>(r.w[0], r.w[1], r.w[2], r.w[3], v);
          out[i] = v[s.slot];
        });
  });
}

template <class P>
i64 k_bernoulli(u64 seed, u64 stream, u64 offset, i64 n, const P* p, i64 p_stride, std::uint8_t* out) {
  i64 bad_total = 0;
  const u64 t_const = p_stride == 0 ? bernoulli_threshold(p[0]) : 0;
  auto thr = [&](i64 i) { return p_stride == 0 ? t_const : bernoulli_threshold(p[i * p_stride]); };
#if defined(_OPENMP)
#pragma omp parallel reduction(+ : bad_total) if (n >= kParallelMin)
#endif
  {
#if defined(_OPENMP)
    const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const i64 t = 0, nt = 1;
#endif
    const i64 chunk = (n + nt - 1) / nt;
    const i64 begin = t * chunk;
    const i64 end = begin + chunk < n ? begin + chunk : n;
    i64 bad = 0;
    auto put = [&](i64 i, u32 w) {
      const u64 th = thr(i);
      bad += th == kBadThreshold;
      out[i] = static_cast<u64>(w) < th;
    };
    if (begin < end)
      over_tiles(
          offset, begin, end, kTile1,
          [&](u64 tt, i64 i) {
            u32 w[4][kTileBlocks];
            philox_tile(seed, stream, tt, w);
            for (int l = 0; l < 4; ++l)
              for (int b = 0; b < kTileBlocks; ++b) put(i + l * kTileBlocks + b, w[l][b]);
          },
          [&](u64 j, i64 i) {
            const ElementSlot s = element_slot(j, 1);
            put(i, philox_block(seed, stream, s.block).w[s.slot]);
          });
    bad_total += bad;
  }
  return bad_total;
}

void k_integers(u64 seed, u64 stream, u64 offset, i64 n, std::int64_t low, u64 range, std::int64_t* out) {
  // range == 0 stands for 2^64: the word itself.
  auto map = [&](u32 hi, u32 lo) {
    const u64 x = (static_cast<u64>(hi) << 32) | lo;
    return static_cast<std::int64_t>(static_cast<u64>(low) + (range == 0 ? x : mulhi64(x, range)));
  };
  parallel_chunks(n, [&](i64 begin, i64 end) {
    over_tiles(
        offset, begin, end, kTile2,
        [&](u64 t, i64 i) {
          u32 w[4][kTileBlocks];
          philox_tile(seed, stream, t, w);
          for (int b = 0; b < kTileBlocks; ++b) {
            out[i + b] = map(w[0][b], w[1][b]);
            out[i + kTileBlocks + b] = map(w[2][b], w[3][b]);
          }
        },
        [&](u64 j, i64 i) {
          const ElementSlot s = element_slot(j, 2);
          const Words4 r = philox_block(seed, stream, s.block);
          out[i] = map(r.w[2 * s.slot], r.w[2 * s.slot + 1]);
        });
  });
}

}  // namespace

// Order of cpu::RandomTable: philox, uniform_f32, uniform_f64, normal_f32,
// normal_f64, bernoulli_f32, bernoulli_f64, integers.
const cpu::RandomTable kRandomTable = {
    k_philox,    k_f32<false>,       k_f64<false>,        k_f32<true>,
    k_f64<true>, k_bernoulli<float>, k_bernoulli<double>, k_integers,
};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(RandomTable, random_table, kRandomTable)
