// Long kernels run in slices, so that Ctrl-C works: a call asking for n steps
// (sweeps) runs them as consecutive calls of whole steps, the GIL released
// around each; between two slices the GIL is taken back and Python's signal
// handlers run (PyErr_CheckSignals), so a KeyboardInterrupt is raised within
// about a slice's time. The first slice is sized by an estimate of the work
// per step (short calls run in one piece), the next ones by the time the
// last one took, towards kSliceSeconds each.
//
// Steps are pure functions of their index (Philox streams), so the slicing
// changes no result. The number of steps done is written to `progress[0]`
// (an int64 array the caller holds) after every slice: a caller that catches
// the KeyboardInterrupt knows how far the state got and stays consistent.
#pragma once
#include <pybind11/numpy.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "registry.h"

namespace heatbath {
namespace bind {

constexpr double kSliceSeconds = 0.1;
// The first slice, before any time is measured: as many steps as make about
// this much work (in the callers' units, about a site or a coupling of a
// chain: 0.1 to 0.3 s at the AVX-512 level, a few times that at the base
// level), so that short calls run in one piece (one parallel region, as
// without slices).
constexpr double kFirstSliceWork = 2e9;

// The progress counter: None, or a writeable int64 array of one element.
inline std::int64_t* progress_ptr(const pybind11::object& progress) {
  if (progress.is_none()) return nullptr;
  if (!pybind11::isinstance<pybind11::array_t<std::int64_t>>(progress))
    fail_type("progress", "expected an int64 array of one element");
  pybind11::array a = progress.cast<pybind11::array>();
  if (a.size() != 1 || !a.writeable()) fail_value("progress", "expected a writeable array of one element");
  return static_cast<std::int64_t*>(a.mutable_data());
}

// Runs run(first, count) over [0, total) in slices whose counts are multiples
// of `granule` (the last may be shorter), the GIL released around each;
// `work_per_step` (updates per step, an estimate) sizes the first slice.
// Called with the GIL held; throws error_already_set when a signal handler
// raises between slices.
template <class Run>
void run_in_slices(std::int64_t total, std::int64_t granule, double work_per_step, std::int64_t* progress, Run run) {
  using clock = std::chrono::steady_clock;
  if (granule < 1) granule = 1;
  auto round = [&](double want) {
    const double capped = std::min(want, static_cast<double>(total));
    return std::max<std::int64_t>(granule, static_cast<std::int64_t>(capped) / granule * granule);
  };
  std::int64_t first = 0;
  std::int64_t count = round(kFirstSliceWork / std::max(work_per_step, 1.0));
  if (progress) *progress = 0;
  while (first < total) {
    const std::int64_t c = std::min(count, total - first);
    const auto t0 = clock::now();
    {
      pybind11::gil_scoped_release nogil;
      run(first, c);
    }
    first += c;
    if (progress) *progress = first;
    if (first >= total) break;
    if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    // next: about kSliceSeconds of steps; the rest at once when it is at most two of those
    const double want = dt > 0 ? static_cast<double>(c) * kSliceSeconds / dt : 8.0 * static_cast<double>(c);
    count = static_cast<double>(total - first) <= 2.0 * want ? total - first : round(want);
  }
}

}  // namespace bind
}  // namespace heatbath
