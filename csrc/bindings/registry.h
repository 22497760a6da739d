// Each binding file adds its functions to the module through a registrar, so
// that a new family of kernels needs no edit of the module definition:
//
//   #include "registry.h"
//   HB_BIND(bind_foo) { m.def("foo", ...); }
//
// Registrars run when the extension is loaded, before PyInit; the module
// definition (core_module.cpp, cuda_module.cpp) calls them all. Each
// extension module is its own shared object with hidden symbols, so each has
// its own registry.
#pragma once
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace heatbath {
namespace bind {

using BindFn = void (*)(pybind11::module_&);

inline std::vector<BindFn>& registry() {
  static std::vector<BindFn> fns;
  return fns;
}

struct Registrar {
  explicit Registrar(BindFn f) { registry().push_back(f); }
};

inline void bind_all(pybind11::module_& m) {
  for (BindFn f : registry()) f(m);
}

[[noreturn]] inline void fail_type(const char* arg, const std::string& msg) {
  throw pybind11::type_error("'" + std::string(arg) + "': " + msg);
}
[[noreturn]] inline void fail_value(const char* arg, const std::string& msg) {
  throw pybind11::value_error("'" + std::string(arg) + "': " + msg);
}

}  // namespace bind
}  // namespace heatbath

#define HB_BIND(fn)                                                    \
  static void fn(pybind11::module_& m);                                \
  static const ::heatbath::bind::Registrar fn##_registrar_instance(fn); \
  static void fn(pybind11::module_& m)
