// heatbath._core: Gibbs sweeps on sparse graphs (csrc/cpu/sparse.h). The
// Python layer (heatbath/ebm/sparse.py) validates graphs and colourings once;
// here dtypes, contiguity, sizes and every index the kernels follow, on each
// call. Sweeps run in slices that Ctrl-C can interrupt (slices.h).
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/sparse.h"
#include "heatbath/sparse.h"
#include "registry.h"
#include "slices.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::SparseGraph;
using heatbath::cpu::SparseSchedule;
using heatbath::cpu::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;
using heatbath::bind::progress_ptr;

template <class T>
T* arr(py::array& a, const char* arg, i64 size, bool writeable) {
  // equivalence, not identity: an array that went through pickle (a Dask
  // worker) carries its own dtype object
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                       py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style)) fail_value(arg, "array must be C-contiguous");
  if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
  if (size >= 0 && a.size() != size)
    fail_value(arg, "expected " + std::to_string(size) + " elements, got " + std::to_string(a.size()));
  return static_cast<T*>(a.mutable_data());
}

// Everything the kernels index by is checked here, whatever the Python layer
// did: row offsets monotone within col, neighbours and scheduled nodes in
// [0, n), blocks that are independent sets without repeats (two threads
// never write one node, nor read a node another thread writes), sizes that
// do not overflow. One pass over the graph per call, small next to a sweep.
SparseGraph graph(py::array& row, py::array& col, py::array& w) {
  const i64 n = static_cast<i64>(row.size()) - 1;
  if (n < 0) fail_value("row", "must hold n + 1 offsets");
  if (n >= (i64(1) << 31)) fail_value("row", "at most 2**31 - 1 nodes, got " + std::to_string(n));
  const i64* r = arr<i64>(row, "row", n + 1, false);
  const std::int32_t* c = arr<std::int32_t>(col, "col", -1, false);
  const float* wp = arr<float>(w, "weights", col.size(), false);
  const i64 nnz = static_cast<i64>(col.size());
  if (r[0] < 0) fail_value("row", "offsets must be >= 0, got row[0] = " + std::to_string(r[0]));
  for (i64 i = 0; i < n; ++i)
    if (r[i + 1] < r[i])
      fail_value("row", "offsets must not decrease, got row[" + std::to_string(i + 1) + "] = " +
                            std::to_string(r[i + 1]) + " < row[" + std::to_string(i) + "] = " + std::to_string(r[i]));
  if (r[n] > nnz)
    fail_value("col", "shorter than row[-1]: " + std::to_string(nnz) + " < " + std::to_string(r[n]));
  std::int32_t lo = 0, hi = 0;
  i64 bad_w = 0;
  for (i64 k = r[0]; k < r[n]; ++k) {
    lo = std::min(lo, c[k]);
    hi = std::max(hi, c[k]);
    bad_w += !(wp[k] - wp[k] == 0.0f);
  }
  if (bad_w) fail_value("weights", std::to_string(bad_w) + " couplings are NaN or infinite");
  if (lo < 0 || (r[n] > r[0] && hi >= n))
    fail_value("col", "neighbour indices must lie in [0, " + std::to_string(n) + "), got " +
                          std::to_string(lo < 0 ? lo : hi));
  return SparseGraph{r, c, wp, n};
}

// The schedule: order[block_ptr[b] .. block_ptr[b + 1]) are block b's nodes,
// each in [0, n), at most once in the schedule, no two of a block adjacent
// (zero-weight entries, the padding of ELL rows, do not count).
SparseSchedule schedule(py::array& order, py::array& block_ptr, const SparseGraph& g) {
  const std::int32_t* o = arr<std::int32_t>(order, "order", -1, false);
  const i64* bp = arr<i64>(block_ptr, "block_ptr", -1, false);
  const i64 nb = static_cast<i64>(block_ptr.size()) - 1;
  if (nb < 0 || bp[0] != 0 || bp[nb] != static_cast<i64>(order.size()))
    fail_value("block_ptr", "must start at 0 and end at len(order)");
  for (i64 b = 0; b < nb; ++b)
    if (bp[b + 1] < bp[b]) fail_value("block_ptr", "offsets must not decrease");
  std::vector<i64> block(static_cast<size_t>(g.n), -1);
  for (i64 b = 0; b < nb; ++b)
    for (i64 q = bp[b]; q < bp[b + 1]; ++q) {
      const std::int32_t i = o[q];
      if (i < 0 || i >= g.n)
        fail_value("order", "node indices must lie in [0, " + std::to_string(g.n) + "), got " + std::to_string(i));
      if (block[static_cast<size_t>(i)] >= 0) fail_value("order", "node " + std::to_string(i) + " is scheduled twice");
      block[static_cast<size_t>(i)] = b;
    }
  for (i64 i = 0; i < g.n; ++i) {
    const i64 b = block[static_cast<size_t>(i)];
    if (b < 0) continue;
    for (i64 k = g.row[i]; k < g.row[i + 1]; ++k)
      if (g.w[k] != 0.0f && g.col[k] != i && block[static_cast<size_t>(g.col[k])] == b)
        fail_value("order", "block " + std::to_string(b) + " holds adjacent nodes " + std::to_string(i) + " and " +
                                std::to_string(g.col[k]) + " (blocks must be independent sets)");
  }
  return SparseSchedule{o, bp, nb};
}

