// CPU loops of the DTM kernels (csrc/cpu/dtm.h) over the formulas of
// csrc/heatbath/dtm.h. Compiled once per instruction-set level; integer
// counts and one float64 formula per element, so every level gives the same
// results.
#include <cstdint>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "dtm.h"
#include "heatbath/dtm.h"

namespace heatbath {
inline namespace HB_ISA {
namespace {

// Word operations per OpenMP thread, at least (small calls stay on the
// calling thread).
constexpr i64 kPerThread = i64(1) << 20;

int threads_for(i64 work) {
#if defined(_OPENMP)
  const i64 want = work / kPerThread, most = omp_get_max_threads();
  return static_cast<int>(want < 1 ? 1 : (want < most ? want : most));
#else
  (void)work;
  return 1;
#endif
}

void k_pack_rows(const std::uint8_t* bits, i64 chains, i64 rows, u32* out) {
  const i64 W = (chains + 31) / 32;
  if (rows <= 0 || W == 0) return;
  const int nt = threads_for(rows * W * 8);
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
  {
    std::vector<u32> acc(static_cast<size_t>(rows));
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
    for (i64 k = 0; k < W; ++k) {
      for (i64 r = 0; r < rows; ++r) acc[r] = 0;
      const i64 c0 = 32 * k, n = chains - c0 < 32 ? chains - c0 : 32;
      for (i64 l = 0; l < n; ++l) {
        const std::uint8_t* b = bits + (c0 + l) * rows;
        for (i64 r = 0; r < rows; ++r) acc[r] |= static_cast<u32>(b[r] != 0) << l;
      }
      for (i64 r = 0; r < rows; ++r) out[r * W + k] = acc[r];
    }
  }
  (void)nt;
}

void k_unpack_rows(const u32* words, i64 rows, i64 chains, std::uint8_t* out) {
  const i64 W = (chains + 31) / 32;
  if (rows <= 0 || W == 0) return;
  const int nt = threads_for(rows * W * 8);
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
  {
    std::vector<u32> col(static_cast<size_t>(rows));
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
    for (i64 k = 0; k < W; ++k) {
      for (i64 r = 0; r < rows; ++r) col[r] = words[r * W + k];
      const i64 c0 = 32 * k, n = chains - c0 < 32 ? chains - c0 : 32;
      for (i64 l = 0; l < n; ++l) {
        std::uint8_t* o = out + (c0 + l) * rows;
        for (i64 r = 0; r < rows; ++r) o[r] = static_cast<std::uint8_t>((col[r] >> l) & 1u);
      }
    }
  }
  (void)nt;
}

void k_count_moments(const u32* s, i64 chains, const std::int32_t* nodes, i64 n_nodes, i64* up,
                     const std::int32_t* edge_i, const std::int32_t* edge_j, i64 n_edges, i64* agree) {
  const i64 W = (chains + 31) / 32;
  if (W == 0) return;
  const u32 tail = chain_mask(W - 1, chains);
  const i64 items = n_nodes + n_edges;
  const int nt = threads_for(items * W);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
#endif
  for (i64 q = 0; q < items; ++q) {
    i64 count = 0;
    if (q < n_nodes) {
      const u32* a = s + static_cast<i64>(nodes[q]) * W;
      for (i64 k = 0; k + 1 < W; ++k) count += popc_u32(a[k]);
      count += popc_u32(a[W - 1] & tail);
      up[q] += count;
    } else {
      const i64 e = q - n_nodes;
      const u32* a = s + static_cast<i64>(edge_i[e]) * W;
      const u32* b = s + static_cast<i64>(edge_j[e]) * W;
      for (i64 k = 0; k + 1 < W; ++k) count += popc_u32(~(a[k] ^ b[k]));
      count += popc_u32(~(a[W - 1] ^ b[W - 1]) & tail);
      agree[e] += count;
    }
  }
  (void)nt;
}

void k_adam_step(const DtmAdamArgs& a) {
  for (i64 e = 0; e < a.n_edges; ++e) {
    const std::int32_t i = a.edge_i[e], j = a.edge_j[e];
    const double g = coupling_gradient(spin_mean(a.pos_agree[e], a.pos_n), spin_mean(a.neg_agree[e], a.neg_n),
                                       spin_mean(a.neg_up[i], a.neg_n), spin_mean(a.neg_up[j], a.neg_n), a.w[e],
                                       a.weight_decay, a.cp);
    adam_ascent(a.w[e], a.mw[e], a.vw[e], g, a.adam);
    const float w32 = static_cast<float>(a.w[e]);
    a.engine_w[a.engine_pos[2 * e]] = w32;
    a.engine_w[a.engine_pos[2 * e + 1]] = w32;
  }
  for (i64 k = 0; k < a.n_nodes; ++k) {
    const double g = spin_mean(a.pos_up[k], a.pos_n) - spin_mean(a.neg_up[k], a.neg_n);
    adam_ascent(a.b[k], a.mb[k], a.vb[k], g, a.adam);
    a.engine_bias[k] = static_cast<float>(a.b[k]);
  }
}

}  // namespace

// Order of cpu::DtmTable: pack_rows, unpack_rows, count_moments, adam_step.
const cpu::DtmTable kDtmTable = {k_pack_rows, k_unpack_rows, k_count_moments, k_adam_step};

}  // namespace HB_ISA
}  // namespace heatbath

HB_EXPORT_ISA_TABLE(DtmTable, dtm_table, kDtmTable)
