// Launch helpers shared by the CUDA kernels of heatbath._cuda.
#pragma once
#include <cuda_runtime.h>

#include "heatbath/distributions.h"

namespace heatbath {
namespace cuda {

constexpr int kThreads = 256;

// Blocks for `count` work items at kThreads per block, capped at `cap`
// blocks: kernels launched with it loop over their items (grid stride).
inline unsigned grid_for(u64 count, u64 cap = 65535u * 32u) {
  const u64 g = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(g == 0 ? 1 : (g < cap ? g : cap));
}

// nullptr when the last launch succeeded, else the CUDA error string.
inline const char* launched() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

// The Philox blocks whose values touch stream elements [offset, offset + n)
// of a transform with `values_per_block` values per block (distributions.h).
struct BlockRange {
  u64 first, count;
};

inline BlockRange blocks_for(u64 offset, i64 n, int values_per_block) {
  const u64 per_tile = static_cast<u64>(kTileBlocks) * values_per_block;
  const u64 t0 = offset / per_tile, t1 = (offset + static_cast<u64>(n) - 1) / per_tile;
  return BlockRange{t0 * kTileBlocks, (t1 - t0 + 1) * kTileBlocks};
}

}  // namespace cuda
}  // namespace heatbath
