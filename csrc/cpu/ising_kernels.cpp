// CPU loops over the multi-spin-coded lattice updates of
// csrc/heatbath/ising.h. Compiled once per instruction-set level; each copy
// exports its IsingTable. A batch is kBatch consecutive words of one colour
// of one chain: their neighbour words are gathered with scalar code, then the
// bit-sliced update runs on whole SIMD vectors (AVX2: 8 words = 256 sites,
// AVX-512: 16 words = 512 sites per vector, two vectors per batch so that two
// Philox chains interleave).
#include <cstdint>
#include <cstring>
#include <atomic>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "heatbath/ising.h"
#include "ising.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

using cpu::IsingShape;

#if defined(HB_HAVE_SIMD)
using W = vu32;
constexpr int kLanes = simd::kWidth;
constexpr int kNV = 2;
#else
using W = u32;
constexpr int kLanes = 1;
constexpr int kNV = 4;
#endif
constexpr int kBatch = kLanes * kNV;

IsingGeometry geometry(const IsingShape& s) {
  IsingGeometry g;
  g.lx = s.lx;
  g.ly = s.ly;
  g.lz = s.lz;
  g.dim = s.dim;
  g.h = s.lx / 2;
  g.wpr = (g.h + 31) / 32;
  g.rows = s.ly * s.lz;
  return g;
}

// Pointers of one row of colour c: the other colour's row and its aligned
// rows at y +- 1 (and z +- 1).
template <int Z>
struct RowCtx {
  const u32* o;
  const u32* nb[Z - 2];
  int p;
};

template <int Z>
inline void row_ctx(const u32* chain_base, const IsingGeometry& g, int c, i64 r, RowCtx<Z>& R) {
  const i64 y = r % g.ly, z = r / g.ly;
  R.p = static_cast<int>((y + z + c) & 1);
  const u32* other = chain_base + (1 - c) * g.rows * g.wpr;
  R.o = other + r * g.wpr;
  const i64 yu = y + 1 < g.ly ? y + 1 : 0, yd = y > 0 ? y - 1 : g.ly - 1;
  R.nb[0] = other + (z * g.ly + yu) * g.wpr;
  R.nb[1] = other + (z * g.ly + yd) * g.wpr;
  if constexpr (Z == 6) {
    const i64 zu = z + 1 < g.lz ? z + 1 : 0, zd = z > 0 ? z - 1 : g.lz - 1;
    R.nb[2] = other + (zu * g.ly + y) * g.wpr;
    R.nb[3] = other + (zd * g.ly + y) * g.wpr;
  }
}

// colour_batch when every vector of the batch lies inside one row (wpr a
// multiple of kLanes, whole batches): vector loads, only the wrapped
// neighbour word gathered.
template <int Z, bool kM>
void colour_batch_row(u32* chain_base, const IsingGeometry& g, int c, i64 i0, i64 nwc, u64 wid0,
                      const IsingThresholds& th, u64 seed, u64 stream) {
  u32* own = chain_base + c * nwc;
  W s[kNV], nb[Z][kNV], v[kNV], wl[kNV], wh[kNV];
  for (int k = 0; k < kNV; ++k) {
    const i64 ik = i0 + k * kLanes;
    const i64 r = ik / g.wpr, j = ik % g.wpr;
    RowCtx<Z> R;
    row_ctx<Z>(chain_base, g, c, r, R);
    alignas(64) u32 ext[kLanes];
    // ext[q]: the other colour's word j + q + 1 (p = 1) or j + q - 1 (p = 0), periodic in the row
    if (R.p) {
      if (kLanes > 1) std::memcpy(ext, R.o + j + 1, sizeof(u32) * (kLanes - 1));
      ext[kLanes - 1] = R.o[j + kLanes < g.wpr ? j + kLanes : 0];
    } else {
      if (kLanes > 1) std::memcpy(ext + 1, R.o + j, sizeof(u32) * (kLanes - 1));
      ext[0] = R.o[j > 0 ? j - 1 : g.wpr - 1];
    }
    std::memcpy(&s[k], own + ik, sizeof(W));
    std::memcpy(&nb[0][k], R.o + j, sizeof(W));
    W e;
    std::memcpy(&e, ext, sizeof(W));
    nb[1][k] = R.p ? ((nb[0][k] >> 1) | (e << 31)) : ((nb[0][k] << 1) | (e >> 31));
    for (int d = 0; d < Z - 2; ++d) std::memcpy(&nb[2 + d][k], R.nb[d] + j, sizeof(W));
    v[k] = splat_w<W>(0xFFFFFFFFu);
    alignas(64) u32 lo[kLanes], hi[kLanes];
    const u64 w0 = wid0 + static_cast<u64>(ik);
    for (int q = 0; q < kLanes; ++q) {
      lo[q] = static_cast<u32>(w0 + q);
      hi[q] = static_cast<u32>((w0 + q) >> 32);
    }
    std::memcpy(&wl[k], lo, sizeof(W));
    std::memcpy(&wh[k], hi, sizeof(W));
  }
  ising_update_words<Z, kM, kNV>(s, nb, v, wl, wh, th, seed, stream);
  for (int k = 0; k < kNV; ++k) std::memcpy(own + i0 + k * kLanes, &s[k], sizeof(W));
}

