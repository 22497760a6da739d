// heatbath._core: multi-spin-coded Ising lattices (csrc/cpu/ising.h).
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "cpu/ising.h"
#include "registry.h"
#include "slices.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::IsingShape;
using heatbath::cpu::u32;
using heatbath::cpu::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

template <class T>
T* checked(py::array& a, const char* arg, i64 size, bool writeable) {
  // equivalence, not identity: an array that went through pickle (a Dask
  // worker) carries its own dtype object
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                       py::str(a.dtype()).cast<std::string>());
  if (!(a.flags() & py::array::c_style)) fail_value(arg, "array must be C-contiguous");
  if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
  if (a.size() != size)
    fail_value(arg, "expected " + std::to_string(size) + " elements, got " + std::to_string(a.size()));
  return static_cast<T*>(a.mutable_data());
}

IsingShape shape_of(i64 lx, i64 ly, i64 lz, int dim, i64 chains) {
  if (dim != 2 && dim != 3) fail_value("dim", "must be 2 or 3, got " + std::to_string(dim));
  if (dim == 2 && lz != 1) fail_value("lz", "must be 1 for a 2D lattice");
  for (auto [name, v] : {std::pair<const char*, i64>{"lx", lx}, {"ly", ly}, {"lz", lz}})
    if (v < 1 || (v % 2 != 0 && !(dim == 2 && name[1] == 'z')))
      fail_value(name, "lattice sides must be even and >= 2, got " + std::to_string(v));
  if (lx > 64 && lx % 64 != 0) fail_value("lx", "must be <= 64 or a multiple of 64, got " + std::to_string(lx));
  if (chains < 0) fail_value("chains", "must be >= 0");
  if (lx > (i64(1) << 20) || ly > (i64(1) << 20) || lz > (i64(1) << 20) || chains > (i64(1) << 40) ||
      (chains > 0 && lx * ly * lz > (i64(1) << 56) / chains))
    fail_value("chains", "lattice too large: " + std::to_string(chains) + " chains of " + std::to_string(lx) +
                             " x " + std::to_string(ly) + " x " + std::to_string(lz));
  return IsingShape{lx, ly, lz, dim, chains};
}

i64 packed_words(const IsingShape& s) { return s.chains * 2 * s.ly * s.lz * ((s.lx / 2 + 31) / 32); }

// Word ids (chain0 + chains) * words per chain must stay below 2^61 (csrc/heatbath/ising.h).
void check_chain0(const IsingShape& s, u64 chain0) {
  const IsingShape one{s.lx, s.ly, s.lz, s.dim, 1};
  const u64 per_chain = static_cast<u64>(packed_words(one));
  const u64 limit = (u64(1) << 61) / per_chain;
  if (chain0 > limit || static_cast<u64>(s.chains) > limit - chain0)
    fail_value("chain0", "chain0 + chains must be below " + std::to_string(limit) + " for this lattice, got " +
                             std::to_string(chain0) + " + " + std::to_string(s.chains));
}

}  // namespace

HB_BIND(bind_ising) {
  m.def(
      "ising_sweep",
      [](py::array spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, py::array th, bool metropolis, u64 seed,
         u64 sweep0, i64 nsweeps, i64 rec_every, py::array up, py::array agree, u64 chain0,
         const py::object& progress) {
        const IsingShape s = shape_of(lx, ly, lz, dim, chains);
        check_chain0(s, chain0);
        u32* sp = checked<u32>(spins, "spins", packed_words(s), true);
        const u32* t = checked<u32>(th, "thresholds", chains * 33, false);
        if (nsweeps < 0) fail_value("nsweeps", "must be >= 0, got " + std::to_string(nsweeps));
        if (rec_every < 0) fail_value("rec_every", "must be >= 0, got " + std::to_string(rec_every));
        const i64 nrec = rec_every > 0 ? nsweeps / rec_every : 0;
        i64* u = checked<i64>(up, "up", nrec * chains, true);
        i64* a = checked<i64>(agree, "agree", nrec * chains, true);
        // slices of whole recording periods; a slice's records follow the earlier ones
        const i64 granule = rec_every > 0 ? rec_every : 1;
        heatbath::bind::run_in_slices(nsweeps, granule, heatbath::bind::progress_ptr(progress),
                                      [&](i64 first, i64 count) {
                                        const i64 r0 = rec_every > 0 ? first / rec_every * chains : 0;
                                        heatbath::cpu::ising_table().sweep(sp, s, t, metropolis, seed,
                                                                           sweep0 + static_cast<u64>(first), count,
                                                                           rec_every, u + r0, a + r0, chain0);
                                      });
      },
      py::arg("spins"), py::arg("lx"), py::arg("ly"), py::arg("lz"), py::arg("dim"), py::arg("chains"),
      py::arg("thresholds"), py::arg("metropolis"), py::arg("seed"), py::arg("sweep0"), py::arg("nsweeps"),
      py::arg("rec_every"), py::arg("up"), py::arg("agree"), py::arg("chain0") = 0,
      py::arg("progress") = py::none(),
      "Checkerboard sweeps in slices (Ctrl-C raises KeyboardInterrupt between them); progress[0] receives the "
      "sweeps done.");
  m.def(
      "ising_observe",
      [](py::array spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, py::array up, py::array agree) {
        const IsingShape s = shape_of(lx, ly, lz, dim, chains);
        const u32* sp = checked<u32>(spins, "spins", packed_words(s), false);
        i64* u = checked<i64>(up, "up", chains, true);
        i64* a = checked<i64>(agree, "agree", chains, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::ising_table().observe(sp, s, u, a);
      },
      py::arg("spins"), py::arg("lx"), py::arg("ly"), py::arg("lz"), py::arg("dim"), py::arg("chains"),
      py::arg("up"), py::arg("agree"));
  m.def(
      "ising_pack",
      [](py::array spins8, i64 lx, i64 ly, i64 lz, int dim, i64 chains, py::array packed) {
        const IsingShape s = shape_of(lx, ly, lz, dim, chains);
        const std::int8_t* in = checked<std::int8_t>(spins8, "spins", chains * lx * ly * lz, false);
        u32* out = checked<u32>(packed, "packed", packed_words(s), true);
        py::gil_scoped_release nogil;
        heatbath::cpu::ising_table().pack(in, s, out);
      },
      py::arg("spins"), py::arg("lx"), py::arg("ly"), py::arg("lz"), py::arg("dim"), py::arg("chains"),
      py::arg("packed"));
  m.def(
      "ising_unpack",
      [](py::array packed, i64 lx, i64 ly, i64 lz, int dim, i64 chains, py::array spins8) {
        const IsingShape s = shape_of(lx, ly, lz, dim, chains);
        const u32* in = checked<u32>(packed, "packed", packed_words(s), false);
        std::int8_t* out = checked<std::int8_t>(spins8, "spins", chains * lx * ly * lz, true);
        py::gil_scoped_release nogil;
        heatbath::cpu::ising_table().unpack(in, s, out);
      },
      py::arg("packed"), py::arg("lx"), py::arg("ly"), py::arg("lz"), py::arg("dim"), py::arg("chains"),
      py::arg("spins"));
}
