// CUDA loops over the sparse-graph updates of csrc/heatbath/sparse.h: one
// launch per colour block, threads over (node, chains); the same formulas and
// counter layout as the CPU loops, so the states agree to the bit.
#include <cuda_runtime.h>

#include "launch.cuh"

#include "heatbath/sparse.h"
#include "sparse.h"

namespace heatbath {
namespace cuda {
namespace {

inline unsigned grid_wide(i64 n) { return grid_for(static_cast<u64>(n), 65535u * 64u); }

// Potts: a thread owns one Philox block of one node: chains t*128 + l*32 +
// lane (l = 0..3) of tile t, so a warp reads and writes 32 consecutive
// chains at a time and each word drawn is used once.
__global__ void k_potts(std::uint8_t* __restrict__ s, i64 C, int K, const i64* __restrict__ row,
                        const std::int32_t* __restrict__ col, const float* __restrict__ w,
                        const float* __restrict__ bias, const float* __restrict__ beta,
                        const std::int32_t* __restrict__ order, i64 lo, i64 nq, u64 seed, u64 sweep, u64 chain0) {
  const i64 ntiles = (C + 127) / 128;
  const i64 total = nq * ntiles * 32;
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 lane = idx % 32, t = (idx / 32) % ntiles, q = idx / (32 * ntiles);
    const i64 i = order[lo + q];
    const Words4 r = philox_block(seed, sparse_stream(sweep, static_cast<u64>(i)),
                                  (chain0 / 128 + static_cast<u64>(t)) * 32 + static_cast<u64>(lane));
    const i64 k0 = row[i], k1 = row[i + 1];
    for (int l = 0; l < 4; ++l) {
      const i64 c = t * 128 + l * 32 + lane;
      if (c >= C) break;
      float a[kPottsMaxStates];
      for (int v = 0; v < K; ++v) a[v] = bias[i * K + v];
      for (i64 k = k0; k < k1; ++k) {
        const int sj = s[static_cast<i64>(col[k]) * C + c];
        a[sj] = a[sj] + w[k];
      }
      s[i * C + c] = static_cast<std::uint8_t>(potts_draw(a, K, beta[c], r.w[l]));
    }
  }
}

// Spins (one bit per chain, words [n, W]): a thread owns Philox block
// 16 g + j of one node, i.e. chains 256 g + 16 k + j (k = 0..15); a warp
// holds j = 0..15 of two groups, so each k gives two runs of 16 consecutive
// chains, written as two 16-bit halves of a ballot.
__global__ void k_spins(u32* __restrict__ s, i64 C, const i64* __restrict__ row, const std::int32_t* __restrict__ col,
                        const float* __restrict__ w, const float* __restrict__ bias, const float* __restrict__ beta,
                        const std::int32_t* __restrict__ order, i64 lo, i64 nq, u64 seed, u64 sweep, u64 chain0) {
  const i64 ngroups = (C + 255) / 256, npairs = (ngroups + 1) / 2;
  const i64 W = (C + 31) / 32;
  const i64 total = nq * npairs * 32;
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const int lane = static_cast<int>(idx % 32);
    const i64 pair = idx / 32, q = pair / npairs;
    const i64 g = 2 * (pair % npairs) + lane / 16, j = lane % 16;
    const i64 i = order[lo + q];
    const u64 stream = sparse_stream(sweep, static_cast<u64>(i));
    const Words4 r = philox_block(seed, stream, (chain0 / 256 + static_cast<u64>(g)) * 16 + static_cast<u64>(j));
    const i64 k0 = row[i], k1 = row[i + 1];
    std::uint16_t* s16 = reinterpret_cast<std::uint16_t*>(s + i * W);
    for (int k = 0; k < 16; ++k) {
      const i64 c = g * 256 + 16 * k + j;
      bool up = false;
      if (g < ngroups && c < C) {
        const float f = spin_field(spin_field_base(bias[i], w + k0, k1 - k0), w + k0, k1 - k0, [&](i64 e) {
          return ((s[static_cast<i64>(col[k0 + e]) * W + (c >> 5)] >> (c & 31)) & 1u) != 0u;
        });
        up = spin_decide(static_cast<std::int32_t>(spin_byte(r, k)), spin_denominator(f, beta[c]), seed, stream,
                         chain0 + static_cast<u64>(c));
      }
      const u32 word = __ballot_sync(0xFFFFFFFFu, up);
      if (j == 0 && g < ngroups && g * 256 + 16 * k < C)
        s16[g * 16 + k] = static_cast<std::uint16_t>(lane == 0 ? word : word >> 16);
    }
  }
}

__device__ __forceinline__ double bit_spin(const u32* s, i64 i, i64 c, i64 C) {
  return ((s[i * ((C + 31) / 32) + (c >> 5)] >> (c & 31)) & 1u) ? 1.0 : -1.0;
}

template <bool kPotts>
__global__ void k_energy(const void* __restrict__ state, i64 C, int K, i64 n, const i64* __restrict__ row,
                         const std::int32_t* __restrict__ col, const float* __restrict__ w,
                         const float* __restrict__ bias, double* energy, double* mag) {
  for (i64 c = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; c < C;
       c += static_cast<i64>(gridDim.x) * blockDim.x) {
    double e = 0.0, m = 0.0;
    for (i64 i = 0; i < n; ++i) {
      double f = 0.0;
      if constexpr (kPotts) {
        const std::uint8_t* s = static_cast<const std::uint8_t*>(state);
        const int si = s[i * C + c];
        for (i64 k = row[i]; k < row[i + 1]; ++k) f += s[static_cast<i64>(col[k]) * C + c] == si ? double(w[k]) : 0.0;
        e += -0.5 * f - double(bias[i * K + si]);
      } else {
        const u32* s = static_cast<const u32*>(state);
        const i64 W = (C + 31) / 32;
        auto spin = [&](i64 j) { return ((s[j * W + (c >> 5)] >> (c & 31)) & 1u) ? 1.0 : -1.0; };
        const double si = spin(i);
        for (i64 k = row[i]; k < row[i + 1]; ++k) f += double(w[k]) * spin(col[k]);
        e += si * (-0.5 * f - double(bias[i]));
        m += si;
      }
    }
    energy[c] = e;
    if (!kPotts) mag[c] = n ? m / double(n) : 0.0;
  }
}

template <bool kPotts>
__global__ void k_moments(const void* __restrict__ state, i64 C, int K, const std::int32_t* __restrict__ nodes,
                          i64 nnodes, double* m1, const std::int32_t* __restrict__ pairs, i64 npairs, double* m2) {
  const i64 total = (nnodes + npairs) * C;
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 q = idx / C, c = idx % C;
    if (q < nnodes) {
      const i64 i = nodes[q];
      if constexpr (kPotts)
        atomicAdd(m1 + q * K + static_cast<const std::uint8_t*>(state)[i * C + c], 1.0);
      else
        atomicAdd(m1 + q, bit_spin(static_cast<const u32*>(state), i, c, C));
    } else {
      const i64 p = q - nnodes, a = pairs[2 * p], b = pairs[2 * p + 1];
      if constexpr (kPotts) {
        const std::uint8_t* s = static_cast<const std::uint8_t*>(state);
        if (s[a * C + c] == s[b * C + c]) atomicAdd(m2 + p, 1.0);
      } else {
        const u32* s = static_cast<const u32*>(state);
        atomicAdd(m2 + p, bit_spin(s, a, c, C) * bit_spin(s, b, c, C));
      }
    }
  }
}

}  // namespace

