// CUDA kernels over the RBM formulas of csrc/heatbath/rbm.h: one thread per
// Philox block. Block b lies in tile b / kTileBlocks at lane b % kTileBlocks;
// its V values are stream elements tile * (kTileBlocks * V) + slot *
// kTileBlocks + lane (distributions.h), so a warp reads and writes contiguous
// runs of each row, and every value equals the CPU kernels' (float32 to the
// bit).
#include <cuda_runtime.h>

#include "launch.cuh"

#include "heatbath/rbm.h"
#include "rbm.h"

namespace heatbath {
namespace cuda {
namespace {

// Calls put(i, r, c, slot) for each value of block b whose stream index lies
// in [offset, offset + n); i = r * cols + c is the flat output index.
template <int V, class Put>
__device__ __forceinline__ void for_values(u64 b, u64 offset, i64 n, i64 cols, Put put) {
  const u64 tile = b / kTileBlocks, lane = b % kTileBlocks;
#pragma unroll
  for (int s = 0; s < V; ++s) {
    const u64 j = tile * (kTileBlocks * V) + s * kTileBlocks + lane;
    if (j >= offset && j - offset < static_cast<u64>(n)) {
      const i64 i = static_cast<i64>(j - offset);
      put(i / cols, i % cols, s);
    }
  }
}

__device__ __forceinline__ void unit(float x, float b, float a, float s, u32 w, float& p, float& o) {
  bernoulli_unit_f32(x, b, a, s, w, p, o);
}
__device__ __forceinline__ void unit(double x, double b, double a, double s, u32 w, double& p, double& o) {
  bernoulli_unit_f64(x, b, a, s, w, p, o);
}

template <class T>
__global__ void k_bernoulli(RbmBernoulliArgs<T> A, T scale_value, BlockRange br) {
  const i64 n = A.rows * A.cols;
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < br.count;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 b = br.first + k;
    Words4 w{{0, 0, 0, 0}};
    if (A.sample) w = philox_block(A.seed, A.stream, b);
    for_values<4>(b, A.offset, n, A.cols, [&](i64 r, i64 c, int s) {
      const T sc = A.scale_stride ? A.scale[r] : scale_value;
      const T a = A.base ? A.base[c] : T(0);
      T p, o;
      unit(A.x[r * A.ldx + c], A.bias[c], a, sc, w.w[s], p, o);
      if (A.prob) A.prob[r * A.ld_prob + c] = p;
      if (A.sample) A.sample[r * A.ld_sample + c] = o;
    });
  }
}

__global__ void k_gaussian_f32(RbmGaussianArgs<float> A, float sigma_value, float scale_value,
                               BlockRange br) {
  const i64 n = A.rows * A.cols;
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < br.count;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 b = br.first + k;
    float z[4] = {0.f, 0.f, 0.f, 0.f};
    if (A.sample) normal_f32_block(A.seed, A.stream, b, z);
    for_values<4>(b, A.offset, n, A.cols, [&](i64 r, i64 c, int s) {
      const float sc = A.scale_stride ? A.scale[r] : scale_value;
      const float sg = A.sigma_stride ? A.sigma[c] : sigma_value;
      float m, o;
      gaussian_unit_f32(A.x[r * A.ldx + c], A.bias[c], sg, sc, z[s], m, o);
      if (A.mean) A.mean[r * A.ld_mean + c] = m;
      if (A.sample) A.sample[r * A.ld_sample + c] = o;
    });
  }
}

__global__ void k_gaussian_f64(RbmGaussianArgs<double> A, double sigma_value, double scale_value,
                               BlockRange br) {
  const i64 n = A.rows * A.cols;
  for (u64 k = blockIdx.x * static_cast<u64>(blockDim.x) + threadIdx.x; k < br.count;
       k += static_cast<u64>(gridDim.x) * blockDim.x) {
    const u64 b = br.first + k;
    double z[2] = {0.0, 0.0};
    if (A.sample) normal_f64_block(A.seed, A.stream, b, z);
    for_values<2>(b, A.offset, n, A.cols, [&](i64 r, i64 c, int s) {
      const double sc = A.scale_stride ? A.scale[r] : scale_value;
      const double sg = A.sigma_stride ? A.sigma[c] : sigma_value;
      double m, o;
      gaussian_unit_f64(A.x[r * A.ldx + c], A.bias[c], sg, sc, z[s], m, o);
      if (A.mean) A.mean[r * A.ld_mean + c] = m;
      if (A.sample) A.sample[r * A.ld_sample + c] = o;
    });
  }
}

template <class T>
const char* bernoulli_any(const RbmBernoulliArgs<T>& a, T scale_value, void* stream) {
  const i64 n = a.rows * a.cols;
  if (n <= 0) return nullptr;
  const BlockRange br = blocks_for(a.offset, n, 4);
  k_bernoulli<T><<<grid_for(br.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a, scale_value, br);
  return launched();
}

}  // namespace

const char* rbm_bernoulli_f32(const RbmBernoulliArgs<float>& a, float scale_value, void* stream) {
  return bernoulli_any(a, scale_value, stream);
}

const char* rbm_bernoulli_f64(const RbmBernoulliArgs<double>& a, double scale_value, void* stream) {
  return bernoulli_any(a, scale_value, stream);
}

const char* rbm_gaussian_f32(const RbmGaussianArgs<float>& a, float sigma_value, float scale_value,
                             void* stream) {
  const i64 n = a.rows * a.cols;
  if (n <= 0) return nullptr;
  const BlockRange br = blocks_for(a.offset, n, 4);
  k_gaussian_f32<<<grid_for(br.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a, sigma_value,
                                                                                          scale_value, br);
  return launched();
}

const char* rbm_gaussian_f64(const RbmGaussianArgs<double>& a, double sigma_value, double scale_value,
                             void* stream) {
  const i64 n = a.rows * a.cols;
  if (n <= 0) return nullptr;
  const BlockRange br = blocks_for(a.offset, n, 2);
  k_gaussian_f64<<<grid_for(br.count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a, sigma_value,
                                                                                          scale_value, br);
  return launched();
}

}  // namespace cuda
}  // namespace heatbath
