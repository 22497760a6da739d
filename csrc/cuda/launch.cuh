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

// Division by a fixed divisor d in 1 .. 2^31 - 1 for dividends x < 2^31:
// floor(x / d) = umulhi(x, mul) >> shr (mul = ceil(2^p / d), p = 31 +
// ceil(log2 d); the error x (mul d - 2^p) / (d 2^p) stays below 1/d). Two
// instructions instead of a 64-bit division per element.
struct FastDiv {
  u32 d, mul, shr;
};

inline FastDiv fast_div(u32 d) {
  if (d <= 1) return FastDiv{1u, 0u, 0u};
  u32 l = 0;
  while ((u64(1) << l) < d) ++l;  // ceil(log2 d)
  const u32 p = 31 + l;
  return FastDiv{d, static_cast<u32>(((u64(1) << p) + d - 1) / d), p - 32};
}

__device__ __forceinline__ u32 div_fast(u32 x, const FastDiv& f) {
  return f.d == 1 ? x : (__umulhi(x, f.mul) >> f.shr);
}

}  // namespace cuda
}  // namespace heatbath
