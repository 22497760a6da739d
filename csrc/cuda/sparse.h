// C++ API of the CUDA sparse-graph Gibbs kernels: device pointers, sizes and
// a cudaStream_t passed as void*; layouts as in csrc/cpu/sparse.h. K = 0
// selects +/-1 spins (one bit per chain), K >= 2 Potts nodes (uint8). Each
// returns nullptr on success or the CUDA error string.
#pragma once
#include <cstdint>

namespace heatbath {
namespace cuda {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

// block_ptr is a host array [nblocks + 1]; order, row, col, w, bias, beta
// are device arrays. chain0 (a multiple of 256): the global index of chain 0.
// beta_uniform: the one inverse temperature of every chain (then beta is not
// read), or NaN to read beta per chain.
const char* sparse_sweeps(void* s, i64 chains, int K, i64 n, const i64* row, const std::int32_t* col,
                          const float* w, const float* bias, const float* beta, float beta_uniform,
                          const std::int32_t* order, const i64* block_ptr, i64 nblocks, u64 seed, u64 chain0,
                          u64 sweep0, i64 nsweeps, void* stream);
// energy, mag: [chains] (written; mag only for spins); m1, m2 accumulated as
// in csrc/cpu/sparse.h.
const char* sparse_observe(const void* s, i64 chains, int K, i64 n, const i64* row, const std::int32_t* col,
                           const float* w, const float* bias, double* energy, double* mag,
                           const std::int32_t* nodes, i64 nnodes, double* m1, const std::int32_t* pairs,
                           i64 npairs, double* m2, void* stream);

}  // namespace cuda
}  // namespace heatbath