// Every value finite (float32 parameters: biases, inverse temperatures).
void check_finite(const float* p, i64 n, const char* arg) {
  i64 bad = 0;
  for (i64 k = 0; k < n; ++k) bad += !(p[k] - p[k] == 0.0f);
  if (bad) fail_value(arg, std::to_string(bad) + " values are NaN or infinite");
}

// chains >= 0 and small enough that n * chains (and the padding) cannot overflow.
void check_chains(i64 chains, i64 n) {
  if (chains < 0) fail_value("chains", "must be >= 0, got " + std::to_string(chains));
  if (chains > (i64(1) << 40) || (n > 0 && chains > ((i64(1) << 62) / n)))
    fail_value("chains", "too many chains for this graph: " + std::to_string(chains));
}

// Potts states index per-state tables: every byte must be below K.
void check_potts_states(const std::uint8_t* s, i64 size, int K, const char* arg) {
  std::uint8_t hi = 0;
  for (i64 j = 0; j < size; ++j) hi = std::max(hi, s[j]);
  if (size > 0 && hi >= K)
    fail_value(arg, "Potts states must lie in [0, " + std::to_string(K) + "), got " + std::to_string(int(hi)));
}

// Node indices (and pairs of them) of the observers.
const std::int32_t* node_list(py::array& a, const char* arg, i64 n) {
  const auto* p = arr<std::int32_t>(a, arg, -1, false);
  for (i64 k = 0; k < static_cast<i64>(a.size()); ++k)
    if (p[k] < 0 || p[k] >= n)
      fail_value(arg, "node indices must lie in [0, " + std::to_string(n) + "), got " + std::to_string(p[k]));
  return p;
}

void check_k(int K) {
  if (K < 2 || K > heatbath::kPottsMaxStates)
    fail_value("K", "must lie in [2, " + std::to_string(heatbath::kPottsMaxStates) + "], got " + std::to_string(K));
}

void check_chain0(u64 chain0) {
  if (chain0 % 256) fail_value("chain0", "must be a multiple of 256, got " + std::to_string(chain0));
}

}  // namespace

