// Multi-spin-coded heat-bath and Metropolis updates of Ising lattices, written
// once for the CPU loops (a 32-bit word, or a SIMD vector of them) and the
// CUDA kernels (one word per thread).
//
// A word holds 32 sites of one colour of one chain (bit l = lane l; 1 = spin
// up). Every lane compares a 32-bit uniform word u with the 33-bit threshold
// t of its class: P(u < t) = t / 2^32 exactly, with t = floor(p 2^32)
// precomputed on the host, so no transcendental runs per site and CPU and GPU
// agree to the bit.
//
// The comparison is bit-sliced: u is drawn as 32 bit planes, plane j holding
// bit 31 - j of the u of all 32 lanes, and lanes are compared from the most
// significant bit down. A lane is decided at the first bit where u and t
// differ, so the planes are drawn four at a time and only until every lane of
// the word (or vector of words) is decided: about 8 planes on average instead
// of 32, and the result is the one the full 32-bit u would give.
//
// Counter layout. Word id w (a global index over (chain of the run, colour,
// row, word in row); see the geometry below), planes 4g .. 4g + 3 (g = 0..7):
//   philox_block(seed, stream = sweep, block = 8 w + g), slot l -> plane 4g + l
// so every spin update is a pure function of (seed, sweep, site, chain).
#pragma once
#include "defines.h"
#include "philox.h"

