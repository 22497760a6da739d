// CUDA loops over the sparse-graph updates of csrc/heatbath/sparse.h: one
// launch per colour block, threads over (node, chains); the same formulas and
// counter layout as the CPU loops, so the states agree to the bit.
#include <cuda_runtime.h>

#include <cstdlib>

#include "launch.cuh"

#include "heatbath/sparse.h"
#include "sparse.h"

namespace heatbath {
namespace cuda {
namespace {

inline unsigned grid_wide(i64 n) { return grid_for(static_cast<u64>(n), 65535u * 64u); }

// ---- shared pieces ----------------------------------------------------------

// exp_f32 of csrc/heatbath/sparse.h, bit for bit: the table 2^(j/16) from
// shared memory (lanes index it freely, without the serialisation of a
// divergent constant-memory read) and rint / truncation by adding and
// subtracting 1.5 2^23 (exact rounding to nearest even for |x 16/ln2| < 2^22,
// and the integer is in the low bits of the sum), so no conversion
// instructions.
// A float from shared memory at a 32-bit shared-window address (so that a
// table's base and an index can be combined by one OR where the base is
// aligned past the index bits).
__device__ __forceinline__ float lds_f32(u32 addr) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ u32 smem_addr(const void* p) { return static_cast<u32>(__cvta_generic_to_shared(p)); }

// The result 2^n t (1 + q) is formed by adding n to the exponent field of
// t (1 + q) (exact: exp_f32 keeps its results normal, in [1e-38, 3e38]), and
// the table entry is read at byte offset (k mod 16) * 4 of `tab`.
__device__ __forceinline__ float exp_dev(float x, u32 tab) {
  x = min_c(x, 88.37f);
  x = max_c(x, -87.3f);
  const float big = x * 0x1.715476p+4f + 12582912.0f;
  const float kf = big - 12582912.0f;
  const std::int32_t k = static_cast<std::int32_t>(__float_as_uint(big)) - 0x4B400000;
  float r = __fmaf_rn(kf, -0x1.63p-5f, x);
  r = __fmaf_rn(kf, 0x1.bd0106p-17f, r);
  const float s = __fmaf_rn(0x1.555556p-3f, r, 0.5f);
  const float q = __fmaf_rn(s, r * r, r);
  const float t = lds_f32((static_cast<u32>(k) << 2 & 0x3Cu) | tab);  // tab: 64-byte aligned
  const u32 y = __float_as_uint(__fmaf_rn(t, q, t));
  return __uint_as_float(y + (static_cast<u32>(k << 19) & 0xFF800000u));
}

__device__ __forceinline__ u32 load_exp_table(float* tab) {
  if (threadIdx.x < 16) tab[threadIdx.x] = __uint_as_float(kExp2SixteenthsDevice[threadIdx.x]);
  __syncthreads();
  return smem_addr(tab);
}

// ---- Potts ------------------------------------------------------------------

// potts_draw of csrc/heatbath/sparse.h for a compile-time K, weights in
// registers (the same operations in the same order).
template <int KS>
__device__ __forceinline__ int potts_draw_k(const float (&a)[KS], float beta, u32 w, u32 tab) {
  float m = beta * a[0];
#pragma unroll
  for (int k = 1; k < KS; ++k) m = beta * a[k] > m ? beta * a[k] : m;
  float e[KS], total = 0.0f;
#pragma unroll
  for (int k = 0; k < KS; ++k) {
    e[k] = exp_dev(beta * a[k] - m, tab);
    total = total + e[k];
  }
  const float target = unit_f32(w) * total;
  float cum = 0.0f;
  int out = KS - 1;
  bool done = false;
#pragma unroll
  for (int k = 0; k < KS - 1; ++k) {
    cum = cum + e[k];
    if (!done && target < cum) {
      out = k;
      done = true;
    }
  }
  return out;
}

// K = KS <= 8: a thread owns one Philox block of one node, chains t*128 +
// l*32 + lane (l = 0..3) of tile t (a warp reads and writes 32 consecutive
// chains at a time, each word drawn used once); blockIdx.y walks the nodes.
// The weights of the K states live in registers: a[v] += w where s_j == v.
template <int KS>
__global__ void __launch_bounds__(kThreads) k_potts_k(std::uint8_t* __restrict__ s, i64 C, const i64* __restrict__ row,
                                                      const std::int32_t* __restrict__ col, const float* __restrict__ w,
                                                      const float* __restrict__ bias, const float* __restrict__ beta,
                                                      float beta_u, const std::int32_t* __restrict__ order, i64 lo,
                                                      i64 nq, u64 seed, u64 sweep, u64 chain0) {
  __shared__ __align__(64) float s_exp[16];
  const u32 tab = load_exp_table(s_exp);
  const i64 ntiles = (C + 127) / 128;
  const i64 tid = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  const i64 t = tid >> 5;
  const int lane = threadIdx.x & 31;
  if (t >= ntiles) return;
  for (i64 q = blockIdx.y; q < nq; q += gridDim.y) {
    const i64 i = order[lo + q];
    const Words4 r = philox_block(seed, sparse_stream(sweep, static_cast<u64>(i)),
                                  (chain0 / 128 + static_cast<u64>(t)) * 32 + static_cast<u64>(lane));
    const i64 k0 = row[i], k1 = row[i + 1];
    float a[4][KS];
#pragma unroll
    for (int v = 0; v < KS; ++v) {
      const float b = bias[i * KS + v];
#pragma unroll
      for (int l = 0; l < 4; ++l) a[l][v] = b;
    }
    const i64 c0 = t * 128 + lane;
    for (i64 k = k0; k < k1; ++k) {
      const std::uint8_t* sj = s + static_cast<i64>(col[k]) * C + c0;
      const float wk = w[k];
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        if (c0 + l * 32 < C) {
          const int v0 = sj[l * 32];
#pragma unroll
          for (int v = 0; v < KS; ++v)
            if (v0 == v) a[l][v] = a[l][v] + wk;
        }
      }
    }
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const i64 c = c0 + l * 32;
      if (c < C) {
        const float b = beta ? beta[c] : beta_u;
        s[i * C + c] = static_cast<std::uint8_t>(potts_draw_k<KS>(a[l], b, r.w[l], tab));
      }
    }
  }
}

// Any K (up to kPottsMaxStates): the same thread layout, weights in local
// memory.
__global__ void k_potts(std::uint8_t* __restrict__ s, i64 C, int K, const i64* __restrict__ row,
                        const std::int32_t* __restrict__ col, const float* __restrict__ w,
                        const float* __restrict__ bias, const float* __restrict__ beta, float beta_u,
                        const std::int32_t* __restrict__ order, i64 lo, i64 nq, u64 seed, u64 sweep, u64 chain0) {
  const i64 ntiles = (C + 127) / 128;
  const i64 tid = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  const i64 t = tid >> 5;
  const int lane = threadIdx.x & 31;
  if (t >= ntiles) return;
  for (i64 q = blockIdx.y; q < nq; q += gridDim.y) {
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
      s[i * C + c] = static_cast<std::uint8_t>(potts_draw(a, K, beta ? beta[c] : beta_u, r.w[l]));
    }
  }
}