HB_BIND(bind_sparse) {
  m.def(
      "sparse_denominators",
      [](py::array x, int path) {
        if (path < 0 || path > 2) fail_value("path", "must be 0, 1 or 2, got " + std::to_string(path));
        const i64 n = static_cast<i64>(x.size());
        const float* xp = arr<float>(x, "x", n, false);
        py::array_t<float> d(n);
        float* dp = d.mutable_data();
        {
          py::gil_scoped_release nogil;
          heatbath::cpu::sparse_table().denominators(xp, dp, n, path);
        }
        return d;
      },
      py::arg("x"), py::arg("path") = 0,
      "exp_f32(x) + 1 in float32, the denominators of the sparse spin update (for tests): path 0 the CPU "
      "level's exp, 1 the field-table update's, 2 the same without the clamps of x (|x| <= 87.3 only).");
  m.def(
      "sparse_field_tables",
      [](int mode) {
        if (mode < -1 || mode > 1)
          fail_value("mode", "must be -1 (ask), 0 (off) or 1 (on), got " + std::to_string(mode));
        return heatbath::cpu::sparse_table().field_tables(mode);
      },
      py::arg("mode") = -1,
      "Whether the AVX-512 sparse spin update uses field tables (VBMI + GFNI): 0 off, 1 on where supported, "
      "-1 ask. For testing: results are identical either way.");
  m.def(
      "sparse_ising_sweeps",
      [](py::array s, i64 chains, py::array row, py::array col, py::array w, py::array bias, py::array beta,
         py::array order, py::array block_ptr, u64 seed, u64 sweep0, i64 nsweeps, u64 chain0,
         const py::object& progress) {
        const SparseGraph g = graph(row, col, w);
        check_chains(chains, g.n);
        auto* sp = arr<std::uint32_t>(s, "state", g.n * ((chains + 31) / 32), true);
        const float* b = arr<float>(bias, "bias", g.n, false);
        const float* bt = arr<float>(beta, "beta", chains, false);
        check_finite(b, g.n, "bias");
        check_finite(bt, chains, "beta");
        const SparseSchedule sch = schedule(order, block_ptr, g);
        check_chain0(chain0);
        if (nsweeps < 0) fail_value("nsweeps", "must be >= 0, got " + std::to_string(nsweeps));
        heatbath::bind::run_in_slices(nsweeps, 1, progress_ptr(progress), [&](i64 first, i64 count) {
          heatbath::cpu::sparse_table().ising_sweeps(sp, chains, g, b, bt, sch, seed, chain0,
                                                     sweep0 + static_cast<u64>(first), count);
        });
      },
      py::arg("state"), py::arg("chains"), py::arg("row"), py::arg("col"), py::arg("weights"), py::arg("bias"),
      py::arg("beta"), py::arg("order"), py::arg("block_ptr"), py::arg("seed"), py::arg("sweep0"),
      py::arg("nsweeps"), py::arg("chain0") = 0, py::arg("progress") = py::none(),
      "Spin sweeps in slices (Ctrl-C raises KeyboardInterrupt between them); progress[0] receives the "
      "sweeps done.");
  m.def(
      "sparse_potts_sweeps",
      [](py::array s, i64 chains, int K, py::array row, py::array col, py::array w, py::array bias, py::array beta,
         py::array order, py::array block_ptr, u64 seed, u64 sweep0, i64 nsweeps, u64 chain0,
         const py::object& progress) {
        check_k(K);
        const SparseGraph g = graph(row, col, w);
        check_chains(chains, g.n);
        auto* sp = arr<std::uint8_t>(s, "state", g.n * chains, true);
        check_potts_states(sp, g.n * chains, K, "state");
        const float* b = arr<float>(bias, "bias", g.n * K, false);
        const float* bt = arr<float>(beta, "beta", chains, false);
        check_finite(b, g.n * K, "bias");
        check_finite(bt, chains, "beta");
        const SparseSchedule sch = schedule(order, block_ptr, g);
        check_chain0(chain0);
        if (nsweeps < 0) fail_value("nsweeps", "must be >= 0, got " + std::to_string(nsweeps));
        heatbath::bind::run_in_slices(nsweeps, 1, progress_ptr(progress), [&](i64 first, i64 count) {
          heatbath::cpu::sparse_table().potts_sweeps(sp, chains, K, g, b, bt, sch, seed, chain0,
                                                     sweep0 + static_cast<u64>(first), count);
        });
      },
      py::arg("state"), py::arg("chains"), py::arg("K"), py::arg("row"), py::arg("col"), py::arg("weights"),
      py::arg("bias"), py::arg("beta"), py::arg("order"), py::arg("block_ptr"), py::arg("seed"), py::arg("sweep0"),
      py::arg("nsweeps"), py::arg("chain0") = 0, py::arg("progress") = py::none(),
      "Potts sweeps in slices (Ctrl-C raises KeyboardInterrupt between them); progress[0] receives the "
      "sweeps done.");
  m.def(
      "sparse_ising_observe",
      [](py::array s, i64 chains, py::array row, py::array col, py::array w, py::array bias, py::array energy,
         py::array mag, py::array nodes, py::array m1, py::array pairs, py::array m2) {
        const SparseGraph g = graph(row, col, w);
        check_chains(chains, g.n);
        const auto* sp = arr<std::uint32_t>(s, "state", g.n * ((chains + 31) / 32), false);
        const float* b = arr<float>(bias, "bias", g.n, false);
        double* e = arr<double>(energy, "energy", chains, true);
        double* mg = arr<double>(mag, "mag", chains, true);
        const auto* nd = node_list(nodes, "nodes", g.n);
        double* a1 = arr<double>(m1, "m1", nodes.size(), true);
        if (pairs.size() % 2) fail_value("pairs", "expected an even number of node indices (pairs)");
        const auto* pr = node_list(pairs, "pairs", g.n);
        double* a2 = arr<double>(m2, "m2", pairs.size() / 2, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::sparse_table().ising_observe(sp, chains, g, b, e, mg, nd, nodes.size(), a1, pr,
                                                    pairs.size() / 2, a2);
      },
      py::arg("state"), py::arg("chains"), py::arg("row"), py::arg("col"), py::arg("weights"), py::arg("bias"),
      py::arg("energy"), py::arg("mag"), py::arg("nodes"), py::arg("m1"), py::arg("pairs"), py::arg("m2"));
  m.def(
      "sparse_potts_observe",
      [](py::array s, i64 chains, int K, py::array row, py::array col, py::array w, py::array bias, py::array energy,
         py::array nodes, py::array m1, py::array pairs, py::array m2) {
        check_k(K);
        const SparseGraph g = graph(row, col, w);
        check_chains(chains, g.n);
        const auto* sp = arr<std::uint8_t>(s, "state", g.n * chains, false);
        check_potts_states(sp, g.n * chains, K, "state");
        const float* b = arr<float>(bias, "bias", g.n * K, false);
        double* e = arr<double>(energy, "energy", chains, true);
        const auto* nd = node_list(nodes, "nodes", g.n);
        double* a1 = arr<double>(m1, "m1", nodes.size() * K, true);
        if (pairs.size() % 2) fail_value("pairs", "expected an even number of node indices (pairs)");
        const auto* pr = node_list(pairs, "pairs", g.n);
        double* a2 = arr<double>(m2, "m2", pairs.size() / 2, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::sparse_table().potts_observe(sp, chains, K, g, b, e, nd, nodes.size(), a1, pr,
                                                    pairs.size() / 2, a2);
      },
      py::arg("state"), py::arg("chains"), py::arg("K"), py::arg("row"), py::arg("col"), py::arg("weights"),
      py::arg("bias"), py::arg("energy"), py::arg("nodes"), py::arg("m1"), py::arg("pairs"), py::arg("m2"));
}
