// heatbath._core: restricted Boltzmann machine kernels (csrc/cpu/rbm.h).
// Checks dtype, shape, strides, writeability and finiteness, naming the
// argument; releases the GIL around the kernel. Non-finite pre-activations are
// counted by the kernel in its pass and raise ValueError after it.
#include <pybind11/numpy.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "cpu/rbm.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

template <class T>
void check_dtype(const py::array& a, const char* arg) {
  // equivalence, not identity: an array that went through pickle (a Dask
  // worker) carries its own dtype object
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + " (the dtype of 'x'), got " +
                       dtype_name(a));
}

// A 2-D matrix with unit column stride; returns its row stride in elements.
template <class T>
i64 check_matrix(const py::array& a, const char* arg, i64 rows, i64 cols, bool writeable) {
  check_dtype<T>(a, arg);
  if (a.ndim() != 2) fail_value(arg, "expected a 2-D array, got shape " + shape_str(a));
  if (rows >= 0 && (a.shape(0) != rows || a.shape(1) != cols))
    fail_value(arg, "expected shape (" + std::to_string(rows) + ", " + std::to_string(cols) + "), got " +
                        shape_str(a));
  const i64 item = static_cast<i64>(sizeof(T));
  if (a.size() == 0) {
    if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
    return a.shape(1);
  }
  if (a.shape(1) > 1 && a.strides(1) != item) fail_value(arg, "columns must be contiguous (unit stride)");
  if (a.shape(0) > 1 && (a.strides(0) % item != 0 || a.strides(0) < a.shape(1) * item))
    fail_value(arg, "rows must have a positive stride of at least one row");
  if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
  return a.shape(0) > 1 ? a.strides(0) / item : a.shape(1);
}

template <class T>
const T* check_vector(const py::array& a, const char* arg, i64 n) {
  check_dtype<T>(a, arg);
  if (a.ndim() != 1 || a.shape(0) != n)
    fail_value(arg, "expected shape (" + std::to_string(n) + ",), got " + shape_str(a));
  if (n > 1 && a.strides(0) != static_cast<i64>(sizeof(T))) fail_value(arg, "array must be contiguous");
  return static_cast<const T*>(a.data());
}

// An output argument: a numpy array that is written in place (a list would be
// converted to a temporary and the results lost).
py::array out_array(const py::object& o, const char* arg) {
  if (!py::isinstance<py::array>(o)) fail_type(arg, "expected a numpy array (written in place), got " +
                                                        py::str(py::type::of(o).attr("__name__")).cast<std::string>());
  return o.cast<py::array>();
}

template <class T>
void check_finite(const T* p, i64 n, i64 stride, const char* arg) {
  for (i64 k = 0; k < n; ++k)
    if (!std::isfinite(p[k * stride]))
      fail_value(arg, "must be finite, got " + std::to_string(p[k * stride]) + " at index " + std::to_string(k));
}

[[noreturn]] void fail_nonfinite_x(i64 bad) {
  fail_value("x", std::to_string(bad) + " values are NaN or infinite (pre-activations must be finite)");
}

// scale: a Python float (one temperature) or an array of one per row.
template <class T>
const T* scale_ptr(const py::object& scale, const char* arg, i64 n, T& one, i64& stride) {
  if (py::isinstance<py::array>(scale)) {
    stride = 1;
    const T* p = check_vector<T>(scale.cast<py::array>(), arg, n);
    check_finite(p, n, 1, arg);
    return p;
  }
  const double v = scale.cast<double>();
  one = static_cast<T>(v);
  if (!std::isfinite(one)) fail_value(arg, "must be finite, got " + std::to_string(v));
  stride = 0;
  return &one;
}

template <class T>
void bernoulli_t(const py::array& x, const py::array& bias, const py::object& sample, const py::object& prob,
                 const py::object& scale, const py::object& base, u64 seed, u64 stream, u64 offset) {
  heatbath::RbmBernoulliArgs<T> A{};
  A.ldx = check_matrix<T>(x, "x", -1, -1, false);
  A.rows = x.shape(0);
  A.cols = x.shape(1);
  A.x = static_cast<const T*>(x.data());
  A.bias = check_vector<T>(bias, "bias", A.cols);
  check_finite(A.bias, A.cols, 1, "bias");
  T one;
  A.scale = scale_ptr<T>(scale, "scale", A.rows, one, A.scale_stride);
  A.base = base.is_none() ? nullptr : check_vector<T>(base.cast<py::array>(), "base", A.cols);
  if (A.base) check_finite(A.base, A.cols, 1, "base");
  if (!sample.is_none()) {
    py::array s = out_array(sample, "sample");
    A.ld_sample = check_matrix<T>(s, "sample", A.rows, A.cols, true);
    A.sample = static_cast<T*>(s.mutable_data());
  }
  if (!prob.is_none()) {
    py::array p = out_array(prob, "prob");
    A.ld_prob = check_matrix<T>(p, "prob", A.rows, A.cols, true);
    A.prob = static_cast<T*>(p.mutable_data());
  }
  A.seed = seed;
  A.stream = stream;
  A.offset = offset;
  if (offset + static_cast<u64>(A.rows * A.cols) < offset)
    fail_value("offset", "offset + size runs past the end of the stream");
  const auto& t = heatbath::cpu::rbm_table();
  i64 bad;
  {
    py::gil_scoped_release nogil;
    if constexpr (sizeof(T) == 4)
      bad = t.bernoulli_f32(A);
    else
      bad = t.bernoulli_f64(A);
  }
  if (bad) fail_nonfinite_x(bad);
}

