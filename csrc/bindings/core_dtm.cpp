// heatbath._core: the DTM kernels (csrc/cpu/dtm.h): packing of 0/1 rows,
// moment counts of packed spins and the Adam step. Checks dtypes,
// contiguity, sizes and index ranges; the GIL is released around the loops.
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "cpu/dtm.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::u32;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

template <class T>
T* arr(py::array& a, const char* arg, i64 size, bool writeable) {
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                       py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style)) fail_value(arg, "array must be C-contiguous");
  if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
  if (size >= 0 && a.size() != size)
    fail_value(arg, "expected " + std::to_string(size) + " elements, got " + std::to_string(a.size()));
  return static_cast<T*>(a.mutable_data());
}

void check_2d(py::array& a, const char* arg) {
  if (a.ndim() != 2) fail_value(arg, "expected a 2-D array, got " + std::to_string(a.ndim()) + " dimensions");
}

// Every index in [0, n).
template <class T>
void check_indices(const T* idx, i64 count, i64 n, const char* arg) {
  for (i64 k = 0; k < count; ++k)
    if (idx[k] < 0 || idx[k] >= n)
      fail_value(arg, "index " + std::to_string(idx[k]) + " outside [0, " + std::to_string(n) + ")");
}

i64 words_for(i64 chains) {
  if (chains < 1) fail_value("chains", "must be >= 1, got " + std::to_string(chains));
  return (chains + 31) / 32;
}

}  // namespace

