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
  m.def("set_num_threads", [](int n) {
    if (n < 1) heatbath::bind::fail_value("n", "must be >= 1, got " + std::to_string(n));
    heatbath::cpu::set_threads(n);
  });
  heatbath::bind::bind_all(m);
}