template <class T>
void gaussian_t(const py::array& x, const py::array& bias, const py::object& sigma, const py::object& sample,
                const py::object& mean, const py::object& scale, u64 seed, u64 stream, u64 offset) {
  heatbath::RbmGaussianArgs<T> A{};
  A.ldx = check_matrix<T>(x, "x", -1, -1, false);
  A.rows = x.shape(0);
  A.cols = x.shape(1);
  A.x = static_cast<const T*>(x.data());
  A.bias = check_vector<T>(bias, "bias", A.cols);
  check_finite(A.bias, A.cols, 1, "bias");
  T one_sigma, one_scale;
  A.sigma = scale_ptr<T>(sigma, "sigma", A.cols, one_sigma, A.sigma_stride);
  A.scale = scale_ptr<T>(scale, "scale", A.rows, one_scale, A.scale_stride);
  if (!sample.is_none()) {
    py::array s = out_array(sample, "sample");
    A.ld_sample = check_matrix<T>(s, "sample", A.rows, A.cols, true);
    A.sample = static_cast<T*>(s.mutable_data());
  }
  if (!mean.is_none()) {
    py::array m = out_array(mean, "mean");
    A.ld_mean = check_matrix<T>(m, "mean", A.rows, A.cols, true);
    A.mean = static_cast<T*>(m.mutable_data());
  }
  A.seed = seed;
  A.stream = stream;
  A.offset = offset;
  if (offset + static_cast<u64>(A.rows * A.cols) < offset)
    fail_value("offset", "offset + size runs past the end of the stream");
  const auto& t = heatbath::cpu::rbm_table();
  i64 bad;
  {
    py::gil_scoped_release nogil;
    if constexpr (sizeof(T) == 4)
      bad = t.gaussian_f32(A);
    else
      bad = t.gaussian_f64(A);
  }
  if (bad) fail_nonfinite_x(bad);
}

void rbm_bernoulli(const py::array& x, const py::array& bias, const py::object& sample, const py::object& prob,
                   const py::object& scale, const py::object& base, u64 seed, u64 stream, u64 offset) {
  if (py::isinstance<py::array_t<float>>(x))
    bernoulli_t<float>(x, bias, sample, prob, scale, base, seed, stream, offset);
  else if (py::isinstance<py::array_t<double>>(x))
    bernoulli_t<double>(x, bias, sample, prob, scale, base, seed, stream, offset);
  else
    fail_type("x", "expected dtype float32 or float64, got " + dtype_name(x));
}

void rbm_gaussian(const py::array& x, const py::array& bias, const py::object& sigma, const py::object& sample,
                  const py::object& mean, const py::object& scale, u64 seed, u64 stream, u64 offset) {
  if (py::isinstance<py::array_t<float>>(x))
    gaussian_t<float>(x, bias, sigma, sample, mean, scale, seed, stream, offset);
  else if (py::isinstance<py::array_t<double>>(x))
    gaussian_t<double>(x, bias, sigma, sample, mean, scale, seed, stream, offset);
  else
    fail_type("x", "expected dtype float32 or float64, got " + dtype_name(x));
}

}  // namespace

HB_BIND(bind_rbm) {
  m.def("rbm_bernoulli", &rbm_bernoulli, py::arg("x"), py::arg("bias"), py::arg("sample"), py::arg("prob"),
        py::arg("scale"), py::arg("base"), py::arg("seed"), py::arg("stream"), py::arg("offset"),
        "Bernoulli units: prob = sigmoid(scale (x + bias) + (1 - scale) base), sample = Bernoulli(prob).");
  m.def("rbm_gaussian", &rbm_gaussian, py::arg("x"), py::arg("bias"), py::arg("sigma"), py::arg("sample"),
        py::arg("mean"), py::arg("scale"), py::arg("seed"), py::arg("stream"), py::arg("offset"),
        "Gaussian units: mean = bias + sigma scale x, sample = mean + sigma normal.");
}