// ---- spins ------------------------------------------------------------------
//
// A warp owns 32 consecutive state words (1,024 chains) of one node; lane L
// owns word chunk * 32 + L, i.e. its 32 chains, and reads each neighbour's
// word once (coalesced across the warp). The field of chain p is the sum of
// the node's field tables (csrc/heatbath/sparse.h: one 16-entry table per
// group of 4 neighbours, built by the warp in shared memory) indexed by the
// 4 neighbour bits of p: a 4 x 32 bit-matrix transpose of the group's 4 words
// (four delta swaps) puts them in nibble p / 4 of word p % 4. The random bytes
// follow the CPU's counter layout: chains 256 g .. 256 g + 255 use the 16
// Philox blocks 16 g + j, so the 8 lanes of one group of 8 words compute two
// blocks each and share them through shared memory (lane r takes the 16-bit
// half r % 2 of word r / 2 of every block: its 32 bytes). Per update: 3 table
// reads and adds (degree 12), the exp of sparse.h, the byte decision, and a
// sixteenth of two Philox blocks.
constexpr int kSpinWarps = 8;
constexpr int kGroupsPerPass = 8;  // field tables held at once (32 neighbours)
constexpr int kRndStride = 68;     // words per 8-lane group (64 + 4: no bank conflicts)

__device__ __forceinline__ void delta_swap(u32& a, u32& b, int shift, u32 mask) {
  const u32 t = ((a >> shift) ^ b) & mask;
  b ^= t;
  a ^= t << shift;
}