// Updates words i0 .. i0 + kBatch - 1 (those < nwc) of colour c of the chain
// whose words start at chain_base; wid0: id of the colour's first word.
template <int Z, bool kM>
void colour_batch(u32* chain_base, const IsingGeometry& g, int c, i64 i0, i64 nwc, u64 wid0,
                  const IsingThresholds& th, u64 seed, u64 stream) {
  u32* own = chain_base + c * nwc;
  if (g.h >= 32 && g.wpr % kLanes == 0 && nwc % kBatch == 0) {
    colour_batch_row<Z, kM>(chain_base, g, c, i0, nwc, wid0, th, seed, stream);
    return;
  }
  alignas(64) u32 sb[kBatch], nbb[Z][kBatch], vb[kBatch], lo[kBatch], hi[kBatch];
  const i64 n = nwc - i0 < kBatch ? nwc - i0 : kBatch;
  i64 r = i0 / g.wpr, j = i0 % g.wpr;
  RowCtx<Z> R;
  row_ctx<Z>(chain_base, g, c, r, R);
  const u32 vm = g.valid_mask();
  for (int q = 0; q < kBatch; ++q) {
    if (q < n) {
      sb[q] = own[i0 + q];
      nbb[0][q] = R.o[j];
      nbb[1][q] = shifted_row_word(R.o, j, g.wpr, g.h, R.p);
      for (int d = 0; d < Z - 2; ++d) nbb[2 + d][q] = R.nb[d][j];
      vb[q] = vm;
      const u64 w = wid0 + static_cast<u64>(i0 + q);
      lo[q] = static_cast<u32>(w);
      hi[q] = static_cast<u32>(w >> 32);
      if (++j == g.wpr) {
        j = 0;
        if (++r < g.rows) row_ctx<Z>(chain_base, g, c, r, R);
      }
    } else {
      sb[q] = 0;
      for (int d = 0; d < Z; ++d) nbb[d][q] = 0;
      vb[q] = lo[q] = hi[q] = 0;
    }
  }
  W s[kNV], nb[Z][kNV], v[kNV], wl[kNV], wh[kNV];
  for (int k = 0; k < kNV; ++k) {
    std::memcpy(&s[k], sb + k * kLanes, sizeof(W));
    std::memcpy(&v[k], vb + k * kLanes, sizeof(W));
    std::memcpy(&wl[k], lo + k * kLanes, sizeof(W));
    std::memcpy(&wh[k], hi + k * kLanes, sizeof(W));
    for (int d = 0; d < Z; ++d) std::memcpy(&nb[d][k], nbb[d] + k * kLanes, sizeof(W));
  }
  ising_update_words<Z, kM, kNV>(s, nb, v, wl, wh, th, seed, stream);
  for (int k = 0; k < kNV; ++k) std::memcpy(sb + k * kLanes, &s[k], sizeof(W));
  for (i64 q = 0; q < n; ++q) own[i0 + q] = sb[q];
}

// Adds row r's counts (up spins of both colours; agreeing bonds seen from
// colour 0) of the chain at base.
template <int Z>
inline void observe_row(const u32* base, const IsingGeometry& g, i64 r, i64& up, i64& agree) {
  const u32 vm = g.valid_mask();
  const i64 nwc = g.rows * g.wpr;
  RowCtx<Z> R;
  row_ctx<Z>(base, g, 0, r, R);
  for (i64 j = 0; j < g.wpr; ++j) {
    const u32 s = base[r * g.wpr + j];
    up += popcount32(s) + popcount32(base[nwc + r * g.wpr + j]);
    u32 nb[Z];
    nb[0] = R.o[j];
    nb[1] = shifted_row_word(R.o, j, g.wpr, g.h, R.p);
    for (int d = 0; d < Z - 2; ++d) nb[2 + d] = R.nb[d][j];
    for (int d = 0; d < Z; ++d) agree += popcount32(~(s ^ nb[d]) & vm);
  }
}

