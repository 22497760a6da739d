// C++ API of the CPU kernels of DTM training and sampling (the formulas are
// in csrc/heatbath/dtm.h). Knows nothing of Python. Spin states are packed as
// in csrc/cpu/sparse.h: uint32 words [rows, W], W = ceil(chains / 32), bit
// c % 32 of word c / 32 is chain c, 1 = up.
#pragma once
#include <cstdint>

#include "dispatch.h"
#include "heatbath/dtm.h"

namespace heatbath {
namespace cpu {

// One Adam step of a DTM step's parameters from the moment counts of its two
// phases (csrc/heatbath/dtm.h), and the new values written, as float32, into
// the Gibbs engine's CSR weights and biases.
struct DtmAdamArgs {
  i64 n_edges, n_nodes;
  const std::int32_t* edge_i;     // [n_edges] the two nodes of each coupling
  const std::int32_t* edge_j;     // [n_edges]
  const i64* pos_up;              // [n_nodes] positive phase: up counts
  const i64* pos_agree;           // [n_edges] positive phase: agreement counts
  i64 pos_n;                      // positive phase: values per count (records x chains)
  const i64* neg_up;              // [n_nodes] negative phase
  const i64* neg_agree;           // [n_edges]
  i64 neg_n;
  double* w;                      // [n_edges] couplings, updated
  double* mw;                     // [n_edges] Adam moments of the couplings, updated
  double* vw;
  double* b;                      // [n_nodes] biases, updated
  double* mb;                     // [n_nodes]
  double* vb;
  double weight_decay, cp;
  AdamCoefficients adam;
  float* engine_w;                // the engine's CSR weights: edge e at engine_pos[2 e] and [2 e + 1]
  const i64* engine_pos;          // [2 n_edges]
  float* engine_bias;             // [n_nodes] (the engine's first n_nodes biases)
};

struct DtmTable {
  // bits: [chains, rows] uint8 (nonzero = up) -> out: [rows, W] packed (padding bits 0).
  void (*pack_rows)(const std::uint8_t* bits, i64 chains, i64 rows, u32* out);
  // words: [rows, W] -> out: [chains, rows] uint8 0/1.
  void (*unpack_rows)(const u32* words, i64 rows, i64 chains, std::uint8_t* out);
  // s: [*, W]; up[k] += #chains with s_{nodes[k]} up (k < n_nodes);
  // agree[e] += #chains with s_{edge_i[e]} == s_{edge_j[e]} (e < n_edges).
  void (*count_moments)(const u32* s, i64 chains, const std::int32_t* nodes, i64 n_nodes, i64* up,
                        const std::int32_t* edge_i, const std::int32_t* edge_j, i64 n_edges, i64* agree);
  void (*adam_step)(const DtmAdamArgs& a);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(DtmTable, dtm_table)
