// heatbath._core: Gibbs sweeps on sparse graphs (csrc/cpu/sparse.h). Index
// ranges and the colouring are validated once by the Python layer
// (heatbath/ebm/sparse.py); here dtypes, contiguity and sizes.
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "cpu/sparse.h"
#include "heatbath/sparse.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::SparseGraph;
using heatbath::cpu::SparseSchedule;
using heatbath::cpu::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

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

SparseGraph graph(py::array& row, py::array& col, py::array& w) {
  const i64 n = row.size() - 1;
  if (n < 0) fail_value("row", "must hold n + 1 offsets");
  const i64* r = arr<i64>(row, "row", n + 1, false);
  const i64 nnz = r[n];
  if (nnz < 0 || col.size() < nnz) fail_value("col", "shorter than row[-1]");
  return SparseGraph{r, arr<std::int32_t>(col, "col", -1, false), arr<float>(w, "weights", col.size(), false), n};
}

SparseSchedule schedule(py::array& order, py::array& block_ptr) {
  const i64* bp = arr<i64>(block_ptr, "block_ptr", -1, false);
  const i64 nb = block_ptr.size() - 1;
  if (nb < 0 || bp[nb] != order.size()) fail_value("block_ptr", "must end at len(order)");
  return SparseSchedule{arr<std::int32_t>(order, "order", -1, false), bp, nb};
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
         py::array order, py::array block_ptr, u64 seed, u64 sweep0, i64 nsweeps, u64 chain0) {
        const SparseGraph g = graph(row, col, w);
        auto* sp = arr<std::uint32_t>(s, "state", g.n * ((chains + 31) / 32), true);
        const float* b = arr<float>(bias, "bias", g.n, false);
        const float* bt = arr<float>(beta, "beta", chains, false);
        const SparseSchedule sch = schedule(order, block_ptr);
        check_chain0(chain0);
        py::gil_scoped_release nogil;
        heatbath::cpu::sparse_table().ising_sweeps(sp, chains, g, b, bt, sch, seed, chain0, sweep0, nsweeps);
      },
      py::arg("state"), py::arg("chains"), py::arg("row"), py::arg("col"), py::arg("weights"), py::arg("bias"),
      py::arg("beta"), py::arg("order"), py::arg("block_ptr"), py::arg("seed"), py::arg("sweep0"),
      py::arg("nsweeps"), py::arg("chain0") = 0);
  m.def(
      "sparse_potts_sweeps",
      [](py::array s, i64 chains, int K, py::array row, py::array col, py::array w, py::array bias, py::array beta,
         py::array order, py::array block_ptr, u64 seed, u64 sweep0, i64 nsweeps, u64 chain0) {
        check_k(K);
        const SparseGraph g = graph(row, col, w);
        auto* sp = arr<std::uint8_t>(s, "state", g.n * chains, true);
        const float* b = arr<float>(bias, "bias", g.n * K, false);
        const float* bt = arr<float>(beta, "beta", chains, false);
        const SparseSchedule sch = schedule(order, block_ptr);
        check_chain0(chain0);
        py::gil_scoped_release nogil;
        heatbath::cpu::sparse_table().potts_sweeps(sp, chains, K, g, b, bt, sch, seed, chain0, sweep0, nsweeps);
      },
      py::arg("state"), py::arg("chains"), py::arg("K"), py::arg("row"), py::arg("col"), py::arg("weights"),
      py::arg("bias"), py::arg("beta"), py::arg("order"), py::arg("block_ptr"), py::arg("seed"), py::arg("sweep0"),
      py::arg("nsweeps"), py::arg("chain0") = 0);
  m.def(
      "sparse_ising_observe",
      [](py::array s, i64 chains, py::array row, py::array col, py::array w, py::array bias, py::array energy,
         py::array mag, py::array nodes, py::array m1, py::array pairs, py::array m2) {
        const SparseGraph g = graph(row, col, w);
        const auto* sp = arr<std::uint32_t>(s, "state", g.n * ((chains + 31) / 32), false);
        const float* b = arr<float>(bias, "bias", g.n, false);
        double* e = arr<double>(energy, "energy", chains, true);
        double* mg = arr<double>(mag, "mag", chains, true);
        const auto* nd = arr<std::int32_t>(nodes, "nodes", -1, false);
        double* a1 = arr<double>(m1, "m1", nodes.size(), true);
        const auto* pr = arr<std::int32_t>(pairs, "pairs", -1, false);
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
        const auto* sp = arr<std::uint8_t>(s, "state", g.n * chains, false);
        const float* b = arr<float>(bias, "bias", g.n * K, false);
        double* e = arr<double>(energy, "energy", chains, true);
        const auto* nd = arr<std::int32_t>(nodes, "nodes", -1, false);
        double* a1 = arr<double>(m1, "m1", nodes.size() * K, true);
        const auto* pr = arr<std::int32_t>(pairs, "pairs", -1, false);
        double* a2 = arr<double>(m2, "m2", pairs.size() / 2, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::sparse_table().potts_observe(sp, chains, K, g, b, e, nd, nodes.size(), a1, pr,
                                                    pairs.size() / 2, a2);
      },
      py::arg("state"), py::arg("chains"), py::arg("K"), py::arg("row"), py::arg("col"), py::arg("weights"),
      py::arg("bias"), py::arg("energy"), py::arg("nodes"), py::arg("m1"), py::arg("pairs"), py::arg("m2"));
}
