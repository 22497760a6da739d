// heatbath._cuda: the DTM kernels (csrc/cuda/dtm.h). Pointers come as
// integers from the Python layer (heatbath/dtm/_kernels.py), which checks
// dtypes, shapes, contiguity and devices; here the sizes.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/dtm.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cuda::i64;
using heatbath::cuda::u32;

namespace {

void check(const char* what, const char* err) {
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel '") + what + "' failed: " + err);
}

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void check_sizes(i64 chains, i64 rows) {
  if (chains < 1) heatbath::bind::fail_value("chains", "must be >= 1, got " + std::to_string(chains));
  if (rows < 0) heatbath::bind::fail_value("rows", "must be >= 0, got " + std::to_string(rows));
}

}  // namespace

HB_BIND(bind_dtm) {
  m.def(
      "dtm_pack_rows",
      [](std::uintptr_t bits, i64 chains, i64 rows, std::uintptr_t out, std::uintptr_t stream) {
        check_sizes(chains, rows);
        py::gil_scoped_release nogil;
        check("dtm_pack_rows", heatbath::cuda::dtm_pack_rows(ptr<const std::uint8_t>(bits), chains, rows,
                                                             ptr<u32>(out), ptr<void>(stream)));
      },
      py::arg("bits"), py::arg("chains"), py::arg("rows"), py::arg("out"), py::arg("stream"));
  m.def(
      "dtm_unpack_rows",
      [](std::uintptr_t words, i64 rows, i64 chains, std::uintptr_t out, std::uintptr_t stream) {
        check_sizes(chains, rows);
        py::gil_scoped_release nogil;
        check("dtm_unpack_rows", heatbath::cuda::dtm_unpack_rows(ptr<const u32>(words), rows, chains,
                                                                 ptr<std::uint8_t>(out), ptr<void>(stream)));
      },
      py::arg("words"), py::arg("rows"), py::arg("chains"), py::arg("out"), py::arg("stream"));
  m.def(
      "dtm_count_moments",
      [](std::uintptr_t state, i64 chains, std::uintptr_t nodes, i64 n_nodes, std::uintptr_t up,
         std::uintptr_t edge_i, std::uintptr_t edge_j, i64 n_edges, std::uintptr_t agree, std::uintptr_t stream) {
        check_sizes(chains, 0);
        if (n_nodes < 0 || n_edges < 0) heatbath::bind::fail_value("n_nodes", "sizes must be >= 0");
        py::gil_scoped_release nogil;
        check("dtm_count_moments",
              heatbath::cuda::dtm_count_moments(ptr<const u32>(state), chains, ptr<const std::int32_t>(nodes),
                                                n_nodes, ptr<i64>(up), ptr<const std::int32_t>(edge_i),
                                                ptr<const std::int32_t>(edge_j), n_edges, ptr<i64>(agree),
                                                ptr<void>(stream)));
      },
      py::arg("state"), py::arg("chains"), py::arg("nodes"), py::arg("n_nodes"), py::arg("up"), py::arg("edge_i"),
      py::arg("edge_j"), py::arg("n_edges"), py::arg("agree"), py::arg("stream"));
  m.def(
      "dtm_adam_step",
      [](i64 n_edges, i64 n_nodes, std::uintptr_t edge_i, std::uintptr_t edge_j, std::uintptr_t pos_up,
         std::uintptr_t pos_agree, i64 pos_n, std::uintptr_t neg_up, std::uintptr_t neg_agree, i64 neg_n,
         std::uintptr_t w, std::uintptr_t mw, std::uintptr_t vw, std::uintptr_t b, std::uintptr_t mb,
         std::uintptr_t vb, double weight_decay, double cp, double lr, double b1, double b2, double c1, double c2,
         double eps, std::uintptr_t engine_w, std::uintptr_t engine_pos, std::uintptr_t engine_bias,
         std::uintptr_t stream) {
        if (n_edges < 0 || n_nodes < 0) heatbath::bind::fail_value("n_edges", "sizes must be >= 0");
        if (pos_n < 1) heatbath::bind::fail_value("pos_n", "must be >= 1");
        if (neg_n < 1) heatbath::bind::fail_value("neg_n", "must be >= 1");
        heatbath::DtmAdamArgs A{};
        A.n_edges = n_edges;
        A.n_nodes = n_nodes;
        A.edge_i = ptr<const std::int32_t>(edge_i);
        A.edge_j = ptr<const std::int32_t>(edge_j);
        A.pos_up = ptr<const i64>(pos_up);
        A.pos_agree = ptr<const i64>(pos_agree);
        A.pos_n = pos_n;
        A.neg_up = ptr<const i64>(neg_up);
        A.neg_agree = ptr<const i64>(neg_agree);
        A.neg_n = neg_n;
        A.w = ptr<double>(w);
        A.mw = ptr<double>(mw);
        A.vw = ptr<double>(vw);
        A.b = ptr<double>(b);
        A.mb = ptr<double>(mb);
        A.vb = ptr<double>(vb);
        A.weight_decay = weight_decay;
        A.cp = cp;
        A.adam = heatbath::AdamCoefficients{lr, b1, b2, 1.0 - b1, 1.0 - b2, c1, c2, eps};
        A.engine_w = ptr<float>(engine_w);
        A.engine_pos = ptr<const i64>(engine_pos);
        A.engine_bias = ptr<float>(engine_bias);
        py::gil_scoped_release nogil;
        check("dtm_adam_step", heatbath::cuda::dtm_adam_step(A, ptr<void>(stream)));
      },
      py::arg("n_edges"), py::arg("n_nodes"), py::arg("edge_i"), py::arg("edge_j"), py::arg("pos_up"),
      py::arg("pos_agree"), py::arg("pos_n"), py::arg("neg_up"), py::arg("neg_agree"), py::arg("neg_n"),
      py::arg("w"), py::arg("mw"), py::arg("vw"), py::arg("b"), py::arg("mb"), py::arg("vb"),
      py::arg("weight_decay"), py::arg("cp"), py::arg("lr"), py::arg("b1"), py::arg("b2"), py::arg("c1"),
      py::arg("c2"), py::arg("eps"), py::arg("engine_w"), py::arg("engine_pos"), py::arg("engine_bias"),
      py::arg("stream"));
}
