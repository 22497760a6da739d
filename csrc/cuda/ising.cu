// CUDA loops over the multi-spin-coded lattice updates of
// csrc/heatbath/ising.h: one thread per packed word (32 sites) of the colour
// being updated, the same formula and counter layout as the CPU, so the spins
// agree to the bit.
#include <cuda_runtime.h>

#include "launch.cuh"

#include "heatbath/ising.h"
#include "ising.h"

namespace heatbath {
namespace cuda {
namespace {

inline IsingGeometry geometry(i64 lx, i64 ly, i64 lz, int dim) {
  IsingGeometry g;
  g.lx = lx;
  g.ly = ly;
  g.lz = lz;
  g.dim = dim;
  g.h = lx / 2;
  g.wpr = (g.h + 31) / 32;
  g.rows = ly * lz;
  return g;
}

// (chain n, word i of the colour, row r = z * ly + y, word j of the row) of
// thread index idx; 32-bit divisions when the sizes allow (far cheaper than
// 64-bit ones on the GPU).
struct WordPos {
  i64 n, i, r, y, z, j;
};

__device__ __forceinline__ WordPos word_pos(i64 idx, const IsingGeometry& g, i64 nwc, bool small) {
  WordPos p;
  if (small) {
    const unsigned ui = static_cast<unsigned>(idx), unwc = static_cast<unsigned>(nwc);
    const unsigned uw = static_cast<unsigned>(g.wpr), uly = static_cast<unsigned>(g.ly);
    const unsigned i = ui % unwc, r = i / uw;
    p.n = ui / unwc;
    p.i = i;
    p.r = r;
    p.j = i % uw;
    p.y = r % uly;
    p.z = r / uly;
  } else {
    p.n = idx / nwc;
    p.i = idx % nwc;
    p.r = p.i / g.wpr;
    p.j = p.i % g.wpr;
    p.y = p.r % g.ly;
    p.z = p.r / g.ly;
  }
  return p;
}

inline unsigned grid_wide(i64 n) { return grid_for(static_cast<u64>(n), 65535u * 64u); }

template <int Z, bool kM>
__global__ void k_colour(u32* __restrict__ spins, IsingGeometry g, i64 chains, const u32* __restrict__ thr, int c,
                         u64 seed, u64 stream, u64 wbase) {
  const i64 nwc = g.rows * g.wpr;
  const i64 total = chains * nwc;
  const bool small = total < (i64(1) << 32);
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const WordPos q = word_pos(idx, g, nwc, small);
    const i64 n = q.n, i = q.i;
    u32* base = spins + n * 2 * nwc;
    // [chains, 33] words have the layout of IsingThresholds: read in place,
    // only the bits the comparison reaches (L1-cached, shared by the warp)
    const IsingThresholds& th = *reinterpret_cast<const IsingThresholds*>(thr + n * 33);
    u32 nbw[Z];
    gather_neighbours<Z>(base, g, c, q.r, q.y, q.z, q.j, nbw);
    u32 s[1] = {base[c * nwc + i]};
    u32 nb[Z][1];
#pragma unroll
    for (int d = 0; d < Z; ++d) nb[d][0] = nbw[d];
    const u64 w = wbase + static_cast<u64>((n * 2 + c) * nwc + i);
    const u32 v[1] = {g.valid_mask()};
    const u32 wl[1] = {static_cast<u32>(w)};
    const u32 wh[1] = {static_cast<u32>(w >> 32)};
    ising_update_words<Z, kM, 1>(s, nb, v, wl, wh, th, seed, stream);
    base[c * nwc + i] = s[0];
  }
}

template <int Z>
__global__ void k_observe(const u32* __restrict__ spins, IsingGeometry g, i64 chains, i64* up, i64* agree) {
  const i64 nwc = g.rows * g.wpr;
  const i64 total = chains * nwc;
  const bool small = total < (i64(1) << 32);
  const u32 vm = g.valid_mask();
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const WordPos q = word_pos(idx, g, nwc, small);
    const i64 n = q.n, i = q.i;
    const u32* base = spins + n * 2 * nwc;
    u32 nb[Z];
    gather_neighbours<Z>(base, g, 0, q.r, q.y, q.z, q.j, nb);
    const u32 s = base[i];
    unsigned long long u = popcount32(s) + popcount32(base[nwc + i]), a = 0;
#pragma unroll
    for (int d = 0; d < Z; ++d) a += popcount32(~(s ^ nb[d]) & vm);
    atomicAdd(reinterpret_cast<unsigned long long*>(up + n), u);
    atomicAdd(reinterpret_cast<unsigned long long*>(agree + n), a);
  }
}

template <int Z>
const char* observe_z(const u32* spins, const IsingGeometry& g, i64 chains, i64* up, i64* agree, cudaStream_t st) {
  cudaMemsetAsync(up, 0, sizeof(i64) * chains, st);
  cudaMemsetAsync(agree, 0, sizeof(i64) * chains, st);
  k_observe<Z><<<grid_wide(chains * g.rows * g.wpr), kThreads, 0, st>>>(spins, g, chains, up, agree);
  return launched();
}

template <int Z, bool kM>
const char* sweep_zm(u32* spins, const IsingGeometry& g, i64 chains, const u32* th, u64 seed, u64 sweep0,
                     i64 nsweeps, i64 rec_every, i64* up, i64* agree, cudaStream_t st, u64 chain0) {
  const unsigned grid = grid_wide(chains * g.rows * g.wpr);
  // word ids count from the run's first chain (csrc/heatbath/ising.h)
  const u64 wbase = chain0 * static_cast<u64>(g.words_per_chain());
  for (i64 t = 0; t < nsweeps; ++t) {
    for (int c = 0; c < 2; ++c) {
      const u64 stream = sweep0 + static_cast<u64>(t);
      k_colour<Z, kM><<<grid, kThreads, 0, st>>>(spins, g, chains, th, c, seed, stream, wbase);
      if (const char* e = launched()) return e;
    }
    if (rec_every > 0 && (t + 1) % rec_every == 0) {
      const i64 rec = (t + 1) / rec_every - 1;
      if (const char* e = observe_z<Z>(spins, g, chains, up + rec * chains, agree + rec * chains, st)) return e;
    }
  }
  return nullptr;
}

}  // namespace

const char* ising_sweep(u32* spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, const u32* th, bool metropolis,
                        u64 seed, u64 sweep0, i64 nsweeps, i64 rec_every, i64* up, i64* agree, void* stream,
                        u64 chain0) {
  if (chains <= 0 || nsweeps <= 0) return nullptr;
  const IsingGeometry g = geometry(lx, ly, lz, dim);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  auto run = [&](auto f) { return f(spins, g, chains, th, seed, sweep0, nsweeps, rec_every, up, agree, st, chain0); };
  if (dim == 3) return metropolis ? run(sweep_zm<6, true>) : run(sweep_zm<6, false>);
  return metropolis ? run(sweep_zm<4, true>) : run(sweep_zm<4, false>);
}

const char* ising_observe(const u32* spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, i64* up, i64* agree,
                          void* stream) {
  if (chains <= 0) return nullptr;
  const IsingGeometry g = geometry(lx, ly, lz, dim);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  return dim == 3 ? observe_z<6>(spins, g, chains, up, agree, st) : observe_z<4>(spins, g, chains, up, agree, st);
}

}  // namespace cuda
}  // namespace heatbath
