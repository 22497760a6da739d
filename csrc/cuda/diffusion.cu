// CUDA loop over the Gaussian-diffusion step of csrc/heatbath/diffusion.h.
//
// One thread per Philox block, as in the random kernels (csrc/cuda/random.cu):
// block b of tile b / kTileBlocks holds the V normals of stream elements
// tile * (kTileBlocks * V) + slot * kTileBlocks + lane, so a warp reads and
// writes V runs of 32 consecutive elements (coalesced). A step without drawn
// noise uses the same element map with tiles aligned to element 0. Element
// (b, i) has flat index g = b * inner + i; its normal is element offset + g of
// the stream (seed, stream), as on the CPU.
//
// What makes it run at memory bandwidth: the coefficients arrive in the
// state's precision (by value, or one table row per sample in L1), indices
// are 32-bit (launches are split into pieces of whole samples below 2^30
// elements), the sample of an element is found by a multiply-shift division
// and only where something depends on it, and nothing is read that the step
// does not use. Non-finite model outputs and bad timesteps are counted in a
// device counter, never reported through the host.
#include <cuda_runtime.h>

#include "launch.cuh"

#include <type_traits>

#include "diffusion.h"
#include "heatbath/distributions.h"

namespace heatbath {
namespace cuda {
namespace {

constexpr i64 kPiece = i64(1) << 30;  // elements per launch (32-bit indices)

template <class T>
__device__ __forceinline__ StepCoefs<T> coefs_from(const T* r) {
  return StepCoefs<T>{r[kGAx],  r[kGAm], r[kGC0],    r[kGCh],    r[kGPs],     r[kGRhi],          r[kGRlo],
                      r[kGLo],  r[kGHi], r[kGScale], r[kGSigma], r[kGMinLog], r[kGMaxLog], r[kGSwap] != T(0)};
}

__device__ __forceinline__ i64 load_t(const void* p, int bytes, i64 idx) {
  return bytes == 4 ? static_cast<i64>(__ldg(static_cast<const std::int32_t*>(p) + idx))
                    : static_cast<i64>(__ldg(static_cast<const long long*>(p) + idx));
}

__device__ __forceinline__ void normals(u64 seed, u64 sid, u64 block, float (&v)[4]) {
  normal_f32_block(seed, sid, block, v);
}
__device__ __forceinline__ void normals(u64 seed, u64 sid, u64 block, double (&v)[2]) {
  normal_f64_block(seed, sid, block, v);
}

// The coefficients of sample b (modes kCoefByTime, kCoefBySample, and the
// timestep check of kCoefRow). Returns false for a bad timestep.
template <class T>
__device__ __forceinline__ bool sample_coefs(const GpuStepArgs<T>& a, i64 b, StepCoefs<T>& k) {
  if (a.t_expect >= 0 && a.tsteps && load_t(a.tsteps, a.t_bytes, b * a.t_stride) != a.t_expect) return false;
  if (a.mode == kCoefRow) {
    k = coefs_from(a.row.v);
    return true;
  }
  i64 r = b;
  if (a.mode == kCoefByTime) {
    r = load_t(a.tsteps, a.t_bytes, b * a.t_stride);
    if (r < 0 || r >= a.table_rows) return false;
  }
  const T* row = a.table + r * kGRowWords;
  if (__ldg(row + kGValid) == T(0)) return false;
  T c[kGRowWords];
#pragma unroll
  for (int q = 0; q < kGRowWords; ++q) c[q] = __ldg(row + q);
  k = coefs_from(c);
  return true;
}

// kDraw: normals from Philox; kPerSample: the coefficients or an input's
// address depend on the sample (else one row for all and contiguous inputs).
template <class T, int V, bool kDraw, bool kPerSample>
__global__ void __launch_bounds__(kThreads) k_step(const GpuStepArgs<T> a, u32 count, std::int32_t head, std::int32_t n,
                                                   std::int32_t inner, FastDiv div, u64 first_block) {
  const u32 k = blockIdx.x * static_cast<u32>(blockDim.x) + threadIdx.x;
  if (k >= count) return;
  const StepFlags& f = a.flags;
  const std::int32_t base = static_cast<std::int32_t>((k >> 5) * static_cast<u32>(kTileBlocks * V) + (k & 31u)) - head;

  std::int32_t g[V], b[V];
  bool ok[V];
  T x[V], m[V], h[V], v[V], z[V];
#pragma unroll
  for (int s = 0; s < V; ++s) {
    g[s] = base + s * kTileBlocks;
    ok[s] = g[s] >= 0 && g[s] < n;
    b[s] = 0;
    x[s] = m[s] = h[s] = v[s] = z[s] = T(0);
    if (!ok[s]) continue;
    i64 ix = g[s], im = g[s], ih = g[s], iv = g[s], iz = g[s];
    if (kPerSample) {
      b[s] = static_cast<std::int32_t>(div_fast(static_cast<u32>(g[s]), div));
      const i64 i = g[s] - static_cast<i64>(b[s]) * inner;
      ix = b[s] * a.x_ss + i;
      im = b[s] * a.m_ss + i;
      ih = b[s] * a.h_ss + i;
      iv = b[s] * a.v_ss + i;
      iz = b[s] * a.z_ss + i;
    }
    x[s] = __ldg(a.x + ix);
    if (f.has_m) m[s] = __ldg(a.m + im);
    if (f.has_h) h[s] = __ldg(a.h + ih);
    if (f.var_mode != kVarSigma) v[s] = __ldg(a.v + iv);
    if (!kDraw && a.z) z[s] = __ldg(a.z + iz);
  }
  if (kDraw) normals(a.seed, a.stream, first_block + k, z);

  StepCoefs<T> kc;
  bool kc_ok = true;
  std::int32_t kc_b = -1;
  if (!kPerSample) {
    kc_ok = sample_coefs(a, 0, kc);
    kc_b = 0;
  }
  i64 nbad = 0, nbad_t = 0;
#pragma unroll
  for (int s = 0; s < V; ++s) {
    if (!ok[s]) continue;
    if (kPerSample && b[s] != kc_b) {
      kc_ok = sample_coefs(a, b[s], kc);
      kc_b = b[s];
    }
    T x0, y;
    bool bad = false;
    if (kc_ok) {
      y = step_scalar(kc, f, x[s], m[s], h[s], v[s], z[s], x0, bad);
    } else {
      y = x0 = T(NAN);
      nbad_t += 1;
    }
    nbad += bad;
    a.out[g[s]] = y;
    if (a.x0_out) a.x0_out[g[s]] = x0;
    if (a.z_out) a.z_out[g[s]] = z[s];
  }
  if (nbad) atomicAdd(reinterpret_cast<unsigned long long*>(a.bad), static_cast<unsigned long long>(nbad));
  if (nbad_t) atomicAdd(reinterpret_cast<unsigned long long*>(a.bad + 1), static_cast<unsigned long long>(nbad_t));
}

// Steps without drawn noise, one coefficient row and contiguous 16-byte
// aligned arrays: a thread takes 16 consecutive bytes of each array (one
// vector load per input, one vector store per output), the remainder of the
// element count goes to the last thread element by element.
template <class T>
struct Vec16;
template <>
struct Vec16<float> {
  typedef float4 type;
  static constexpr int N = 4;
};
template <>
struct Vec16<double> {
  typedef double2 type;
  static constexpr int N = 2;
};

template <class T>
__device__ __forceinline__ void vload(const T* p, T (&v)[Vec16<T>::N]) {
  const typename Vec16<T>::type u = __ldg(reinterpret_cast<const typename Vec16<T>::type*>(p));
  const T* q = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int e = 0; e < Vec16<T>::N; ++e) v[e] = q[e];
}

template <class T>
__device__ __forceinline__ void vstore(T* p, const T (&v)[Vec16<T>::N]) {
  typename Vec16<T>::type u;
  T* q = reinterpret_cast<T*>(&u);
#pragma unroll
  for (int e = 0; e < Vec16<T>::N; ++e) q[e] = v[e];
  *reinterpret_cast<typename Vec16<T>::type*>(p) = u;
}

template <class T>
__global__ void __launch_bounds__(kThreads) k_step_vec(const GpuStepArgs<T> a, u32 nvec, std::int32_t n) {
  constexpr int N = Vec16<T>::N;
  const u32 k = blockIdx.x * static_cast<u32>(blockDim.x) + threadIdx.x;
  if (k >= nvec) return;
  const StepFlags& f = a.flags;
  StepCoefs<T> kc;
  const bool kc_ok = sample_coefs(a, 0, kc);
  const std::int32_t g0 = static_cast<std::int32_t>(k) * N;
  T x[N], m[N], h[N], v[N], z[N], y[N], x0[N];
  i64 nbad = 0;
  if (g0 + N <= n) {
    vload(a.x + g0, x);
#pragma unroll
    for (int e = 0; e < N; ++e) m[e] = h[e] = v[e] = z[e] = T(0);
    if (f.has_m) vload(a.m + g0, m);
    if (f.has_h) vload(a.h + g0, h);
    if (f.var_mode != kVarSigma) vload(a.v + g0, v);
    if (a.z) vload(a.z + g0, z);
#pragma unroll
    for (int e = 0; e < N; ++e) {
      bool bad = false;
      y[e] = kc_ok ? step_scalar(kc, f, x[e], m[e], h[e], v[e], z[e], x0[e], bad) : (x0[e] = T(NAN));
      nbad += bad;
    }
    vstore(a.out + g0, y);
    if (a.x0_out) vstore(a.x0_out + g0, x0);
    if (a.z_out) vstore(a.z_out + g0, z);
  } else {
    for (std::int32_t g = g0; g < n; ++g) {
      const T xe = a.x[g], me = f.has_m ? a.m[g] : T(0), he = f.has_h ? a.h[g] : T(0);
      const T ve = f.var_mode != kVarSigma ? a.v[g] : T(0), ze = a.z ? a.z[g] : T(0);
      T x0e;
      bool bad = false;
      const T ye = kc_ok ? step_scalar(kc, f, xe, me, he, ve, ze, x0e, bad) : (x0e = T(NAN));
      nbad += bad;
      a.out[g] = ye;
      if (a.x0_out) a.x0_out[g] = x0e;
      if (a.z_out) a.z_out[g] = ze;
    }
  }
  if (nbad) atomicAdd(reinterpret_cast<unsigned long long*>(a.bad), static_cast<unsigned long long>(nbad));
  if (!kc_ok && k == 0)
    atomicAdd(reinterpret_cast<unsigned long long*>(a.bad + 1), static_cast<unsigned long long>(n));
}

template <class T>
bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

template <class T>
bool per_sample(const GpuStepArgs<T>& a) {
  const i64 in = a.inner;
  if (a.n_samples > 1) {
    if (a.x_ss != in) return true;
    if (a.flags.has_m && a.m_ss != in) return true;
    if (a.flags.has_h && a.h_ss != in) return true;
    if (a.flags.var_mode != kVarSigma && a.v_ss != in) return true;
    if (a.z && a.z_ss != in) return true;
  }
  if (a.mode == kCoefBySample) return true;
  if (a.tsteps && a.t_stride != 0) return true;
  return false;
}

// One launch over n = n_samples * inner < 2^30 elements.
template <class T>
const char* launch_piece(const GpuStepArgs<T>& a, cudaStream_t s) {
  constexpr int V = std::is_same<T, float>::value ? 4 : 2;
  constexpr u64 per_tile = static_cast<u64>(kTileBlocks) * V;
  const i64 n = a.n_samples * a.inner;
  const bool draw = a.flags.has_noise && !a.z;
  u64 t0 = 0, t1 = (static_cast<u64>(n) - 1) / per_tile;
  std::int32_t head = 0;
  if (draw) {
    t0 = a.offset / per_tile;
    t1 = (a.offset + static_cast<u64>(n) - 1) / per_tile;
    head = static_cast<std::int32_t>(a.offset - t0 * per_tile);
  }
  const u32 count = static_cast<u32>((t1 - t0 + 1) * kTileBlocks);
  const unsigned grid = (count + kThreads - 1) / kThreads;
  const FastDiv div = fast_div(static_cast<u32>(a.inner));
  const bool ps = per_sample(a);
  const std::int32_t nn = static_cast<std::int32_t>(n), in = static_cast<std::int32_t>(a.inner);
  const u64 first = t0 * kTileBlocks;
  if (!draw && !ps && aligned16<T>(a.x) && aligned16<T>(a.out) && (!a.flags.has_m || aligned16<T>(a.m)) &&
      (!a.flags.has_h || aligned16<T>(a.h)) && (a.flags.var_mode == kVarSigma || aligned16<T>(a.v)) &&
      (!a.z || aligned16<T>(a.z)) && (!a.x0_out || aligned16<T>(a.x0_out)) && (!a.z_out || aligned16<T>(a.z_out))) {
    constexpr int N = Vec16<T>::N;
    const u32 nvec = static_cast<u32>((n + N - 1) / N);
    k_step_vec<T><<<(nvec + kThreads - 1) / kThreads, kThreads, 0, s>>>(a, nvec, nn);
    return launched();
  }
  if (draw) {
    if (ps)
      k_step<T, V, true, true><<<grid, kThreads, 0, s>>>(a, count, head, nn, in, div, first);
    else
      k_step<T, V, true, false><<<grid, kThreads, 0, s>>>(a, count, head, nn, in, div, first);
  } else {
    if (ps)
      k_step<T, V, false, true><<<grid, kThreads, 0, s>>>(a, count, head, nn, in, div, first);
    else
      k_step<T, V, false, false><<<grid, kThreads, 0, s>>>(a, count, head, nn, in, div, first);
  }
  return launched();
}

// The arguments of samples [b0, b0 + nb), elements [e0, e0 + ne) of each
// (ne < inner only for one sample at a time).
template <class T>
GpuStepArgs<T> piece(const GpuStepArgs<T>& a, i64 b0, i64 nb, i64 e0, i64 ne) {
  GpuStepArgs<T> p = a;
  p.n_samples = nb;
  p.inner = ne;
  p.x = a.x + b0 * a.x_ss + e0;
  if (a.m) p.m = a.m + b0 * a.m_ss + e0;
  if (a.h) p.h = a.h + b0 * a.h_ss + e0;
  if (a.v) p.v = a.v + b0 * a.v_ss + e0;
  if (a.z) p.z = a.z + b0 * a.z_ss + e0;
  p.out = a.out + b0 * a.inner + e0;
  if (a.x0_out) p.x0_out = a.x0_out + b0 * a.inner + e0;
  if (a.z_out) p.z_out = a.z_out + b0 * a.inner + e0;
  if (a.tsteps) p.tsteps = static_cast<const char*>(a.tsteps) + b0 * a.t_stride * a.t_bytes;
  if (a.mode == kCoefBySample) p.table = a.table + b0 * kGRowWords;
  p.offset = a.offset + static_cast<u64>(b0 * a.inner + e0);
  return p;
}

template <class T>
const char* launch(const GpuStepArgs<T>& a, void* stream) {
  if (a.n_samples <= 0 || a.inner <= 0) return nullptr;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (a.n_samples * a.inner <= kPiece) return launch_piece(a, s);
  if (a.inner <= kPiece) {
    const i64 per = kPiece / a.inner;
    for (i64 b0 = 0; b0 < a.n_samples; b0 += per) {
      const i64 nb = a.n_samples - b0 < per ? a.n_samples - b0 : per;
      if (const char* e = launch_piece(piece(a, b0, nb, 0, a.inner), s)) return e;
    }
    return nullptr;
  }
  for (i64 b0 = 0; b0 < a.n_samples; ++b0)
    for (i64 e0 = 0; e0 < a.inner; e0 += kPiece) {
      const i64 ne = a.inner - e0 < kPiece ? a.inner - e0 : kPiece;
      if (const char* e = launch_piece(piece(a, b0, 1, e0, ne), s)) return e;
    }
  return nullptr;
}

}  // namespace

const char* diffusion_step_f32(const GpuStepArgs<float>& a, void* stream) { return launch(a, stream); }
const char* diffusion_step_f64(const GpuStepArgs<double>& a, void* stream) { return launch(a, stream); }

}  // namespace cuda
}  // namespace heatbath
