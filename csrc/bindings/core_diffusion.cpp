// heatbath._core: the fused Gaussian-diffusion step (csrc/heatbath/diffusion.h).
// The Python layer (heatbath.diffusion._kernels) computes the per-sample
// coefficients and passes 2-D views [n_samples, inner]; this file checks
// dtypes, shapes and strides and forwards.
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "cpu/diffusion.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::i64;
using heatbath::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A 2-D array [n, inner] of dtype T with contiguous rows; returns the row
// stride in elements.
template <class T>
i64 check_rows(const py::array& a, const char* arg, i64 n, i64 inner, bool out) {
  // equivalence, not identity: an array that went through pickle (a Dask
  // worker) carries its own dtype object
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                       py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 2 || a.shape(0) != n || a.shape(1) != inner)
    fail_value(arg, "expected shape (" + std::to_string(n) + ", " + std::to_string(inner) + "), got " +
                        shape_str(a));
  const i64 isz = static_cast<i64>(sizeof(T));
  if (inner > 1 && a.strides(1) != isz) fail_value(arg, "rows must be contiguous");
  if (a.strides(0) % isz != 0 || a.strides(0) < 0) fail_value(arg, "unsupported row stride");
  if (out) {
    if (!a.writeable()) fail_value(arg, "array is read-only");
    if (n > 1 && a.strides(0) != inner * isz) fail_value(arg, "output must be C-contiguous");
  }
  return n > 1 ? a.strides(0) / isz : inner;
}

template <class T>
i64 run_step(const py::array& x, const py::array& coef, py::array& out, const py::object& m, const py::object& h,
             const py::object& v, const py::object& z, const py::object& x0_out, const py::object& z_out,
             bool clip, bool use_x0, bool noise, int var_mode, u64 seed, u64 stream, u64 offset) {
  if (x.ndim() != 2) fail_value("x", "expected a 2-D view (n_samples, inner), got shape " + shape_str(x));
  const i64 n = x.shape(0), inner = x.shape(1);
  heatbath::StepArgs<T> a{};
  a.n_samples = n;
  a.inner = inner;
  a.x_ss = check_rows<T>(x, "x", n, inner, false);
  a.x = static_cast<const T*>(x.data());
  a.out = static_cast<T*>(out.mutable_data());
  check_rows<T>(out, "out", n, inner, true);
  if (!py::isinstance<py::array_t<double>>(coef) || coef.ndim() != 2 ||
      coef.shape(1) != heatbath::kStepCoefs ||
      !(coef.shape(0) == n || coef.shape(0) == 1) || !(coef.flags() & py::array::c_style))
    fail_value("coef", "expected a C-contiguous float64 array of shape (" + std::to_string(n) + " or 1, " +
                           std::to_string(heatbath::kStepCoefs) + "), got " + shape_str(coef));
  a.coef = static_cast<const double*>(coef.data());
  a.coef_stride = coef.shape(0) == 1 ? 0 : heatbath::kStepCoefs;
  auto opt_in = [&](const py::object& o, const char* arg, const T*& p, i64& ss) {
    if (o.is_none()) return;
    const py::array arr = o.cast<py::array>();
    ss = check_rows<T>(arr, arg, n, inner, false);
    p = static_cast<const T*>(arr.data());
  };
  auto opt_out = [&](const py::object& o, const char* arg, T*& p) {
    if (o.is_none()) return;
    py::array arr = o.cast<py::array>();
    check_rows<T>(arr, arg, n, inner, true);
    p = static_cast<T*>(arr.mutable_data());
  };
  opt_in(m, "model_output", a.m, a.m_ss);
  opt_in(h, "history", a.h, a.h_ss);
  opt_in(v, "variance", a.v, a.v_ss);
  opt_in(z, "noise", a.z, a.z_ss);
  opt_out(x0_out, "x0_out", a.x0_out);
  opt_out(z_out, "noise_out", a.z_out);
  if (var_mode < 0 || var_mode > 2) fail_value("var_mode", "must be 0, 1 or 2");
  if (var_mode != heatbath::kVarSigma && !a.v) fail_value("variance", "required for var_mode 1 and 2");
  a.flags = heatbath::StepFlags{a.m != nullptr, a.h != nullptr, use_x0, clip, a.x0_out != nullptr, noise, var_mode};
  a.seed = seed;
  a.stream = stream;
  a.offset = offset;
  const auto& t = heatbath::cpu::diffusion_table();
  py::gil_scoped_release nogil;
  if constexpr (std::is_same<T, float>::value)
    return t.step_f32(a);
  else
    return t.step_f64(a);
}

}  // namespace

HB_BIND(bind_diffusion) {
  m.def(
      "diffusion_step",
      [](const py::array& x, const py::array& coef, py::array& out, const py::object& model_output,
         const py::object& history, const py::object& variance, const py::object& noise,
         const py::object& x0_out, const py::object& noise_out, bool clip, bool use_x0, bool draw, int var_mode,
         u64 seed, u64 stream, u64 offset) -> i64 {
        if (py::isinstance<py::array_t<float>>(x))
          return run_step<float>(x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip,
                                 use_x0, draw, var_mode, seed, stream, offset);
        if (py::isinstance<py::array_t<double>>(x))
          return run_step<double>(x, coef, out, model_output, history, variance, noise, x0_out, noise_out, clip,
                                  use_x0, draw, var_mode, seed, stream, offset);
        fail_type("sample", "expected dtype float32 or float64, got " + py::str(x.dtype()).cast<std::string>());
      },
      py::arg("x"), py::arg("coef"), py::arg("out"), py::arg("model_output") = py::none(),
      py::arg("history") = py::none(), py::arg("variance") = py::none(), py::arg("noise") = py::none(),
      py::arg("x0_out") = py::none(), py::arg("noise_out") = py::none(), py::arg("clip") = false,
      py::arg("use_x0") = false, py::arg("draw") = false, py::arg("var_mode") = 0, py::arg("seed") = 0,
      py::arg("stream") = 0, py::arg("offset") = 0,
      "One fused Gaussian-diffusion step over 2-D views [n_samples, inner]; returns flags: 1 when a model "
      "output (or variance) is not finite, 2 when the sample x is not, 4 when the noise is not.");
}
