// heatbath._cuda: multi-spin-coded Ising lattices (csrc/cuda/ising.h). The
// Python layer (heatbath/ebm/lattice.py) checks dtypes, shapes and devices of
// the cupy arrays; here only the sizes are checked.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/ising.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cuda::i64;
using heatbath::cuda::u32;
using heatbath::cuda::u64;

namespace {

void check(const char* what, const char* err) {
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel '") + what + "' failed: " + err);
}

void check_shape(i64 lx, i64 ly, i64 lz, int dim, i64 chains) {
  if (dim != 2 && dim != 3) heatbath::bind::fail_value("dim", "must be 2 or 3");
  if (lx < 2 || lx % 2 || ly < 2 || ly % 2 || lz < 1 || (dim == 3 && lz % 2))
    heatbath::bind::fail_value("shape", "lattice sides must be even and >= 2");
  if (lx > 64 && lx % 64) heatbath::bind::fail_value("lx", "must be <= 64 or a multiple of 64");
  if (chains < 0) heatbath::bind::fail_value("chains", "must be >= 0");
}

}  // namespace

HB_BIND(bind_ising) {
  m.def("ising_sweep", [](std::uintptr_t spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, std::uintptr_t th,
                          bool metropolis, u64 seed, u64 sweep0, i64 nsweeps, i64 rec_every, std::uintptr_t up,
                          std::uintptr_t agree, std::uintptr_t s, u64 chain0) {
    check_shape(lx, ly, lz, dim, chains);
    if (nsweeps < 0) heatbath::bind::fail_value("nsweeps", "must be >= 0");
    const u64 per_chain = static_cast<u64>(2 * ly * lz * ((lx / 2 + 31) / 32));
    const u64 limit = (u64(1) << 61) / per_chain;
    if (chain0 > limit || static_cast<u64>(chains) > limit - chain0)
      heatbath::bind::fail_value("chain0", "chain0 + chains must be below " + std::to_string(limit));
    py::gil_scoped_release nogil;
    check("ising_sweep", heatbath::cuda::ising_sweep(reinterpret_cast<u32*>(spins), lx, ly, lz, dim, chains,
                                                     reinterpret_cast<const u32*>(th), metropolis, seed, sweep0,
                                                     nsweeps, rec_every, reinterpret_cast<i64*>(up),
                                                     reinterpret_cast<i64*>(agree), reinterpret_cast<void*>(s),
                                                     chain0));
  }, py::arg("spins"), py::arg("lx"), py::arg("ly"), py::arg("lz"), py::arg("dim"), py::arg("chains"),
     py::arg("thresholds"), py::arg("metropolis"), py::arg("seed"), py::arg("sweep0"), py::arg("nsweeps"),
     py::arg("rec_every"), py::arg("up"), py::arg("agree"), py::arg("stream"), py::arg("chain0") = 0);
  m.def("ising_observe", [](std::uintptr_t spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, std::uintptr_t up,
                            std::uintptr_t agree, std::uintptr_t s) {
    check_shape(lx, ly, lz, dim, chains);
    py::gil_scoped_release nogil;
    check("ising_observe",
          heatbath::cuda::ising_observe(reinterpret_cast<const u32*>(spins), lx, ly, lz, dim, chains,
                                        reinterpret_cast<i64*>(up), reinterpret_cast<i64*>(agree),
                                        reinterpret_cast<void*>(s)));
  });
}
