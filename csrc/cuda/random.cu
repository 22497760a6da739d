// CUDA loops over the formulas of csrc/heatbath/distributions.h: one thread
// per Philox block. Block b lies in tile b / kTileBlocks at lane
// b % kTileBlocks, and its V values are stream elements
// tile * (kTileBlocks * V) + slot * kTileBlocks + lane, so a warp writes
// contiguous runs (coalesced).
#include <cuda_runtime.h>

#include "launch.cuh"

#include "heatbath/distributions.h"
#include "random.h"

namespace heatbath {
namespace cuda {
namespace {

// The Philox blocks whose values touch stream elements [offset, offset + n).
// Calls put(i, slot) for each value of block b whose stream index lies in
// [offset, offset + n); i is the output index.
template <int V, class Put>
__device__ __forceinline__ void for_values(u64 b, u64 offset, i64 n, Put put) {
  const u64 tile = b / kTileBlocks, lane = b % kTileBlocks;
#pragma unroll
  for (int s = 0; s < V; ++s) {
    const u64 j = tile * (kTileBlocks * V) + s * kTileBlocks + lane;
    if (j >= offset && j - offset < static_cast<u64>(n)) put(static_cast<i64>(j - offset), s);
  }
}

__global__ void k_philox(const u32* __restrict__ counter, const u32* __restrict__ key, u32* __restrict__ out,
                         i64 n) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    u32 c0 = counter[4 * i], c1 = counter[4 * i + 1], c2 = counter[4 * i + 2], c3 = counter[4 * i + 3];
    philox4x32_10(c0, c1, c2, c3, key[2 * i], key[2 * i + 1]);
    out[4 * i] = c0;
    out[4 * i + 1] = c1;
    out[4 * i + 2] = c2;
    out[4 * i + 3] = c3;
  }
}

// Uniform and normal fills: one thread per Philox block, 32-bit indices
// (launches of at most kPiece elements), a thread whose V values all lie in
// the range stores them without tests, with the streaming hint (the output is
// not read again by this kernel).
constexpr i64 kPiece = i64(1) << 30;

template <class T, int V, bool kNormal>
__global__ void __launch_bounds__(kThreads) k_fill(u64 seed, u64 sid, u64 first_block, u32 count, std::int32_t head,
                                                   std::int32_t n, T* __restrict__ out) {
  const u32 k = blockIdx.x * static_cast<u32>(blockDim.x) + threadIdx.x;
  if (k >= count) return;
  T v[V];
  if constexpr (V == 4) {
    if (kNormal)
      normal_f32_block(seed, sid, first_block + k, v);
    else
      uniform_f32_block(seed, sid, first_block + k, v);
  } else {
    if (kNormal)
      normal_f64_block(seed, sid, first_block + k, v);
    else
      uniform_f64_block(seed, sid, first_block + k, v);
  }
  const std::int32_t base = static_cast<std::int32_t>((k >> 5) * static_cast<u32>(kTileBlocks * V) + (k & 31u)) - head;
  if (base >= 0 && base + kTileBlocks * (V - 1) < n) {
#pragma unroll
    for (int s = 0; s < V; ++s) __stcs(out + base + s * kTileBlocks, v[s]);
  } else {
#pragma unroll
    for (int s = 0; s < V; ++s) {
      const std::int32_t g = base + s * kTileBlocks;
      if (g >= 0 && g < n) out[g] = v[s];
    }
  }
}

template <class T, int V, bool kNormal>
const char* fill(u64 seed, u64 sid, u64 offset, i64 n, T* out, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  constexpr u64 per_tile = static_cast<u64>(kTileBlocks) * V;
  for (i64 e0 = 0; e0 < n; e0 += kPiece) {
    const i64 ne = n - e0 < kPiece ? n - e0 : kPiece;
    const u64 off = offset + static_cast<u64>(e0);
    const u64 t0 = off / per_tile, t1 = (off + static_cast<u64>(ne) - 1) / per_tile;
    const u32 count = static_cast<u32>((t1 - t0 + 1) * kTileBlocks);
    k_fill<T, V, kNormal><<<(count + kThreads - 1) / kThreads, kThreads, 0, st>>>(
        seed, sid, t0 * kTileBlocks, count, static_cast<std::int32_t>(off - t0 * per_tile),
        static_cast<std::int32_t>(ne), out + e0);
    if (const char* e = launched()) return e;
  }
  return nullptr;
}

template <class P>
__global__ void k_bernoulli(u64 seed, u64 sid, u64 offset, i64 n, BlockRange r, const P* __restrict__ p,
                            i64 p_stride, std::uint8_t* __restrict__ out, i64* bad) {
  i64 my_bad = 0;
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < r.count;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 b = r.first + k;
    const Words4 w = philox_block(seed, sid, b);
    for_values<4>(b, offset, n, [&](i64 i, int s) {
      const u64 th = bernoulli_threshold(p[i * p_stride]);
      my_bad += th == kBadThreshold;
      out[i] = static_cast<u64>(w.w[s]) < th;
    });
  }
  if (my_bad) atomicAdd(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(my_bad));
}

