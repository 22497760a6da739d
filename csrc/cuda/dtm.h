// C++ API of the CUDA DTM kernels: device pointers, sizes and a cudaStream_t
// passed as void*; layouts and meaning as in csrc/cpu/dtm.h (the same
// formulas, csrc/heatbath/dtm.h, so CPU and GPU agree to the bit). Each
// returns nullptr on success or the CUDA error string. The argument struct
// is that of csrc/heatbath/dtm_args.h, with device pointers.
#pragma once
#include <cstdint>

#include "heatbath/dtm_args.h"

namespace heatbath {
namespace cuda {

using i64 = std::int64_t;
using u32 = std::uint32_t;

// bits: [chains, rows] uint8 -> out: [rows, W] packed (padding bits 0).
const char* dtm_pack_rows(const std::uint8_t* bits, i64 chains, i64 rows, u32* out, void* stream);
// words: [rows, W] -> out: [chains, rows] uint8 0/1.
const char* dtm_unpack_rows(const u32* words, i64 rows, i64 chains, std::uint8_t* out, void* stream);
// up[k] += #chains with s_{nodes[k]} up; agree[e] += #chains with
// s_{edge_i[e]} == s_{edge_j[e]}. One warp per node or pair: no atomics, so
// successive calls on one stream accumulate deterministically.
const char* dtm_count_moments(const u32* s, i64 chains, const std::int32_t* nodes, i64 n_nodes, i64* up,
                              const std::int32_t* edge_i, const std::int32_t* edge_j, i64 n_edges, i64* agree,
                              void* stream);
const char* dtm_adam_step(const DtmAdamArgs& a, void* stream);

}  // namespace cuda
}  // namespace heatbath
