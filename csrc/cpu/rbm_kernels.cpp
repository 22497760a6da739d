// CPU loops over the RBM formulas of csrc/heatbath/rbm.h. Compiled once per
// instruction-set level (HB_ISA = isa_base, isa_avx2, isa_avx512; see
// CMakeLists.txt); each copy exports its RbmTable.
//
// The loop runs over Philox tiles of the stream range [offset, offset + n),
// n = rows * cols: for each tile it gathers the tile's pre-activations, biases
// and temperatures into small aligned buffers (rows may be strided and a tile
// may span rows), draws the tile's words or normals with SIMD Philox, applies
// the formula on whole vectors and scatters the results. Every element is a
// pure function of its stream index, so results do not depend on the thread
// count, the chunking or the level.
#include <cstdint>
#include <cstring>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "heatbath/rbm.h"
#include "philox_tile.h"
#include "rbm.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

// Elements per OpenMP thread, at least: a thread gets about half a
// millisecond of work or more. RBM passes sit between BLAS calls whose own
// threads compete for the same cores, so small parallel regions cost more
// (thread wake-up, spinning against BLAS workers) than they save; a layer of
// 1000 x 784 runs on the calling thread.
constexpr i64 kPerThread = i64(1) << 19;
constexpr int kWordsPerTile = 4 * kTileBlocks;  // one word per value
constexpr int kPairsPerTile = 2 * kTileBlocks;  // two words per value (float64 normals)

// Runs tile(t) for every tile t in [t0, t1], on up to n / kPerThread threads;
// returns the sum of what the tiles return (their counts of non-finite inputs).
template <class Tile>
i64 for_tiles(u64 t0, u64 t1, i64 n, Tile tile) {
  const i64 count = static_cast<i64>(t1 - t0 + 1);
  i64 bad = 0;
#if defined(_OPENMP)
  const i64 want = n / kPerThread, most = omp_get_max_threads();
  const int threads = static_cast<int>(want < most ? want : most);
  if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : bad)
    for (i64 k = 0; k < count; ++k) bad += tile(t0 + static_cast<u64>(k));
    return bad;
  }
#endif
  (void)n;
  for (i64 k = 0; k < count; ++k) bad += tile(t0 + static_cast<u64>(k));
  return bad;
}

// Number of non-finite values among p[0 .. n) (x - x is 0 exactly for finite x).
template <class T>
inline i64 count_nonfinite(const T* p, int n) {
  int bad = 0;
  for (int k = 0; k < n; ++k) bad += !(p[k] - p[k] == T(0));
  return bad;
}

// The flat indices [lo, hi) of tile t (VPT values per tile) inside the draw,
// and the tile position k0 of flat index lo.
struct TileSpan {
  i64 lo, hi;
  int k0;
};

inline TileSpan tile_span(u64 t, u64 offset, i64 n, int vpt) {
  const u64 j0 = t * static_cast<u64>(vpt);
  const u64 jlo = j0 > offset ? j0 : offset;
  const u64 jend = offset + static_cast<u64>(n);
  const u64 jhi = j0 + vpt < jend ? j0 + vpt : jend;
  return TileSpan{static_cast<i64>(jlo - offset), static_cast<i64>(jhi - offset), static_cast<int>(jlo - j0)};
}

// Calls seg(r, c, k, len) for the runs of tile span sp that lie in one row:
// flat indices r * cols + c .. + len, at tile positions k .. k + len.
template <class Seg>
inline void for_segments(const TileSpan& sp, i64 cols, Seg seg) {
  i64 i = sp.lo, r = sp.lo / cols, c = sp.lo % cols;
  int k = sp.k0;
  while (i < sp.hi) {
    const i64 len = cols - c < sp.hi - i ? cols - c : sp.hi - i;
    seg(r, c, k, len);
    i += len;
    k += static_cast<int>(len);
    c = 0;
    ++r;
  }
}

template <class T>
inline void fill_n(T* p, i64 n, T v) {
  for (i64 q = 0; q < n; ++q) p[q] = v;
}


// The 128 words of tile t in stream-element order: element l * 32 + b is
// word l of block t * 32 + b (distributions.h, element_slot(j, 1)).
inline void tile_words(u64 seed, u64 stream, u64 t, u32* w) {
#if defined(HB_HAVE_SIMD)
  vu32 c[kChains][4];
  philox_tile_vec(seed, stream, t, c);
  for (int v = 0; v < kChains; ++v)
    for (int l = 0; l < 4; ++l) std::memcpy(w + l * kTileBlocks + v * simd::kWidth, &c[v][l], sizeof(vu32));
#else
  for (int b = 0; b < kTileBlocks; ++b) {
    const Words4 r = philox_block(seed, stream, t * kTileBlocks + b);
    for (int l = 0; l < 4; ++l) w[l * kTileBlocks + b] = r.w[l];
  }
#endif
}