__global__ void k_integers(u64 seed, u64 sid, u64 offset, i64 n, BlockRange r, std::int64_t low, u64 range,
                           std::int64_t* __restrict__ out) {
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < r.count;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 b = r.first + k;
    const Words4 w = philox_block(seed, sid, b);
    for_values<2>(b, offset, n, [&](i64 i, int s) {
      const u64 x = (static_cast<u64>(w.w[2 * s]) << 32) | w.w[2 * s + 1];
      out[i] = static_cast<std::int64_t>(static_cast<u64>(low) + (range == 0 ? x : mulhi64(x, range)));
    });
  }
}

}  // namespace

const char* philox(const u32* counter, const u32* key, u32* out, i64 n, void* stream) {
  if (n <= 0) return nullptr;
  k_philox<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(counter, key, out, n);
  return launched();
}

const char* uniform_f32(u64 seed, u64 sid, u64 offset, i64 n, float* out, void* stream) {
  return fill<float, 4, false>(seed, sid, offset, n, out, stream);
}
const char* normal_f32(u64 seed, u64 sid, u64 offset, i64 n, float* out, void* stream) {
  return fill<float, 4, true>(seed, sid, offset, n, out, stream);
}
const char* uniform_f64(u64 seed, u64 sid, u64 offset, i64 n, double* out, void* stream) {
  return fill<double, 2, false>(seed, sid, offset, n, out, stream);
}
const char* normal_f64(u64 seed, u64 sid, u64 offset, i64 n, double* out, void* stream) {
  return fill<double, 2, true>(seed, sid, offset, n, out, stream);
}

template <class P>
const char* bernoulli_any(u64 seed, u64 sid, u64 offset, i64 n, const P* p, i64 p_stride, std::uint8_t* out,
                          i64* bad, void* stream) {
  if (n <= 0) return nullptr;
  const BlockRange r = blocks_for(offset, n, 4);
  k_bernoulli<<<grid_for(r.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(seed, sid, offset, n, r, p,
                                                                                      p_stride, out, bad);
  return launched();
}

const char* bernoulli_f32(u64 seed, u64 sid, u64 offset, i64 n, const float* p, i64 p_stride, std::uint8_t* out,
                          i64* bad, void* stream) {
  return bernoulli_any(seed, sid, offset, n, p, p_stride, out, bad, stream);
}

const char* bernoulli_f64(u64 seed, u64 sid, u64 offset, i64 n, const double* p, i64 p_stride, std::uint8_t* out,
                          i64* bad, void* stream) {
  return bernoulli_any(seed, sid, offset, n, p, p_stride, out, bad, stream);
}

const char* integers(u64 seed, u64 sid, u64 offset, i64 n, std::int64_t low, u64 range, std::int64_t* out,
                     void* stream) {
  if (n <= 0) return nullptr;
  const BlockRange r = blocks_for(offset, n, 2);
  k_integers<<<grid_for(r.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(seed, sid, offset, n, r, low,
                                                                                    range, out);
  return launched();
}

}  // namespace cuda
}  // namespace heatbath