template <int Z>
void observe_all(const u32* spins, const IsingGeometry& g, i64 chains, i64* up, i64* agree) {
  const i64 nwchain = g.words_per_chain();
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
  for (i64 n = 0; n < chains; ++n) up[n] = agree[n] = 0;
  const i64 total = chains * g.rows;
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
  for (i64 b = 0; b < total; ++b) {
    const i64 n = b / g.rows, r = b % g.rows;
    i64 u = 0, a = 0;
    observe_row<Z>(spins + n * nwchain, g, r, u, a);
#if defined(_OPENMP)
#pragma omp atomic
#endif
    up[n] += u;
#if defined(_OPENMP)
#pragma omp atomic
#endif
    agree[n] += a;
  }
}

template <int Z, bool kM>
void sweep_impl(u32* spins, const IsingShape& shape, const u32* thr, u64 seed, u64 sweep0, i64 nsweeps,
                i64 rec_every, i64* up, i64* agree, u64 chain0) {
  const IsingGeometry g = geometry(shape);
  const i64 chains = shape.chains;
  const i64 nwc = g.words_per_colour();
  if (chains <= 0 || nwc <= 0 || nsweeps <= 0) return;
  // word ids count from the run's first chain: chain n here is chain chain0 + n of the run
  const u64 wbase = chain0 * static_cast<u64>(2 * nwc);
  std::vector<IsingThresholds> th(static_cast<size_t>(chains));
  for (i64 n = 0; n < chains; ++n) {
    for (int b = 0; b < 32; ++b) th[n].bits[b] = thr[n * 33 + b];
    th[n].always = thr[n * 33 + 32];
  }
  const i64 nbatch = (nwc + kBatch - 1) / kBatch;
  const i64 total = chains * nbatch;
  const bool par = total * kBatch >= 4096;
#if defined(_OPENMP)
  // Chains are independent: with at least as many chains as threads, each
  // thread runs all sweeps of a range of chains, without barriers.
  if (par && chains >= omp_get_max_threads()) {
#pragma omp parallel
    {
      const i64 id = omp_get_thread_num(), nt = omp_get_num_threads();
      const i64 n0 = chains * id / nt, n1 = chains * (id + 1) / nt;
      for (i64 t = 0; t < nsweeps; ++t) {
        for (i64 n = n0; n < n1; ++n)
          for (int c = 0; c < 2; ++c)
            for (i64 b = 0; b < nbatch; ++b)
              colour_batch<Z, kM>(spins + n * 2 * nwc, g, c, b * kBatch, nwc,
                                  wbase + static_cast<u64>((n * 2 + c) * nwc), th[n], seed,
                                  sweep0 + static_cast<u64>(t));
        if (rec_every > 0 && (t + 1) % rec_every == 0) {
          const i64 rec = (t + 1) / rec_every - 1;
          for (i64 n = n0; n < n1; ++n) {
            i64 u = 0, a = 0;
            for (i64 r = 0; r < g.rows; ++r) observe_row<Z>(spins + n * g.words_per_chain(), g, r, u, a);
            up[rec * chains + n] = u;
            agree[rec * chains + n] = a;
          }
        }
      }
    }
    return;
  }
#endif
  // Few chains: the batches of each colour are shared among the threads,
  // without barriers: a thread waits only for chunks actually in progress,
  // not for a thread the OS has descheduled (cores may be shared). One parallel region for all sweeps. Work comes in chunks claimed in
  // order from one counter; each sweep is the phases colour 0 (cpp chunks of
  // kChunk batches), colour 1 (cpp chunks) and, when recorded, the
  // observation (opp chunks of rows, counts added atomically). A chunk starts
  // once every chunk of the earlier phases is done.
  constexpr i64 kChunk = 4, kRowsPerObs = 16;
  const i64 cpp = (total + kChunk - 1) / kChunk;
  const i64 obs_rows = (g.rows + kRowsPerObs - 1) / kRowsPerObs;
  const i64 opp = rec_every > 0 ? chains * obs_rows : 0;
  const i64 per_sweep = 2 * cpp + opp;
  if (rec_every > 0)
    for (i64 k = 0; k < (nsweeps / rec_every) * chains; ++k) up[k] = agree[k] = 0;
  std::atomic<i64> next{0}, done{0};
  auto worker = [&]() {
    for (;;) {
      const i64 q = next.fetch_add(1, std::memory_order_relaxed);
      if (q >= nsweeps * per_sweep) break;
      const i64 t = q / per_sweep, r = q % per_sweep;
      const i64 phase_start = t * per_sweep + (r < cpp ? 0 : r < 2 * cpp ? cpp : 2 * cpp);
      // Spin (a colour boundary lasts microseconds); yield only after a long
      // wait, since a yield can cost a whole time slice on a busy machine.
      int spun = 0;
      while (done.load(std::memory_order_acquire) < phase_start) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (++spun > (1 << 16)) {
          std::this_thread::yield();
          spun = 0;
        }
      }
      if (r < 2 * cpp) {
        const int c = r < cpp ? 0 : 1;
        const i64 b0 = (r - c * cpp) * kChunk, b1 = b0 + kChunk < total ? b0 + kChunk : total;
        const u64 sweep = sweep0 + static_cast<u64>(t);
        for (i64 b = b0; b < b1; ++b) {
          const i64 n = b / nbatch, i0 = (b % nbatch) * kBatch;
          colour_batch<Z, kM>(spins + n * 2 * nwc, g, c, i0, nwc, wbase + static_cast<u64>((n * 2 + c) * nwc),
                              th[n], seed, sweep);
        }
      } else if ((t + 1) % rec_every == 0) {
        const i64 o = r - 2 * cpp, n = o / obs_rows, r0 = (o % obs_rows) * kRowsPerObs;
        const i64 r1 = r0 + kRowsPerObs < g.rows ? r0 + kRowsPerObs : g.rows;
        i64 u = 0, a = 0;
        for (i64 row = r0; row < r1; ++row) observe_row<Z>(spins + n * g.words_per_chain(), g, row, u, a);
        const i64 rec = (t + 1) / rec_every - 1;
        __atomic_fetch_add(up + rec * chains + n, u, __ATOMIC_RELAXED);
        __atomic_fetch_add(agree + rec * chains + n, a, __ATOMIC_RELAXED);
      }
      done.fetch_add(1, std::memory_order_release);
    }
  };
