// C++ API of the CPU sparse-graph Gibbs kernels (spin and Potts nodes). Knows
// nothing of Python. The graph is CSR (ELL is CSR with a fixed stride and
// zero-weight padding); the coupling matrix must be symmetric. States are
// laid out by node, the chains of a node contiguous: spins one bit per chain,
// uint32 words [n_nodes, ceil(chains / 32)] (bit c % 32 of word c / 32 is
// chain c, 1 = up); Potts nodes uint8 [n_nodes, chains] in 0..K-1.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace heatbath {
namespace cpu {

struct SparseGraph {
  const i64* row;            // [n + 1]
  const std::int32_t* col;   // [nnz]
  const float* w;            // [nnz]
  i64 n;
};

// Update schedule: nodes order[block_ptr[b] .. block_ptr[b + 1]) form block b
// (an independent set; clamped nodes are left out). One sweep updates the
// blocks in order; sweep t uses Philox streams (sweep0 + t) * 2^32 + node.
// Chain c of a state array is chain chain0 + c of the run (chain0 a multiple
// of 256) for every random number: a run split into shards of chains gives
// the same states as the whole.
struct SparseSchedule {
  const std::int32_t* order;
  const i64* block_ptr;
  i64 nblocks;
};

struct SparseTable {
  // s: [n, ceil(chains / 32)] packed spins; bias: [n]; beta: [chains].
  void (*ising_sweeps)(std::uint32_t* s, i64 chains, const SparseGraph& g, const float* bias, const float* beta,
                       const SparseSchedule& sch, u64 seed, u64 chain0, u64 sweep0, i64 nsweeps);
  // s: [n, chains] uint8 in [0, K); bias: [n, K]; beta: [chains].
  void (*potts_sweeps)(std::uint8_t* s, i64 chains, int K, const SparseGraph& g, const float* bias,
                       const float* beta, const SparseSchedule& sch, u64 seed, u64 chain0, u64 sweep0,
                       i64 nsweeps);
  // Per chain: energy[c] = -1/2 sum_ij J_ij s_i s_j - sum_i b_i s_i and
  // mag[c] = mean_i s_i (written). Accumulated (added) over chains: m1[k] +=
  // sum_c s_{nodes[k]}, m2[k] += sum_c s_{pairs[2k]} s_{pairs[2k+1]}.
  // The energies read the upper triangle of the (symmetric) couplings only;
  // float64 sums whose order is the same for every chain at every level.
  void (*ising_observe)(const std::uint32_t* s, i64 chains, const SparseGraph& g, const float* bias, double* energy,
                        double* mag, const std::int32_t* nodes, i64 nnodes, double* m1, const std::int32_t* pairs,
                        i64 npairs, double* m2);
  // Potts: energy[c] = -1/2 sum_ij J_ij [s_i == s_j] - sum_i b_i[s_i];
  // m1[k, q] += #chains with s_{nodes[k]} == q; m2[k] += #chains with equal
  // states at the pair's ends.
  // The AVX-512 spin update with field tables (VBMI and GFNI): mode 0 turns
  // it off, 1 on where the CPU has them, -1 asks. Returns whether it is on
  // (always false below AVX-512). Results are the same either way.
  bool (*field_tables)(int mode);
  // d[j] = exp_f32(x[j]) + 1, the denominators of the spin update (for
  // tests): path 0 the level's exp_f32, 1 the field-table update's (AVX-512
  // with VBMI and GFNI; else path 0), 2 the same without the clamps of x
  // (valid for |x| <= 87.3 only).
  void (*denominators)(const float* x, float* d, i64 n, int path);
  void (*potts_observe)(const std::uint8_t* s, i64 chains, int K, const SparseGraph& g, const float* bias,
                        double* energy, const std::int32_t* nodes, i64 nnodes, double* m1,
                        const std::int32_t* pairs, i64 npairs, double* m2);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(SparseTable, sparse_table)
