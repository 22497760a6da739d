// C++ API of the CPU kernels of DTM training and sampling (the formulas are
// in csrc/heatbath/dtm.h). Knows nothing of Python. Spin states are packed as
// in csrc/cpu/sparse.h: uint32 words [rows, W], W = ceil(chains / 32), bit
// c % 32 of word c / 32 is chain c, 1 = up.
#pragma once
#include <cstdint>

#include "dispatch.h"
#include "heatbath/dtm_args.h"

namespace heatbath {
namespace cpu {

struct DtmTable {
  // bits: [chains, rows] uint8 (nonzero = up) -> out: [rows, W] packed (padding bits 0).
  void (*pack_rows)(const std::uint8_t* bits, i64 chains, i64 rows, u32* out);
  // words: [rows, W] -> out: [chains, rows] uint8 0/1.
  void (*unpack_rows)(const u32* words, i64 rows, i64 chains, std::uint8_t* out);
  // s: [*, W]; up[k] += #chains with s_{nodes[k]} up (k < n_nodes);
  // agree[e] += #chains with s_{edge_i[e]} == s_{edge_j[e]} (e < n_edges).
  void (*count_moments)(const u32* s, i64 chains, const std::int32_t* nodes, i64 n_nodes, i64* up,
                        const std::int32_t* edge_i, const std::int32_t* edge_j, i64 n_edges, i64* agree);
  void (*adam_step)(const DtmAdamArgs& a);  // csrc/heatbath/dtm_args.h
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(DtmTable, dtm_table)
