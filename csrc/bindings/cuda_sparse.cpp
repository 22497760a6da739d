// heatbath._cuda: Gibbs sweeps on sparse graphs (csrc/cuda/sparse.h). The
// Python layer (heatbath/ebm/sparse.py) checks the arrays; the block offsets
// come as a host numpy array.
#include <pybind11/numpy.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "cuda/sparse.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cuda::i64;
using heatbath::cuda::u64;

namespace {

void check(const char* what, const char* err) {
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel '") + what + "' failed: " + err);
}

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void check_k(int K) {
  if (K != 0 && (K < 2 || K > 64)) heatbath::bind::fail_value("K", "must be 0 (spins) or in [2, 64]");
}

}  // namespace

HB_BIND(bind_sparse) {
  m.def("sparse_sweeps", [](std::uintptr_t s, i64 chains, int K, i64 n, std::uintptr_t row, std::uintptr_t col,
                            std::uintptr_t w, std::uintptr_t bias, std::uintptr_t beta, std::uintptr_t order,
                            py::array_t<i64, py::array::c_style | py::array::forcecast> block_ptr, u64 seed,
                            u64 sweep0, i64 nsweeps, std::uintptr_t stream, u64 chain0, float beta_uniform) {
    check_k(K);
    if (chain0 % 256) heatbath::bind::fail_value("chain0", "must be a multiple of 256");
    if (chains < 0 || n < 0 || nsweeps < 0) heatbath::bind::fail_value("chains", "sizes must be >= 0");
    const i64 nb = static_cast<i64>(block_ptr.size()) - 1;
    if (nb < 0) heatbath::bind::fail_value("block_ptr", "must hold nblocks + 1 offsets");
    const i64* bp = block_ptr.data();
    py::gil_scoped_release nogil;
    check("sparse_sweeps", heatbath::cuda::sparse_sweeps(ptr<void>(s), chains, K, n, ptr<const i64>(row),
                                                         ptr<const std::int32_t>(col), ptr<const float>(w),
                                                         ptr<const float>(bias), ptr<const float>(beta),
                                                         beta_uniform, ptr<const std::int32_t>(order), bp, nb, seed,
                                                         chain0,
                                                         sweep0, nsweeps, ptr<void>(stream)));
  }, py::arg("state"), py::arg("chains"), py::arg("K"), py::arg("n"), py::arg("row"), py::arg("col"),
     py::arg("weights"), py::arg("bias"), py::arg("beta"), py::arg("order"), py::arg("block_ptr"), py::arg("seed"),
     py::arg("sweep0"), py::arg("nsweeps"), py::arg("stream"), py::arg("chain0") = 0,
     py::arg("beta_uniform") = std::numeric_limits<float>::quiet_NaN());
  m.def("sparse_observe", [](std::uintptr_t s, i64 chains, int K, i64 n, std::uintptr_t row, std::uintptr_t col,
                             std::uintptr_t w, std::uintptr_t bias, std::uintptr_t energy, std::uintptr_t mag,
                             std::uintptr_t nodes, i64 nnodes, std::uintptr_t m1, std::uintptr_t pairs, i64 npairs,
                             std::uintptr_t m2, std::uintptr_t stream) {
    check_k(K);
    if (chains < 0 || n < 0 || nnodes < 0 || npairs < 0) heatbath::bind::fail_value("chains", "sizes must be >= 0");
    py::gil_scoped_release nogil;
    check("sparse_observe",
          heatbath::cuda::sparse_observe(ptr<const void>(s), chains, K, n, ptr<const i64>(row),
                                         ptr<const std::int32_t>(col), ptr<const float>(w), ptr<const float>(bias),
                                         ptr<double>(energy), ptr<double>(mag), ptr<const std::int32_t>(nodes),
                                         nnodes, ptr<double>(m1), ptr<const std::int32_t>(pairs), npairs,
                                         ptr<double>(m2), ptr<void>(stream)));
  });
}