template <bool kUniformBeta, int kMinBlocks>
__global__ void __launch_bounds__(kSpinWarps * 32, kMinBlocks) k_spins(u32* __restrict__ s, i64 C, const i64* __restrict__ row,
                                                           const std::int32_t* __restrict__ col,
                                                           const float* __restrict__ w,
                                                           const float* __restrict__ bias,
                                                           const float* __restrict__ beta, float beta_u,
                                                           const std::int32_t* __restrict__ order, i64 lo, i64 nq,
                                                           u64 seed, u64 sweep, u64 chain0) {
  __shared__ __align__(64) float s_exp[16];
  __shared__ __align__(64) float s_tab[kSpinWarps][kGroupsPerPass * 16];
  __shared__ u32 s_rnd[kSpinWarps][4 * kRndStride];
  __shared__ float s_beta[kUniformBeta ? 1 : kSpinWarps][kUniformBeta ? 1 : 32 * 33];
  const u32 etab = load_exp_table(s_exp);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const i64 W = (C + 31) / 32;
  const i64 wd = static_cast<i64>(blockIdx.y) * 32 + lane;
  const bool live = wd < W;
  const u32 last_mask = (wd == W - 1 && (C & 31)) ? (1u << (C & 31)) - 1u : 0xFFFFFFFFu;
  float* tab = s_tab[warp];
  const float beta2_u = beta_u + beta_u;
  if (!kUniformBeta) {
    // beta + beta of chain p of lane L at [L * 33 + p] (conflict-free reads)
    for (int it = 0; it < 32; ++it) {
      const i64 c = static_cast<i64>(blockIdx.y) * 1024 + it * 32 + lane;
      const float b = c < C ? beta[c] : 0.0f;
      s_beta[warp][it * 33 + lane] = b + b;
    }
    __syncwarp();
  }
  const u32 r8 = lane & 7;
  const u64 g256 = chain0 / 256 + static_cast<u64>(wd >> 3);
  u32* rnd = s_rnd[warp] + (lane >> 3) * kRndStride;

  for (i64 q = static_cast<i64>(blockIdx.x) * kSpinWarps + warp; q < nq; q += static_cast<i64>(gridDim.x) * kSpinWarps) {
    const i64 i = order[lo + q];
    const u64 stream = sparse_stream(sweep, static_cast<u64>(i));
    const i64 k0 = row[i], deg = row[i + 1] - k0;
    __syncwarp();  // the previous node's tables and random words are read
    {
      const Words4 ra = philox_block(seed, stream, g256 * 16 + 2 * r8);
      const Words4 rb = philox_block(seed, stream, g256 * 16 + 2 * r8 + 1);
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        rnd[(2 * r8) * 4 + l] = ra.w[l];
        rnd[(2 * r8 + 1) * 4 + l] = rb.w[l];
      }
    }
    float f0 = bias[i];
    for (i64 k = 0; k < deg; ++k) f0 = f0 - w[k0 + k];
    float f[32];
#pragma unroll
    for (int p = 0; p < 32; ++p) f[p] = f0;
    const i64 ngroups = (deg + 3) / 4;
    for (i64 gp = 0; gp < ngroups; gp += kGroupsPerPass) {
      const int ng = static_cast<int>(ngroups - gp < kGroupsPerPass ? ngroups - gp : kGroupsPerPass);
      __syncwarp();
      for (int e = lane; e < ng * 16; e += 32) {
        const i64 kb = k0 + 4 * (gp + e / 16);
        const int n = static_cast<int>(k0 + deg - kb < 4 ? k0 + deg - kb : 4);
        tab[e] = spin_group_sum(w + kb, n, static_cast<u32>(e & 15));
      }
      __syncwarp();
      for (int gg = 0; gg < ng; ++gg) {
        const i64 kb = k0 + 4 * (gp + gg);
        const int n = static_cast<int>(k0 + deg - kb < 4 ? k0 + deg - kb : 4);
        u32 R[4] = {0u, 0u, 0u, 0u};
        if (live) {
#pragma unroll
          for (int kk = 0; kk < 4; ++kk)
            if (kk < n) R[kk] = s[static_cast<i64>(col[kb + kk]) * W + wd];
        }
        delta_swap(R[0], R[2], 2, 0x33333333u);
        delta_swap(R[1], R[3], 2, 0x33333333u);
        delta_swap(R[0], R[1], 1, 0x55555555u);
        delta_swap(R[2], R[3], 1, 0x55555555u);
        const u32 tg = smem_addr(tab + gg * 16);  // 64-byte aligned: byte offsets 0..60 are ORed in
#pragma unroll
        for (int p = 0; p < 32; ++p) {
          const int sh = 4 * (p >> 2) - 2;  // nibble p / 4 of word p % 4, times 4
          const u32 off = (sh < 0 ? R[p & 3] << 2 : R[p & 3] >> sh) & 0x3Cu;
          f[p] = f[p] + lds_f32(off | tg);
        }
      }
    }
    __syncwarp();  // every lane's random words are in shared memory
    // the byte decision of spin_decide; a tie (probability 1/256) is
    // settled after the loop, so that its Philox call is not unrolled 32 times
    u32 res = 0, tie = 0;
    float dtie[32];
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const u32 hw = rnd[j * 4 + (r8 >> 1)];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int p = j + 16 * h;
        // byte 2 (r8 % 2) + h of hw under the pattern of 2^23: the byte as a float, plus 2^23
        const float big = __uint_as_float(__byte_perm(hw, 0x4B000000u, (2 * (r8 & 1) + h) | 0x7540u));
        const float bf = big - 8388608.0f, bf1 = big - 8388607.0f;
        const float b2 = kUniformBeta ? beta2_u : s_beta[warp][lane * 33 + p];
        const float d = exp_dev(-(b2 * f[p]), etab) + 1.0f;
        const bool up = __fmaf_rn(bf1, d, -256.0f) <= 0.0f;
        const bool down = __fmaf_rn(bf, d, -256.0f) >= 0.0f;
        res |= static_cast<u32>(up) << p;
        if (!up && !down) {
          tie |= 1u << p;
          dtie[p] = d;
        }
      }
    }
    while (tie) {
      const int p = __ffs(tie) - 1;
      tie &= tie - 1;
      const u32 byte = __byte_perm(rnd[(p & 15) * 4 + (r8 >> 1)], 0u, (2 * (r8 & 1) + (p >> 4)) | 0x4440u);
      if (spin_tie_up(static_cast<std::int32_t>(byte),
                      spin_tie_bits(seed, stream, chain0 + static_cast<u64>(wd * 32 + p)), dtie[p]))
        res |= 1u << p;
    }
    if (live) s[i * W + wd] = res & last_mask;
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
                          const float* w, const float* bias, const float* beta, float beta_uniform,
                          const std::int32_t* order, const i64* block_ptr, i64 nblocks, u64 seed, u64 chain0,
                          u64 sweep0, i64 nsweeps, void* stream) {
  (void)n;
  if (chains <= 0 || nsweeps <= 0) return nullptr;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const bool uniform = beta_uniform == beta_uniform;  // not NaN: one beta for all chains
  const float* bp = uniform ? nullptr : beta;
  const i64 ntiles = (chains + 127) / 128;
  const i64 W = (chains + 31) / 32, chunks = (W + 31) / 32;
  for (i64 t = 0; t < nsweeps; ++t) {
    const u64 sweep = sweep0 + static_cast<u64>(t);
    for (i64 b = 0; b < nblocks; ++b) {
      const i64 lo = block_ptr[b], nq = block_ptr[b + 1] - lo;
      if (nq <= 0) continue;
      if (K >= 2) {
        const dim3 grid(static_cast<unsigned>((ntiles * 32 + kThreads - 1) / kThreads),
                        static_cast<unsigned>(nq < 65535 ? nq : 65535));
#define HB_POTTS(KS) \
  case KS:           \
    k_potts_k<KS><<<grid, kThreads, 0, st>>>(static_cast<std::uint8_t*>(s), chains, row, col, w, bias, bp, \
                                             beta_uniform, order, lo, nq, seed, sweep, chain0);           \
    break;
        switch (K) {
          HB_POTTS(2)
          HB_POTTS(3)
          HB_POTTS(4)
          HB_POTTS(5)
          HB_POTTS(6)
          HB_POTTS(7)
          HB_POTTS(8)
          default:
            k_potts<<<grid, kThreads, 0, st>>>(static_cast<std::uint8_t*>(s), chains, K, row, col, w, bias, bp,
                                               beta_uniform, order, lo, nq, seed, sweep, chain0);
        }
#undef HB_POTTS
      } else {
        // enough warps to fill the device; each walks several nodes of its chunk
        const i64 per_chunk = (nq + kSpinWarps - 1) / kSpinWarps;
        const i64 want = (8192 + chunks - 1) / chunks;
        if (chunks > 65535) return "too many chains for one launch (at most 67,107,840)";
        const dim3 grid(static_cast<unsigned>(per_chunk < want ? per_chunk : want), static_cast<unsigned>(chunks));
        static const int variant = [] {
          const char* v = std::getenv("HEATBATH_SPIN_BLOCKS");
          return v ? std::atoi(v) : 3;
        }();
#define HB_SPINS(U, B)                                                                                     \
  k_spins<U, B><<<grid, kSpinWarps * 32, 0, st>>>(static_cast<u32*>(s), chains, row, col, w, bias, bp, \
                                                  beta_uniform, order, lo, nq, seed, sweep, chain0)
        if (!uniform)
          HB_SPINS(false, 3);
        else if (variant == 2)
          HB_SPINS(true, 2);
        else if (variant == 4)
          HB_SPINS(true, 4);
        else
          HB_SPINS(true, 3);
#undef HB_SPINS
      }
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
