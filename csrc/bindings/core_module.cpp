// heatbath._core: the CPU kernels. The functions come from the core_*.cpp
// binding files (see registry.h); bindings check and forward, no math here.
#include <string>

#include "cpu/dispatch.h"
#include "registry.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "heatbath CPU kernels (private; use the heatbath package).";
  m.def(
      "cpu_levels",
      [] {
        const char* names[8];
        const int k = heatbath::cpu::available_levels(names, 8);
        py::list out;
        for (int i = 0; i < k; ++i) out.append(names[i]);
        return out;
      },
      "Instruction-set levels compiled in and supported here, best last.");
  m.def("cpu_level", [] { return std::string(heatbath::cpu::level_name()); });
  m.def("set_cpu_level", [](const std::string& name) {
    if (!heatbath::cpu::set_level(name.c_str()))
      heatbath::bind::fail_value("level", "'" + name + "' is not one of the supported levels");
  });
  m.def("get_num_threads", &heatbath::cpu::max_threads);
  m.attr("MAX_THREADS") = heatbath::cpu::kMaxThreads;
  m.def(
      "set_num_threads",
      [](const py::int_& value) {
        // a Python int of any size: out-of-range values get this message, not pybind11's
        const long long n = PyLong_AsLongLong(value.ptr());
        if (n == -1 && PyErr_Occurred()) {
          PyErr_Clear();
          heatbath::bind::fail_value("n", "must lie in [1, " + std::to_string(heatbath::cpu::kMaxThreads) +
                                              "], got " + py::str(value).cast<std::string>());
        }
        if (n < 1 || n > heatbath::cpu::kMaxThreads)
          heatbath::bind::fail_value("n", "must lie in [1, " + std::to_string(heatbath::cpu::kMaxThreads) +
                                              "], got " + std::to_string(n));
        heatbath::cpu::set_threads(static_cast<int>(n));
      },
      py::arg("n"));
  heatbath::bind::bind_all(m);
}