namespace heatbath {
inline namespace HB_ISA {

// Classes: k = number of up neighbours (0..z) for heat-bath; for Metropolis
// class (s, k) = s (z + 1) + k with s the spin's current bit.
constexpr int kIsingMaxClasses = 14;

// Per chain, what the kernels need of the thresholds t_c (33-bit):
//   bits[b]  classes c (a bit mask) whose t_c has bit b set (t_c < 2^32)
//   always   classes with t_c = 2^32 (decided "below" before any bit)
struct IsingThresholds {
  u32 bits[32];
  u32 always;
};
static_assert(sizeof(IsingThresholds) == 33 * sizeof(u32), "IsingThresholds must be 33 packed words");

HB_HD bool any_bits(u32 x) { return x != 0; }
#if defined(HB_HAVE_SIMD)
inline bool any_bits(vu32 x) {
#if defined(__AVX512F__)
  return _mm512_test_epi32_mask(reinterpret_cast<__m512i>(x), reinterpret_cast<__m512i>(x)) != 0;
#else
  return !_mm256_testz_si256(reinterpret_cast<__m256i>(x), reinterpret_cast<__m256i>(x));
#endif
}
#endif

template <class W>
HB_HD W splat_w(u32 x) {
  return W{} + x;
}

// Bit-sliced population count of Z (4 or 6) neighbour words: one-hot class
// masks is[k], k = 0..Z, lane l set in is[k] when k of its neighbours are up.
template <int Z, class W>
HB_HD void neighbour_classes(const W (&nb)[Z], W (&is)[Z + 1]) {
  W b0, b1, b2;
  if constexpr (Z == 4) {
    const W x = nb[0] ^ nb[1];
    const W s = x ^ nb[2];
    const W c = (nb[0] & nb[1]) | (nb[2] & x);
    b0 = s ^ nb[3];
    const W c2 = s & nb[3];
    b1 = c ^ c2;
    b2 = c & c2;
  } else {
    const W xa = nb[0] ^ nb[1], xb = nb[3] ^ nb[4];
    const W sa = xa ^ nb[2], sb = xb ^ nb[5];
    const W ca = (nb[0] & nb[1]) | (nb[2] & xa);
    const W cb = (nb[3] & nb[4]) | (nb[5] & xb);
    b0 = sa ^ sb;
    const W c0 = sa & sb;
    const W x1 = ca ^ cb;
    b1 = x1 ^ c0;
    b2 = (ca & cb) | (c0 & x1);
  }
  const W n0 = ~b0, n1 = ~b1, n2 = ~b2;
  is[0] = n2 & n1 & n0;
  is[1] = n2 & n1 & b0;
  is[2] = n2 & b1 & n0;
  is[3] = n2 & b1 & b0;
  is[4] = b2 & n1 & n0;
  if constexpr (Z == 6) {
    is[Z - 1] = b2 & n1 & b0;
    is[Z] = b2 & b1 & n0;
  }
}

// Philox planes 4g .. 4g + 3 of NV words w0[v] (scalar or vector of words).
template <int NV, class W>
HB_HD void ising_planes(u64 seed, u64 stream, const W (&wlo)[NV], const W (&whi)[NV], int g, W (&p)[NV][4]) {
  for (int v = 0; v < NV; ++v) {
    // block = 8 w + g: w < 2^61, low word 8 wlo + g cannot carry past bit 31
    // of (8 wlo) since g < 8 and 8 wlo has its three low bits clear.
    p[v][0] = (wlo[v] << 3) | static_cast<u32>(g);
    p[v][1] = (whi[v] << 3) | (wlo[v] >> 29);
    p[v][2] = splat_w<W>(static_cast<u32>(stream));
    p[v][3] = splat_w<W>(static_cast<u32>(stream >> 32));
  }
  philox4x32_10_n<NV>(p, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
}

template <int Z, bool kMetropolis>
struct IsingClasses {
  static constexpr int value = kMetropolis ? 2 * (Z + 1) : Z + 1;
};

// Step 1 of a word update: class masks is[c] of the lanes, and the
// comparison state: lt (lanes already decided "below": new bit 1 for
// heat-bath, flip for Metropolis) and eq (lanes still undecided).
template <int Z, bool kMetropolis, class W>
HB_HD void ising_begin(W s, const W (&nb)[Z], W valid, const IsingThresholds& th,
                       W (&is)[IsingClasses<Z, kMetropolis>::value], W& lt, W& eq) {
  constexpr int kClasses = IsingClasses<Z, kMetropolis>::value;
  W k1[Z + 1];
  neighbour_classes<Z>(nb, k1);
  for (int k = 0; k <= Z; ++k) {
    if constexpr (kMetropolis) {
      is[k] = k1[k] & ~s;
      is[Z + 1 + k] = k1[k] & s;
    } else {
      is[k] = k1[k];
    }
  }
  W a = W{};
  for (int c = 0; c < kClasses; ++c)
    if ((th.always >> c) & 1u) a |= is[c];
  lt = a;
  eq = valid & ~a;
}

// Step 2, for group g: compare the four planes p (bits 31 - 4g .. 28 - 4g of
// the lanes' uniforms) with the thresholds' bits.
template <int kClasses, class W>
HB_HD void ising_group(int g, const W (&p)[4], const IsingThresholds& th, const W (&is)[kClasses], W& lt, W& eq) {
  for (int l = 0; l < 4; ++l) {
    const u32 m = th.bits[31 - (4 * g + l)];
    W tb = W{};
    for (int c = 0; c < kClasses; ++c)
      if ((m >> c) & 1u) tb |= is[c];
    const W ub = p[l];
    lt |= eq & tb & ~ub;
    eq &= ~(tb ^ ub);
  }
}

// Step 3: the new bits.
template <bool kMetropolis, class W>
HB_HD W ising_end(W s, W lt, W valid) {
  return (kMetropolis ? (lt ^ s) : lt) & valid;
}

// The new state of NV words of one chain (Z neighbours each). s: the words'
// current bits; nb: neighbour words (aligned lane by lane); valid: lanes in
// use; wlo/whi: the words' ids (low and high 32 bits). Returns new bits in s.
// Planes are drawn for all NV words until every lane is decided.
template <int Z, bool kMetropolis, int NV, class W>
HB_HD void ising_update_words(W (&s)[NV], const W (&nb)[Z][NV], const W (&valid)[NV], const W (&wlo)[NV],
                              const W (&whi)[NV], const IsingThresholds& th, u64 seed, u64 stream) {
  constexpr int kClasses = IsingClasses<Z, kMetropolis>::value;
  W is[NV][kClasses];
  W lt[NV], eq[NV];
  for (int v = 0; v < NV; ++v) {
    W nv[Z];
    for (int d = 0; d < Z; ++d) nv[d] = nb[d][v];
    ising_begin<Z, kMetropolis>(s[v], nv, valid[v], th, is[v], lt[v], eq[v]);
  }
  for (int g = 0; g < 8; ++g) {
    bool open = false;
    for (int v = 0; v < NV; ++v) open = open || any_bits(eq[v]);
    if (!open) break;
    W p[NV][4];
    ising_planes<NV>(seed, stream, wlo, whi, g, p);
    for (int v = 0; v < NV; ++v) ising_group<kClasses>(g, p[v], th, is[v], lt[v], eq[v]);
  }
  for (int v = 0; v < NV; ++v) s[v] = ising_end<kMetropolis>(s[v], lt[v], valid[v]);
}

// ---- packed lattice geometry ------------------------------------------------
//
// A periodic lattice Lx x Ly (x Lz), every side even. Colour c = (x + y + z)
// mod 2. Row r = z Ly + y; the sites of colour c in row r sit at
// x = 2k + p, p = (y + z + c) mod 2, k = 0 .. H - 1, H = Lx / 2, packed into
// wpr = ceil(H / 32) words (H <= 32 or H a multiple of 32). Word (row r,
// j) of colour c of chain n lies at ((n * 2 + c) * rows + r) * wpr + j. Its
// id for the random planes is the same index with n the chain's index in the
// whole run (chain0 + n when the chains here are chains chain0 .. of a run),
// so a run split into pieces of chains draws the planes of the unsplit run.
struct IsingGeometry {
  i64 lx, ly, lz;  // lz = 1 for 2D
  i64 h, wpr, rows;
  int dim;
  HB_HD i64 words_per_colour() const { return rows * wpr; }
  HB_HD i64 words_per_chain() const { return 2 * rows * wpr; }
  HB_HD u32 valid_mask() const { return h >= 32 ? 0xFFFFFFFFu : ((u32(1) << h) - 1u); }
};

// The x-neighbour word that is not aligned: lane k holds site k + 1 (p = 1)
// or k - 1 (p = 0) of the other colour's row `o` (wpr words), periodic in H.
HB_HD u32 shifted_row_word(const u32* o, i64 j, i64 wpr, i64 h, int p) {
  if (h < 32) {
    const u32 w = o[0];
    const u32 mask = (u32(1) << h) - 1u;
    return p ? ((w >> 1) | ((w & 1u) << (h - 1))) & mask : ((w << 1) | (w >> (h - 1))) & mask;
  }
  if (p) {
    const u32 nxt = o[j + 1 < wpr ? j + 1 : 0];
    return (o[j] >> 1) | (nxt << 31);
  }
  const u32 prv = o[j > 0 ? j - 1 : wpr - 1];
  return (o[j] << 1) | (prv >> 31);
}

// Gathers the Z neighbour words of word (row r = z * ly + y, j) of colour c;
// base: the chain's first word.
template <int Z>
HB_HD void gather_neighbours(const u32* base, const IsingGeometry& g, int c, i64 r, i64 y, i64 z, i64 j,
                             u32 (&nb)[Z]) {
  const int p = static_cast<int>((y + z + c) & 1);
  const u32* other = base + (1 - c) * g.rows * g.wpr;
  const u32* orow = other + r * g.wpr;
  nb[0] = orow[j];
  nb[1] = shifted_row_word(orow, j, g.wpr, g.h, p);
  const i64 yu = y + 1 < g.ly ? y + 1 : 0, yd = y > 0 ? y - 1 : g.ly - 1;
  nb[2] = other[(z * g.ly + yu) * g.wpr + j];
  nb[3] = other[(z * g.ly + yd) * g.wpr + j];
  if constexpr (Z == 6) {
    const i64 zu = z + 1 < g.lz ? z + 1 : 0, zd = z > 0 ? z - 1 : g.lz - 1;
    nb[Z - 2] = other[(zu * g.ly + y) * g.wpr + j];
    nb[Z - 1] = other[(zd * g.ly + y) * g.wpr + j];
  }
}

// Population count of a word, portable host/device.
HB_HD int popcount32(u32 x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

}  // namespace HB_ISA
}  // namespace heatbath
