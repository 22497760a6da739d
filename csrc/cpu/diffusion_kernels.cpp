// CPU loops over the Gaussian-diffusion step of csrc/heatbath/diffusion.h.
// Compiled once per instruction-set level; each copy exports its
// DiffusionTable.
//
// The elements are split into one contiguous chunk per thread; within a
// chunk the loop walks the samples it covers (each with its own
// coefficients). Where the step draws its noise, it walks the Philox tiles
// of distributions.h: a whole tile (4 * kTileBlocks normals, computed by
// SIMD Philox and Box-Muller into an L1 buffer) is consumed by the vector
// step loop; partial tiles at chunk and sample edges take the scalar path.
// Every element depends only on its index, so results are identical for any
// thread count and any level.
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "diffusion.h"
#include "heatbath/distributions.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

constexpr i64 kParallelMin = i64(1) << 15;
constexpr i64 kBadOutput = cpu::kBadOutput, kBadSample = cpu::kBadSample, kBadNoise = cpu::kBadNoise;

template <class T>
struct TileOf;
template <>
struct TileOf<float> {
  static constexpr u64 kValues = 4 * kTileBlocks;  // one word per value
};
template <>
struct TileOf<double> {
  static constexpr u64 kValues = 2 * kTileBlocks;  // two words per value
};

// The normals of element j of the stream, one at a time (edges).
inline float normal_at(u64 seed, u64 stream, u64 j, float) {
  const ElementSlot s = element_slot(j, 1);
  float v[4];
  normal_f32_block(seed, stream, s.block, v);
  return v[s.slot];
}
inline double normal_at(u64 seed, u64 stream, u64 j, double) {
  const ElementSlot s = element_slot(j, 2);
  double v[2];
  normal_f64_block(seed, stream, s.block, v);
  return v[s.slot];
}

#if defined(HB_HAVE_SIMD)
// Philox4x32-10 on N vectors of counters, the same bijection as
// philox4x32_10_n (csrc/heatbath/philox.h) computed in a layout that needs
// no blends inside the rounds: each vector of 32-bit words is split into its
// even and odd lanes, each held in the low half of a 64-bit lane, so one
// 32x32 -> 64-bit multiply gives both halves of the product (lo in the low
// half, hi after one shift; high halves of the other words are don't-care,
// the multiplies ignore them). Two blends per word at the end restore the
// lane order. About 12 vector operations per round and 16 counters instead
// of 17; the words are identical (tests compare with heatbath.random).
typedef std::uint64_t vu64 __attribute__((vector_size(sizeof(vu32))));
inline vu64 mul_lo32(vu64 a, vu64 b) {
#if defined(__AVX512F__)
  return reinterpret_cast<vu64>(_mm512_mul_epu32(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b)));
#else
  return reinterpret_cast<vu64>(_mm256_mul_epu32(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b)));
#endif
}

template <int N>
inline void philox_even_odd(vu32 (&c)[N][4], u32 k0, u32 k1) {
  vu64 e[N][4], o[N][4];
  for (int i = 0; i < N; ++i)
    for (int w = 0; w < 4; ++w) {
      const vu64 x = reinterpret_cast<vu64>(c[i][w]);
      e[i][w] = x;        // even lanes in the low halves
      o[i][w] = x >> 32;  // odd lanes
    }
  const vu64 m0 = vu64{} + kPhiloxM0, m1 = vu64{} + kPhiloxM1;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const vu64 vk0 = vu64{} + k0, vk1 = vu64{} + k1;
    auto round = [&](vu64(&h)[4]) {
      const vu64 p0 = mul_lo32(h[0], m0), p1 = mul_lo32(h[2], m1);
      h[0] = (p1 >> 32) ^ h[1] ^ vk0;
      h[1] = p1;
      h[2] = (p0 >> 32) ^ h[3] ^ vk1;
      h[3] = p0;
    };
    for (int i = 0; i < N; ++i) {
      round(e[i]);
      round(o[i]);
    }
  }
  const vu64 lo_mask = vu64{} + 0xffffffffull;
  for (int i = 0; i < N; ++i)
    for (int w = 0; w < 4; ++w) c[i][w] = reinterpret_cast<vu32>((e[i][w] & lo_mask) | (o[i][w] << 32));
}
#endif