// The 128 float32 normals of tile t in element order (as heatbath.random.normal).
inline void tile_normals_f32(u64 seed, u64 stream, u64 t, float* z) {
#if defined(HB_HAVE_SIMD)
  vu32 c[kChains][4];
  philox_tile_vec(seed, stream, t, c);
  for (int h = 0; h < kChains; ++h) {
    vf32 v[4];
    box_muller_f32(c[h][0], c[h][1], v[0], v[1]);
    box_muller_f32(c[h][2], c[h][3], v[2], v[3]);
    for (int l = 0; l < 4; ++l) std::memcpy(z + l * kTileBlocks + h * simd::kWidth, &v[l], sizeof(vf32));
  }
#else
  for (int b = 0; b < kTileBlocks; ++b) {
    float v[4];
    normal_f32_block(seed, stream, t * kTileBlocks + b, v);
    for (int l = 0; l < 4; ++l) z[l * kTileBlocks + b] = v[l];
  }
#endif
}

// The 64 float64 normals of tile t in element order (element_slot(j, 2)).
inline void tile_normals_f64(u64 seed, u64 stream, u64 t, double* z) {
  for (int b = 0; b < kTileBlocks; ++b) {
    double v[2];
    normal_f64_block(seed, stream, t * kTileBlocks + b, v);
    z[b] = v[0];
    z[kTileBlocks + b] = v[1];
  }
}

// Tile buffers of the Bernoulli draw.
template <class T>
struct alignas(64) BernBuf {
  T x[kWordsPerTile], b[kWordsPerTile], a[kWordsPerTile], s[kWordsPerTile], p[kWordsPerTile],
      o[kWordsPerTile];
  u32 w[kWordsPerTile];
};

// kUniform: one temperature s0 for the tile and no base rates (B.a, B.s unused;
// the same values as the general path, since fma(1 - s0, 0, t) = t).
template <bool kUniform>
inline void bern_compute(BernBuf<float>& B, bool draw, float s0) {
  if (!draw) std::memset(B.w, 0, sizeof B.w);
#if defined(HB_HAVE_SIMD)
  const vf32 s_all = K<vf32>(s0), zero = K<vf32>(0.0f);
  for (int k = 0; k < kWordsPerTile; k += simd::kWidth) {
    vf32 x, b, a, s, p, o;
    vu32 w;
    std::memcpy(&x, B.x + k, sizeof x);
    std::memcpy(&b, B.b + k, sizeof b);
    if (kUniform) {
      a = zero;
      s = s_all;
    } else {
      std::memcpy(&a, B.a + k, sizeof a);
      std::memcpy(&s, B.s + k, sizeof s);
    }
    std::memcpy(&w, B.w + k, sizeof w);
    bernoulli_unit_f32(x, b, a, s, w, p, o);
    std::memcpy(B.p + k, &p, sizeof p);
    std::memcpy(B.o + k, &o, sizeof o);
  }
#else
  for (int k = 0; k < kWordsPerTile; ++k)
    bernoulli_unit_f32(B.x[k], B.b[k], kUniform ? 0.0f : B.a[k], kUniform ? s0 : B.s[k], B.w[k], B.p[k], B.o[k]);
#endif
}

template <bool kUniform>
inline void bern_compute(BernBuf<double>& B, bool draw, double s0) {
  if (!draw) std::memset(B.w, 0, sizeof B.w);
  for (int k = 0; k < kWordsPerTile; ++k)
    bernoulli_unit_f64(B.x[k], B.b[k], kUniform ? 0.0 : B.a[k], kUniform ? s0 : B.s[k], B.w[k], B.p[k], B.o[k]);
}

// Returns the number of non-finite pre-activations x (the draw is done anyway).
template <class T>
i64 k_bernoulli(const RbmBernoulliArgs<T>& A) {
  const i64 n = A.rows * A.cols;
  if (n <= 0) return 0;
  const bool draw = A.sample != nullptr;
  const bool uniform = A.base == nullptr && A.scale_stride == 0;
  const u64 t0 = A.offset / kWordsPerTile, t1 = (A.offset + static_cast<u64>(n) - 1) / kWordsPerTile;
  return for_tiles(t0, t1, n, [&](u64 t) -> i64 {
    BernBuf<T> B;
    const TileSpan sp = tile_span(t, A.offset, n, kWordsPerTile);
    if (sp.hi - sp.lo < kWordsPerTile) {
      for (int k = 0; k < kWordsPerTile; ++k) B.x[k] = B.b[k] = B.a[k] = B.s[k] = T(0);
    }
    for_segments(sp, A.cols, [&](i64 r, i64 c, int k, i64 len) {
      std::memcpy(B.x + k, A.x + r * A.ldx + c, len * sizeof(T));
      std::memcpy(B.b + k, A.bias + c, len * sizeof(T));
      if (uniform) return;
      if (A.base)
        std::memcpy(B.a + k, A.base + c, len * sizeof(T));
      else
        fill_n(B.a + k, len, T(0));
      fill_n(B.s + k, len, A.scale[r * A.scale_stride]);
    });
    if (draw) tile_words(A.seed, A.stream, t, B.w);
    if (uniform)
      bern_compute<true>(B, draw, A.scale[0]);
    else
      bern_compute<false>(B, draw, T(0));
    for_segments(sp, A.cols, [&](i64 r, i64 c, int k, i64 len) {
      if (A.prob) std::memcpy(A.prob + r * A.ld_prob + c, B.p + k, len * sizeof(T));
      if (draw) std::memcpy(A.sample + r * A.ld_sample + c, B.o + k, len * sizeof(T));
    });
    return count_nonfinite(B.x, kWordsPerTile);
  });
}