HB_BIND(bind_dtm) {
  m.def(
      "dtm_pack_rows",
      [](py::array bits, py::array out) {
        check_2d(bits, "bits");
        const i64 chains = bits.shape(0), rows = bits.shape(1);
        const i64 W = words_for(chains);
        const auto* b = arr<std::uint8_t>(bits, "bits", -1, false);
        check_2d(out, "out");
        if (out.shape(0) != rows || out.shape(1) != W)
          fail_value("out", "expected shape (" + std::to_string(rows) + ", " + std::to_string(W) + ")");
        u32* o = arr<u32>(out, "out", rows * W, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::dtm_table().pack_rows(b, chains, rows, o);
      },
      py::arg("bits"), py::arg("out"),
      "0/1 rows (chains, rows) uint8 -> packed spins (rows, ceil(chains / 32)) uint32 (padding bits 0).");
  m.def(
      "dtm_unpack_rows",
      [](py::array words, i64 chains, py::array out) {
        check_2d(words, "words");
        const i64 rows = words.shape(0), W = words_for(chains);
        if (words.shape(1) != W)
          fail_value("words", "expected " + std::to_string(W) + " words per row for " + std::to_string(chains) +
                                  " chains, got " + std::to_string(words.shape(1)));
        const u32* w = arr<u32>(words, "words", rows * W, false);
        auto* o = arr<std::uint8_t>(out, "out", chains * rows, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::dtm_table().unpack_rows(w, rows, chains, o);
      },
      py::arg("words"), py::arg("chains"), py::arg("out"),
      "Packed spins (rows, ceil(chains / 32)) uint32 -> 0/1 (chains, rows) uint8.");
  m.def(
      "dtm_count_moments",
      [](py::array state, i64 chains, py::array nodes, py::array up, py::array edge_i, py::array edge_j,
         py::array agree) {
        check_2d(state, "state");
        const i64 rows = state.shape(0), W = words_for(chains);
        if (state.shape(1) != W)
          fail_value("state", "expected " + std::to_string(W) + " words per row for " + std::to_string(chains) +
                                  " chains, got " + std::to_string(state.shape(1)));
        const u32* s = arr<u32>(state, "state", rows * W, false);
        const i64 nn = nodes.size(), ne = edge_i.size();
        const auto* nd = arr<std::int32_t>(nodes, "nodes", nn, false);
        i64* u = arr<i64>(up, "up", nn, true);
        const auto* ei = arr<std::int32_t>(edge_i, "edge_i", ne, false);
        const auto* ej = arr<std::int32_t>(edge_j, "edge_j", ne, false);
        i64* a = arr<i64>(agree, "agree", ne, true);
        check_indices(nd, nn, rows, "nodes");
        check_indices(ei, ne, rows, "edge_i");
        check_indices(ej, ne, rows, "edge_j");
        py::gil_scoped_release nogil;
        heatbath::cpu::dtm_table().count_moments(s, chains, nd, nn, u, ei, ej, ne, a);
      },
      py::arg("state"), py::arg("chains"), py::arg("nodes"), py::arg("up"), py::arg("edge_i"), py::arg("edge_j"),
      py::arg("agree"),
      "Adds the up counts of `nodes` to `up` and the agreement counts of the pairs (edge_i, edge_j) to "
      "`agree` (int64), over the chains of packed spins.");
  m.def(
      "dtm_adam_step",
      [](py::array edge_i, py::array edge_j, py::array pos_up, py::array pos_agree, i64 pos_n, py::array neg_up,
         py::array neg_agree, i64 neg_n, py::array w, py::array mw, py::array vw, py::array b, py::array mb,
         py::array vb, double weight_decay, double cp, double lr, double b1, double b2, double c1, double c2,
         double eps, py::array engine_w, py::array engine_pos, py::array engine_bias) {
        heatbath::DtmAdamArgs A{};
        const i64 ne = w.size(), nn = b.size();
        if (pos_n < 1) fail_value("pos_n", "must be >= 1");
        if (neg_n < 1) fail_value("neg_n", "must be >= 1");
        A.n_edges = ne;
        A.n_nodes = nn;
        A.edge_i = arr<std::int32_t>(edge_i, "edge_i", ne, false);
        A.edge_j = arr<std::int32_t>(edge_j, "edge_j", ne, false);
        check_indices(A.edge_i, ne, nn, "edge_i");
        check_indices(A.edge_j, ne, nn, "edge_j");
        A.pos_up = arr<i64>(pos_up, "pos_up", nn, false);
        A.pos_agree = arr<i64>(pos_agree, "pos_agree", ne, false);
        A.pos_n = pos_n;
        A.neg_up = arr<i64>(neg_up, "neg_up", nn, false);
        A.neg_agree = arr<i64>(neg_agree, "neg_agree", ne, false);
        A.neg_n = neg_n;
        A.w = arr<double>(w, "w", ne, true);
        A.mw = arr<double>(mw, "mw", ne, true);
        A.vw = arr<double>(vw, "vw", ne, true);
        A.b = arr<double>(b, "b", nn, true);
        A.mb = arr<double>(mb, "mb", nn, true);
        A.vb = arr<double>(vb, "vb", nn, true);
        A.weight_decay = weight_decay;
        A.cp = cp;
        A.adam = heatbath::AdamCoefficients{lr, b1, b2, 1.0 - b1, 1.0 - b2, c1, c2, eps};
        A.engine_w = arr<float>(engine_w, "engine_w", -1, true);
        A.engine_pos = arr<i64>(engine_pos, "engine_pos", 2 * ne, false);
        check_indices(A.engine_pos, 2 * ne, static_cast<i64>(engine_w.size()), "engine_pos");
        A.engine_bias = arr<float>(engine_bias, "engine_bias", -1, true);
        if (static_cast<i64>(engine_bias.size()) < nn)
          fail_value("engine_bias", "expected at least " + std::to_string(nn) + " elements");
        py::gil_scoped_release nogil;
        heatbath::cpu::dtm_table().adam_step(A);
      },
      py::arg("edge_i"), py::arg("edge_j"), py::arg("pos_up"), py::arg("pos_agree"), py::arg("pos_n"),
      py::arg("neg_up"), py::arg("neg_agree"), py::arg("neg_n"), py::arg("w"), py::arg("mw"), py::arg("vw"),
      py::arg("b"), py::arg("mb"), py::arg("vb"), py::arg("weight_decay"), py::arg("cp"), py::arg("lr"),
      py::arg("b1"), py::arg("b2"), py::arg("c1"), py::arg("c2"), py::arg("eps"), py::arg("engine_w"),
      py::arg("engine_pos"), py::arg("engine_bias"),
      "One Adam ascent step of a DTM step's couplings w and biases b from the moment counts of the positive "
      "and negative phase; the new values go, as float32, to engine_w at engine_pos and to engine_bias.");
}
