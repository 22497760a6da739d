// Long kernels run in slices, so that Ctrl-C works: a call asking for n steps
// (sweeps) runs them as consecutive calls of whole steps, the GIL released
// around each; between two slices the GIL is taken back and Python's signal
// handlers run (PyErr_CheckSignals), so a KeyboardInterrupt is raised within
// about a slice's time. Each slice grows towards kSliceSeconds of work, so
// short calls make a few slices and long ones about ten per second.
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
// of `granule` (the last may be shorter), the GIL released around each.
// Called with the GIL held; throws error_already_set when a signal handler
// raises between slices.
template <class Run>
void run_in_slices(std::int64_t total, std::int64_t granule, std::int64_t* progress, Run run) {
  using clock = std::chrono::steady_clock;
  if (granule < 1) granule = 1;
  std::int64_t first = 0, count = granule;
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
    // next count: aim at kSliceSeconds, growing at most 8x per slice (the
    // first slices are short and their times noisy)
    const double want = dt > 0 ? static_cast<double>(c) * kSliceSeconds / dt : 8.0 * static_cast<double>(c);
    const double next = std::min(want, 8.0 * static_cast<double>(c));
    const double cap = static_cast<double>(total - first);
    count = std::max<std::int64_t>(granule, static_cast<std::int64_t>(std::min(next, cap)) / granule * granule);
  }
}

}  // namespace bind
}  // namespace heatbath
