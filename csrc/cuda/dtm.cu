// CUDA loops of the DTM kernels (csrc/cuda/dtm.h) over the formulas of
// csrc/heatbath/dtm.h, the same as the CPU loops of csrc/cpu/dtm_kernels.cpp.
#include <cuda_runtime.h>

#include "dtm.h"
#include "heatbath/dtm.h"
#include "launch.cuh"

namespace heatbath {
namespace cuda {
namespace {

// A thread per (word column k, row r), r fastest: reads of the 0/1 rows and
// writes of the unpacked bytes are coalesced across a warp.
__global__ void k_pack_rows(const std::uint8_t* __restrict__ bits, i64 chains, i64 rows, i64 W,
                            u32* __restrict__ out) {
  const i64 total = W * rows;
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 k = idx / rows, r = idx - k * rows;
    const i64 c0 = 32 * k;
    const int n = chains - c0 < 32 ? static_cast<int>(chains - c0) : 32;
    u32 acc = 0;
    for (int l = 0; l < n; ++l) acc |= static_cast<u32>(bits[(c0 + l) * rows + r] != 0) << l;
    out[r * W + k] = acc;
  }
}

__global__ void k_unpack_rows(const u32* __restrict__ words, i64 rows, i64 chains, i64 W,
                              std::uint8_t* __restrict__ out) {
  const i64 total = W * rows;
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 k = idx / rows, r = idx - k * rows;
    const i64 c0 = 32 * k;
    const int n = chains - c0 < 32 ? static_cast<int>(chains - c0) : 32;
    const u32 word = words[r * W + k];
    for (int l = 0; l < n; ++l) out[(c0 + l) * rows + r] = static_cast<std::uint8_t>((word >> l) & 1u);
  }
}

// A warp per node or pair: lanes stride over the row's words, a shuffle sum,
// lane 0 adds to the count (the only writer of that count in this launch).
__global__ void k_count_moments(const u32* __restrict__ s, i64 chains, i64 W, const std::int32_t* __restrict__ nodes,
                                i64 n_nodes, i64* __restrict__ up, const std::int32_t* __restrict__ edge_i,
                                const std::int32_t* __restrict__ edge_j, i64 n_edges, i64* __restrict__ agree) {
  const int lane = threadIdx.x & 31;
  const i64 warps = (static_cast<i64>(gridDim.x) * blockDim.x) >> 5;
  const u32 tail = chain_mask(W - 1, chains);
  for (i64 q = (blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x) >> 5; q < n_nodes + n_edges; q += warps) {
    int count = 0;
    if (q < n_nodes) {
      const u32* a = s + static_cast<i64>(nodes[q]) * W;
      for (i64 k = lane; k < W; k += 32) count += popc_u32(a[k] & (k == W - 1 ? tail : 0xffffffffu));
    } else {
      const i64 e = q - n_nodes;
      const u32* a = s + static_cast<i64>(edge_i[e]) * W;
      const u32* b = s + static_cast<i64>(edge_j[e]) * W;
      for (i64 k = lane; k < W; k += 32) count += popc_u32(~(a[k] ^ b[k]) & (k == W - 1 ? tail : 0xffffffffu));
    }
    i64 total = count;
    for (int d = 16; d > 0; d >>= 1) total += __shfl_down_sync(0xffffffffu, total, d);
    if (lane == 0) {
      if (q < n_nodes)
        up[q] += total;
      else
        agree[q - n_nodes] += total;
    }
  }
}

__global__ void k_adam_step(DtmAdamArgs a) {
  for (i64 idx = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; idx < a.n_edges + a.n_nodes;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    if (idx < a.n_edges) {
      const i64 e = idx;
      const std::int32_t i = a.edge_i[e], j = a.edge_j[e];
      const double g = coupling_gradient(spin_mean(a.pos_agree[e], a.pos_n), spin_mean(a.neg_agree[e], a.neg_n),
                                         spin_mean(a.neg_up[i], a.neg_n), spin_mean(a.neg_up[j], a.neg_n), a.w[e],
                                         a.weight_decay, a.cp);
      adam_ascent(a.w[e], a.mw[e], a.vw[e], g, a.adam);
      const float w32 = __double2float_rn(a.w[e]);
      a.engine_w[a.engine_pos[2 * e]] = w32;
      a.engine_w[a.engine_pos[2 * e + 1]] = w32;
    } else {
      const i64 k = idx - a.n_edges;
      const double g = spin_mean(a.pos_up[k], a.pos_n) - spin_mean(a.neg_up[k], a.neg_n);
      adam_ascent(a.b[k], a.mb[k], a.vb[k], g, a.adam);
      a.engine_bias[k] = __double2float_rn(a.b[k]);
    }
  }
}

}  // namespace

const char* dtm_pack_rows(const std::uint8_t* bits, i64 chains, i64 rows, u32* out, void* stream) {
  const i64 W = (chains + 31) / 32;
  if (rows <= 0 || W <= 0) return nullptr;
  k_pack_rows<<<grid_for(static_cast<u64>(W * rows)), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      bits, chains, rows, W, out);
  return launched();
}

const char* dtm_unpack_rows(const u32* words, i64 rows, i64 chains, std::uint8_t* out, void* stream) {
  const i64 W = (chains + 31) / 32;
  if (rows <= 0 || W <= 0) return nullptr;
  k_unpack_rows<<<grid_for(static_cast<u64>(W * rows)), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      words, rows, chains, W, out);
  return launched();
}

const char* dtm_count_moments(const u32* s, i64 chains, const std::int32_t* nodes, i64 n_nodes, i64* up,
                              const std::int32_t* edge_i, const std::int32_t* edge_j, i64 n_edges, i64* agree,
                              void* stream) {
  const i64 W = (chains + 31) / 32;
  if (W <= 0 || n_nodes + n_edges <= 0) return nullptr;
  k_count_moments<<<grid_for(static_cast<u64>(n_nodes + n_edges) * 32), kThreads, 0,
                    static_cast<cudaStream_t>(stream)>>>(s, chains, W, nodes, n_nodes, up, edge_i, edge_j, n_edges,
                                                         agree);
  return launched();
}

const char* dtm_adam_step(const DtmAdamArgs& a, void* stream) {
  if (a.n_edges + a.n_nodes <= 0) return nullptr;
  k_adam_step<<<grid_for(static_cast<u64>(a.n_edges + a.n_nodes)), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      a);
  return launched();
}

}  // namespace cuda
}  // namespace heatbath
