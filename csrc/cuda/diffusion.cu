// CUDA loops over the Gaussian-diffusion step of csrc/heatbath/diffusion.h.
//
// Steps that draw their noise run one thread per Philox block, as the
// random kernels do (csrc/cuda/random.cu): block b of tile b / kTileBlocks
// gives the V normals of stream elements tile * (kTileBlocks * V) +
// slot * kTileBlocks + lane, so a warp reads and writes contiguous runs.
// Other steps run a grid-stride loop over the elements. Element (b, i) has
// flat index g = b * inner + i; its normal is element offset + g of the
// stream (seed, stream), as on the CPU.
#include <cuda_runtime.h>

#include "launch.cuh"

#include <type_traits>

#include "diffusion.h"
#include "heatbath/distributions.h"

namespace heatbath {
namespace cuda {
namespace {

// Element g of the step with noise z; returns whether a model output is not
// finite.
template <class T>
__device__ __forceinline__ bool step_elem(const StepArgs<T>& a, i64 g, T z) {
  const i64 b = g / a.inner, i = g - b * a.inner;
  const double* c = a.coef + b * a.coef_stride;
  const StepFlags& f = a.flags;
  const T x = a.x[b * a.x_ss + i];
  const T m = a.m ? a.m[b * a.m_ss + i] : T(0);
  const T h = a.h ? a.h[b * a.h_ss + i] : T(0);
  const T v = f.var_mode != kVarSigma ? a.v[b * a.v_ss + i] : T(0);
  T x0;
  bool bad;
  a.out[g] = step_scalar(load_step_coefs<T>(c), f, x, m, h, v, z, x0, bad);
  if (a.x0_out) a.x0_out[g] = x0;
  if (a.z_out) a.z_out[g] = z;
  return bad;
}

__device__ __forceinline__ void count_bad(i64 my_bad, i64* bad) {
  if (my_bad) atomicAdd(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(my_bad));
}

__device__ __forceinline__ void normals(u64 seed, u64 sid, u64 block, float (&v)[4]) {
  normal_f32_block(seed, sid, block, v);
}
__device__ __forceinline__ void normals(u64 seed, u64 sid, u64 block, double (&v)[2]) {
  normal_f64_block(seed, sid, block, v);
}

// One thread per Philox block of the stream range [offset, offset + n).
template <class T, int V>
__global__ void k_step_draw(StepArgs<T> a, i64 n, u64 first_block, u64 nblocks, i64* bad) {
  i64 my_bad = 0;
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < nblocks;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 blk = first_block + k;
    T v[V];
    normals(a.seed, a.stream, blk, v);
    const u64 tile = blk / kTileBlocks, lane = blk % kTileBlocks;
#pragma unroll
    for (int s = 0; s < V; ++s) {
      const u64 j = tile * (kTileBlocks * V) + s * kTileBlocks + lane;
      if (j >= a.offset && j - a.offset < static_cast<u64>(n))
        my_bad += step_elem(a, static_cast<i64>(j - a.offset), v[s]);
    }
  }
  count_bad(my_bad, bad);
}

// Grid-stride loop over the elements (given noise, or none).
template <class T>
__global__ void k_step_plain(StepArgs<T> a, i64 n, i64* bad) {
  i64 my_bad = 0;
  for (i64 g = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; g < n;
       g += static_cast<i64>(gridDim.x) * blockDim.x) {
    T z = T(0);
    if (a.z) {
      const i64 b = g / a.inner;
      z = a.z[b * a.z_ss + (g - b * a.inner)];
    }
    my_bad += step_elem(a, g, z);
  }
  count_bad(my_bad, bad);
}

template <class T>
const char* launch(const StepArgs<T>& a, i64* bad, void* stream) {
  if (a.n_samples <= 0 || a.inner <= 0) return nullptr;
  const i64 n = a.n_samples * a.inner;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (a.flags.has_noise && !a.z) {
    constexpr int V = std::is_same<T, float>::value ? 4 : 2;
    const u64 per_tile = static_cast<u64>(kTileBlocks) * V;
    const u64 t0 = a.offset / per_tile, t1 = (a.offset + static_cast<u64>(n) - 1) / per_tile;
    const u64 first = t0 * kTileBlocks, count = (t1 - t0 + 1) * kTileBlocks;
    k_step_draw<T, V><<<grid_for(count), kThreads, 0, s>>>(a, n, first, count, bad);
  } else {
    k_step_plain<T><<<grid_for(static_cast<u64>(n)), kThreads, 0, s>>>(a, n, bad);
  }
  return launched();
}

}  // namespace

const char* diffusion_step_f32(const StepArgs<float>& a, i64* bad, void* stream) { return launch(a, bad, stream); }
const char* diffusion_step_f64(const StepArgs<double>& a, i64* bad, void* stream) { return launch(a, bad, stream); }

}  // namespace cuda
}  // namespace heatbath