template <class T, int VPT>
struct alignas(64) GaussBuf {
  T x[VPT], b[VPT], sg[VPT], s[VPT], z[VPT], m[VPT], o[VPT];
};

inline void gauss_compute(GaussBuf<float, kWordsPerTile>& B) {
#if defined(HB_HAVE_SIMD)
  for (int k = 0; k < kWordsPerTile; k += simd::kWidth) {
    vf32 x, b, sg, s, z, m, o;
    std::memcpy(&x, B.x + k, sizeof x);
    std::memcpy(&b, B.b + k, sizeof b);
    std::memcpy(&sg, B.sg + k, sizeof sg);
    std::memcpy(&s, B.s + k, sizeof s);
    std::memcpy(&z, B.z + k, sizeof z);
    gaussian_unit_f32(x, b, sg, s, z, m, o);
    std::memcpy(B.m + k, &m, sizeof m);
    std::memcpy(B.o + k, &o, sizeof o);
  }
#else
  for (int k = 0; k < kWordsPerTile; ++k) gaussian_unit_f32(B.x[k], B.b[k], B.sg[k], B.s[k], B.z[k], B.m[k], B.o[k]);
#endif
}

inline void gauss_compute(GaussBuf<double, kPairsPerTile>& B) {
  for (int k = 0; k < kPairsPerTile; ++k) gaussian_unit_f64(B.x[k], B.b[k], B.sg[k], B.s[k], B.z[k], B.m[k], B.o[k]);
}

inline void tile_normals(u64 seed, u64 stream, u64 t, float* z) { tile_normals_f32(seed, stream, t, z); }
inline void tile_normals(u64 seed, u64 stream, u64 t, double* z) { tile_normals_f64(seed, stream, t, z); }

// Returns the number of non-finite inputs x.
template <class T>
i64 k_gaussian(const RbmGaussianArgs<T>& A) {
  constexpr int VPT = sizeof(T) == 4 ? kWordsPerTile : kPairsPerTile;
  const i64 n = A.rows * A.cols;
  if (n <= 0) return 0;
  const bool draw = A.sample != nullptr;
  const u64 t0 = A.offset / VPT, t1 = (A.offset + static_cast<u64>(n) - 1) / VPT;
  return for_tiles(t0, t1, n, [&](u64 t) -> i64 {
    GaussBuf<T, VPT> B;
    const TileSpan sp = tile_span(t, A.offset, n, VPT);
    if (sp.hi - sp.lo < VPT) {
      for (int k = 0; k < VPT; ++k) B.x[k] = B.b[k] = B.sg[k] = B.s[k] = T(0);
    }
    for_segments(sp, A.cols, [&](i64 r, i64 c, int k, i64 len) {
      std::memcpy(B.x + k, A.x + r * A.ldx + c, len * sizeof(T));
      std::memcpy(B.b + k, A.bias + c, len * sizeof(T));
      if (A.sigma_stride)
        std::memcpy(B.sg + k, A.sigma + c, len * sizeof(T));
      else
        fill_n(B.sg + k, len, A.sigma[0]);
      fill_n(B.s + k, len, A.scale[r * A.scale_stride]);
    });
    if (draw)
      tile_normals(A.seed, A.stream, t, B.z);
    else
      for (int q = 0; q < VPT; ++q) B.z[q] = T(0);
    gauss_compute(B);
    for_segments(sp, A.cols, [&](i64 r, i64 c, int k, i64 len) {
      if (A.mean) std::memcpy(A.mean + r * A.ld_mean + c, B.m + k, len * sizeof(T));
      if (draw) std::memcpy(A.sample + r * A.ld_sample + c, B.o + k, len * sizeof(T));
    });
    return count_nonfinite(B.x, VPT);
  });
}

}  // namespace

// Order of cpu::RbmTable: bernoulli_f32, bernoulli_f64, gaussian_f32, gaussian_f64.
const cpu::RbmTable kRbmTable = {k_bernoulli<float>, k_bernoulli<double>, k_gaussian<float>, k_gaussian<double>};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(RbmTable, rbm_table, kRbmTable)