#if defined(_OPENMP)
#pragma omp parallel if (par)
#endif
  worker();
  (void)par;
}

void k_sweep(u32* spins, const IsingShape& shape, const u32* th, bool metropolis, u64 seed, u64 sweep0,
             i64 nsweeps, i64 rec_every, i64* up, i64* agree, u64 chain0) {
  if (shape.dim == 3) {
    if (metropolis)
      sweep_impl<6, true>(spins, shape, th, seed, sweep0, nsweeps, rec_every, up, agree, chain0);
    else
      sweep_impl<6, false>(spins, shape, th, seed, sweep0, nsweeps, rec_every, up, agree, chain0);
  } else {
    if (metropolis)
      sweep_impl<4, true>(spins, shape, th, seed, sweep0, nsweeps, rec_every, up, agree, chain0);
    else
      sweep_impl<4, false>(spins, shape, th, seed, sweep0, nsweeps, rec_every, up, agree, chain0);
  }
}

void k_observe(const u32* spins, const IsingShape& shape, i64* up, i64* agree) {
  const IsingGeometry g = geometry(shape);
  if (shape.chains <= 0) return;
#if defined(_OPENMP)
#pragma omp parallel if (shape.chains * g.rows * g.wpr >= 65536)
#endif
  {
    if (shape.dim == 3)
      observe_all<6>(spins, g, shape.chains, up, agree);
    else
      observe_all<4>(spins, g, shape.chains, up, agree);
  }
}

void k_pack(const std::int8_t* s8, const IsingShape& shape, u32* packed) {
  const IsingGeometry g = geometry(shape);
  const i64 total = shape.chains * g.rows;
  const i64 nwc = g.words_per_colour();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total * g.lx >= 65536)
#endif
  for (i64 b = 0; b < total; ++b) {
    const i64 n = b / g.rows, r = b % g.rows;
    const i64 y = r % g.ly, z = r / g.ly;
    const std::int8_t* row = s8 + (n * g.rows + r) * g.lx;
    for (int c = 0; c < 2; ++c) {
      const int p = static_cast<int>((y + z + c) & 1);
      u32* out = packed + (n * 2 + c) * nwc + r * g.wpr;
      for (i64 j = 0; j < g.wpr; ++j) out[j] = 0;
      for (i64 k = 0; k < g.h; ++k)
        if (row[2 * k + p] > 0) out[k >> 5] |= u32(1) << (k & 31);
    }
  }
}

void k_unpack(const u32* packed, const IsingShape& shape, std::int8_t* s8) {
  const IsingGeometry g = geometry(shape);
  const i64 total = shape.chains * g.rows;
  const i64 nwc = g.words_per_colour();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total * g.lx >= 65536)
#endif
  for (i64 b = 0; b < total; ++b) {
    const i64 n = b / g.rows, r = b % g.rows;
    const i64 y = r % g.ly, z = r / g.ly;
    std::int8_t* row = s8 + (n * g.rows + r) * g.lx;
    for (int c = 0; c < 2; ++c) {
      const int p = static_cast<int>((y + z + c) & 1);
      const u32* in = packed + (n * 2 + c) * nwc + r * g.wpr;
      for (i64 k = 0; k < g.h; ++k) row[2 * k + p] = ((in[k >> 5] >> (k & 31)) & 1u) ? 1 : -1;
    }
  }
}

}  // namespace

const cpu::IsingTable kIsingTable = {k_sweep, k_observe, k_pack, k_unpack};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(IsingTable, ising_table, kIsingTable)