// The 4 * kTileBlocks float32 normals of each of the NT tiles t .. t + NT - 1
// in element order (NT * kTileBlocks / width independent Philox chains
// interleaved, which hides the multiply latency).
template <int NT>
inline void normal_tiles(u64 seed, u64 stream, u64 t, float* zb) {
#if defined(HB_HAVE_SIMD)
  constexpr int kPer = kTileBlocks / simd::kWidth;  // chains per tile
  constexpr int kChains = NT * kPer;
  vu32 c[kChains][4];
  vu32 lane;
  for (int i = 0; i < simd::kWidth; ++i) lane[i] = static_cast<u32>(i);
  for (int v = 0; v < kChains; ++v) {
    const u64 base = (t + v / kPer) * kTileBlocks;  // may carry into the high word between tiles
    c[v][0] = lane + static_cast<u32>(base + (v % kPer) * simd::kWidth);
    c[v][1] = vu32{} + static_cast<u32>(base >> 32);
    c[v][2] = vu32{} + static_cast<u32>(stream);
    c[v][3] = vu32{} + static_cast<u32>(stream >> 32);
  }
  philox_even_odd<kChains>(c, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
  for (int v = 0; v < kChains; ++v) {
    float* o = zb + (v / kPer) * (4 * kTileBlocks) + (v % kPer) * simd::kWidth;
    vf32 z[4];
    box_muller_f32(c[v][0], c[v][1], z[0], z[1]);
    box_muller_f32(c[v][2], c[v][3], z[2], z[3]);
    for (int l = 0; l < 4; ++l) std::memcpy(o + l * kTileBlocks, &z[l], sizeof(vf32));
  }
#else
  for (int k = 0; k < NT; ++k)
    for (int b = 0; b < kTileBlocks; ++b) {
      float v[4];
      normal_f32_block(seed, stream, (t + k) * kTileBlocks + b, v);
      for (int l = 0; l < 4; ++l) zb[k * 4 * kTileBlocks + l * kTileBlocks + b] = v[l];
    }
#endif
}

template <int NT>
inline void normal_tiles(u64 seed, u64 stream, u64 t, double* zb) {
  for (int k = 0; k < NT; ++k, ++t, zb += 2 * kTileBlocks) {
    for (int b = 0; b < kTileBlocks; ++b) {
      double v[2];
      normal_f64_block(seed, stream, t * kTileBlocks + b, v);
      zb[b] = v[0];
      zb[kTileBlocks + b] = v[1];
    }
  }
}

// One sample's view of the arguments.
template <class T>
struct SampleView {
  const T *x, *m, *h, *v, *z;
  T *out, *x0_out, *z_out;
  StepCoefs<T> k;
#if defined(HB_HAVE_SIMD)
  StepCoefs<vf32> kv;
#endif
};

template <class T>
SampleView<T> sample_view(const StepArgs<T>& a, i64 b) {
  SampleView<T> s;
  s.x = a.x + b * a.x_ss;
  s.m = a.m ? a.m + b * a.m_ss : nullptr;
  s.h = a.h ? a.h + b * a.h_ss : nullptr;
  s.v = a.v ? a.v + b * a.v_ss : nullptr;
  s.z = a.z ? a.z + b * a.z_ss : nullptr;
  s.out = a.out + b * a.inner;
  s.x0_out = a.x0_out ? a.x0_out + b * a.inner : nullptr;
  s.z_out = a.z_out ? a.z_out + b * a.inner : nullptr;
  const double* c = a.coef + b * a.coef_stride;
  s.k = load_step_coefs<T>(c);
#if defined(HB_HAVE_SIMD)
  s.kv = load_step_coefs<vf32>(c);
#endif
  return s;
}

// Element i of the sample, noise z. Returns flags: kBadOutput when a model
// output (or variance) is not finite, kBadSample when the sample is not,
// kBadNoise when the noise is not.
template <class T>
inline i64 step_one(const SampleView<T>& s, const StepFlags& f, i64 i, T z) {
  const T x = s.x[i];
  const T m = f.has_m ? s.m[i] : T(0);
  const T h = f.has_h ? s.h[i] : T(0);
  const T v = f.var_mode != kVarSigma ? s.v[i] : T(0);
  T x0;
  bool bad;
  s.out[i] = step_scalar(s.k, f, x, m, h, v, z, x0, bad);
  if (f.want_x0) s.x0_out[i] = x0;
  if (s.z_out) s.z_out[i] = z;
  return (bad ? kBadOutput : 0) | (not_finite(x) ? kBadSample : 0) | (not_finite(z) ? kBadNoise : 0);
}

#if defined(HB_HAVE_SIMD)
// Unaligned vector of float: loads and stores through it alias float only
// (memcpy would alias everything and make the compiler reload the
// coefficients and flags after every store).
typedef float vf32u __attribute__((vector_size(sizeof(vf32)), aligned(4)));

// The flags of step_one from the lane masks of the model output and the sample.
inline i64 span_flags(vi32 vbad, vi32 vbadx, vi32 vbadz) {
  i64 flags = 0;
  for (int l = 0; l < simd::kWidth; ++l)
    flags |= (vbad[l] != 0 ? kBadOutput : 0) | (vbadx[l] != 0 ? kBadSample : 0) | (vbadz[l] != 0 ? kBadNoise : 0);
  return flags;
}
inline vf32 vload(const float* p) { return *reinterpret_cast<const vf32u*>(p); }
inline void vstore(float* p, vf32 v) { *reinterpret_cast<vf32u*>(p) = v; }

// The vector body over [i, i + len) (len a multiple of the width); returns
// the flags of step_one. Flags, coefficients and pointers are locals, so the
// loop keeps them in registers.
inline i64 step_span_vec(const SampleView<float>& s, const StepFlags& f, i64 i, i64 len, const float* zs) {
  constexpr int W = simd::kWidth;
  const StepCoefs<vf32> k = s.kv;
  const StepFlags fl = f;
  const bool has_m = fl.has_m, has_h = fl.has_h, given_v = fl.var_mode == kVarGiven;
  const bool need_x0 = fl.use_x0 || fl.want_x0, clip = fl.clip;
  const float* __restrict__ x = s.x + i;
  const float* __restrict__ m = has_m ? s.m + i : nullptr;
  const float* __restrict__ h = has_h ? s.h + i : nullptr;
  const float* __restrict__ v = given_v ? s.v + i : nullptr;
  float* __restrict__ out = s.out + i;
  float* __restrict__ x0o = fl.want_x0 ? s.x0_out + i : nullptr;
  float* __restrict__ zo = s.z_out ? s.z_out + i : nullptr;
  vi32 vbad = vi32{}, vbadx = vi32{}, vbadz = vi32{};
  for (i64 e = 0; e < len; e += W) {
    const vf32 xv = vload(x + e);
    vbadx |= not_finite(xv);
    vf32 mv = vf32{}, hv = vf32{}, zv = vf32{}, x0 = vf32{}, sd = k.sigma;
    if (has_m) {
      mv = vload(m + e);
      vbad |= not_finite(mv);
    }
    if (has_h) hv = vload(h + e);
    if (zs) {
      zv = vload(zs + e);
      vbadz |= not_finite(zv);
    }
    if (given_v) {
      const vf32 vv = vload(v + e);
      vbad |= not_finite(vv);
      sd = k.sigma * sqrt_(vv);
    }
    if (need_x0) x0 = step_x0(k, xv, mv, clip);
    vstore(out + e, step_out(k, xv, mv, hv, x0, sd, zv, fl));
    if (x0o) vstore(x0o + e, x0);
    if (zo) vstore(zo + e, zv);
  }
  return span_flags(vbad, vbadx, vbadz);
}

// Branch-free vector body for the sampler steps (model output, no history,
// per-sample sigma): x0 written (kX0) and clipped (kClip), noise (kZ).
template <bool kX0, bool kClip, bool kZ>
inline i64 step_span_fast(const SampleView<float>& s, i64 i, i64 len, const float* zs) {
  constexpr int W = simd::kWidth;
  const StepCoefs<vf32> k = s.kv;
  const float* __restrict__ x = s.x + i;
  const float* __restrict__ m = s.m + i;
  float* __restrict__ out = s.out + i;
  float* __restrict__ x0o = kX0 ? s.x0_out + i : nullptr;
  vi32 vbad = vi32{}, vbadx = vi32{}, vbadz = vi32{};
  for (i64 e = 0; e < len; e += W) {
    const vf32 xv = vload(x + e), mv = vload(m + e);
    vbad |= not_finite(mv);
    vbadx |= not_finite(xv);
    vf32 y = k.ax * xv + k.am * mv;
    if (kX0) {
      const vf32 x0 = step_x0(k, xv, mv, kClip);
      if (kClip) y = y + k.c0 * x0;
      vstore(x0o + e, x0);
    }
    if (kZ) {
      const vf32 zv = vload(zs + e);
      vbadz |= not_finite(zv);
      y = y + k.sigma * zv;
    }
    vstore(out + e, y);
  }
  return span_flags(vbad, vbadx, vbadz);
}
#endif

// Elements [i, i + len) of the sample with noise zs[0 .. len) (or none).
template <class T>
inline i64 step_span(const SampleView<T>& s, const StepFlags& f, i64 i, i64 len, const T* zs) {
  i64 k = 0, bad = 0;
#if defined(HB_HAVE_SIMD)
  if constexpr (std::is_same<T, float>::value) {
    if (f.var_mode != kVarLearnedRange) {
      k = len / simd::kWidth * simd::kWidth;
      const bool fast = f.has_m && !f.has_h && f.var_mode == kVarSigma && !s.z_out && f.use_x0 == f.clip &&
                        (!f.clip || f.want_x0) && (zs != nullptr) == f.has_noise;
      if (k && fast) {
        const int sel = (f.want_x0 ? 4 : 0) | (f.clip ? 2 : 0) | (zs ? 1 : 0);
        switch (sel) {
          case 0: bad |= step_span_fast<false, false, false>(s, i, k, zs); break;
          case 1: bad |= step_span_fast<false, false, true>(s, i, k, zs); break;
          case 4: bad |= step_span_fast<true, false, false>(s, i, k, zs); break;
          case 5: bad |= step_span_fast<true, false, true>(s, i, k, zs); break;
          case 6: bad |= step_span_fast<true, true, false>(s, i, k, zs); break;
          default: bad |= step_span_fast<true, true, true>(s, i, k, zs); break;
        }
      } else if (k) {
        bad |= step_span_vec(s, f, i, k, zs);
      }
    }
  }
#endif
  for (; k < len; ++k) bad |= step_one(s, f, i + k, zs ? zs[k] : T(0));
  return bad;
}

// Local elements [i0, i1) of sample b.
template <class T>
i64 step_sample(const StepArgs<T>& a, i64 b, i64 i0, i64 i1) {
  const SampleView<T> s = sample_view(a, b);
  const StepFlags& f = a.flags;
  if (!(f.has_noise && !a.z)) return step_span(s, f, i0, i1 - i0, f.has_noise ? s.z + i0 : nullptr);
  i64 bad = 0;
  // Stream index of local element 0; whole tiles by the vector loop, the
  // partial tiles at both ends one element at a time. (One tile at a time:
  // two would interleave more Philox chains but spill registers.)
  const u64 base = a.offset + static_cast<u64>(b) * static_cast<u64>(a.inner);
  constexpr u64 kV = TileOf<T>::kValues;
  alignas(64) T zb[kV];
  u64 j = base + static_cast<u64>(i0);
  const u64 j_end = base + static_cast<u64>(i1);
  const u64 first_full = (j + kV - 1) / kV * kV;
  auto one = [&](u64 jj) {
    bad |= step_one(s, f, static_cast<i64>(jj - base), normal_at(a.seed, a.stream, jj, T(0)));
  };
  for (; j < j_end && j < first_full; ++j) one(j);
  for (; j < j_end && j_end - j >= kV; j += kV) {
    normal_tiles<1>(a.seed, a.stream, j / kV, zb);
    bad |= step_span(s, f, static_cast<i64>(j - base), static_cast<i64>(kV), zb);
  }
  for (; j < j_end; ++j) one(j);
  return bad;
}

// Chunk [begin, end) of the flat elements; returns the flags of its elements.
template <class T>
i64 step_chunk(const StepArgs<T>& a, i64 begin, i64 end) {
  i64 bad = 0;
  for (i64 b = begin / a.inner; b * a.inner < end; ++b) {
    const i64 s0 = b * a.inner;
    const i64 i0 = begin > s0 ? begin - s0 : 0;
    const i64 i1 = end - s0 < a.inner ? end - s0 : a.inner;
    bad |= step_sample(a, b, i0, i1);
  }
  return bad;
}

template <class T>
i64 k_step(const StepArgs<T>& a) {
  if (a.n_samples <= 0 || a.inner <= 0) return 0;
  const i64 n = a.n_samples * a.inner;
  i64 bad_total = 0;
#if defined(_OPENMP)
  if (n >= kParallelMin && omp_get_max_threads() > 1) {
#pragma omp parallel reduction(| : bad_total)
    {
      const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
      // Chunks on whole tiles of the flat index, so fewer edges fall mid-tile.
      const i64 quantum = static_cast<i64>(TileOf<T>::kValues);
      const i64 chunk = ((n + nt - 1) / nt + quantum - 1) / quantum * quantum;
      const i64 begin = t * chunk;
      const i64 end = begin + chunk < n ? begin + chunk : n;
      if (begin < end) bad_total |= step_chunk(a, begin, end);
    }
    return bad_total;
  }
#endif
  return step_chunk(a, 0, n);
}

}  // namespace

const cpu::DiffusionTable kDiffusionTable = {k_step<float>, k_step<double>};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(DiffusionTable, diffusion_table, kDiffusionTable)