const char* sparse_sweeps(void* s, i64 chains, int K, i64 n, const i64* row, const std::int32_t* col,
                          const float* w, const float* bias, const float* beta, const std::int32_t* order,
                          const i64* block_ptr, i64 nblocks, u64 seed, u64 chain0, u64 sweep0, i64 nsweeps,
                          void* stream) {
  (void)n;
  if (chains <= 0 || nsweeps <= 0) return nullptr;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const i64 ntiles = (chains + 127) / 128;
  for (i64 t = 0; t < nsweeps; ++t) {
    for (i64 b = 0; b < nblocks; ++b) {
      const i64 lo = block_ptr[b], nq = block_ptr[b + 1] - lo;
      if (nq <= 0) continue;
      if (K >= 2)
        k_potts<<<grid_wide(nq * ntiles * 32), kThreads, 0, st>>>(static_cast<std::uint8_t*>(s), chains, K, row, col, w,
                                                                  bias, beta, order, lo, nq, seed,
                                                                  sweep0 + static_cast<u64>(t), chain0);
      else
        k_spins<<<grid_wide(nq * ((chains + 511) / 512) * 32), kThreads, 0, st>>>(
            static_cast<u32*>(s), chains, row, col, w, bias, beta, order, lo, nq, seed, sweep0 + static_cast<u64>(t),
            chain0);
      if (const char* e = launched()) return e;
    }
  }
  return nullptr;
}

const char* sparse_observe(const void* s, i64 chains, int K, i64 n, const i64* row, const std::int32_t* col,
                           const float* w, const float* bias, double* energy, double* mag,
                           const std::int32_t* nodes, i64 nnodes, double* m1, const std::int32_t* pairs,
                           i64 npairs, double* m2, void* stream) {
  if (chains <= 0) return nullptr;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (K >= 2)
    k_energy<true><<<grid_wide(chains), kThreads, 0, st>>>(s, chains, K, n, row, col, w, bias, energy, mag);
  else
    k_energy<false><<<grid_wide(chains), kThreads, 0, st>>>(s, chains, K, n, row, col, w, bias, energy, mag);
  if (const char* e = launched()) return e;
  if (nnodes + npairs > 0) {
    const unsigned grid = grid_wide((nnodes + npairs) * chains);
    if (K >= 2)
      k_moments<true><<<grid, kThreads, 0, st>>>(s, chains, K, nodes, nnodes, m1, pairs, npairs, m2);
    else
      k_moments<false><<<grid, kThreads, 0, st>>>(s, chains, K, nodes, nnodes, m1, pairs, npairs, m2);
    return launched();
  }
  return nullptr;
}

}  // namespace cuda
}  // namespace heatbath
