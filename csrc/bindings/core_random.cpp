// heatbath._core: random-number functions.
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>

#include "cpu/random.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cpu::i64;
using heatbath::cpu::u32;
using heatbath::cpu::u64;

namespace {

using heatbath::bind::fail_type;
using heatbath::bind::fail_value;

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A C-contiguous array of dtype T; writeable when asked.
template <class T>
void check_array(const py::array& a, const char* arg, bool writeable) {
  // equivalence, not identity: an array that went through pickle (a Dask
  // worker) carries its own dtype object
  if (!py::isinstance<py::array_t<T>>(a))
    fail_type(arg, "expected dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " + dtype_name(a));
  if (!(a.flags() & py::array::c_style)) fail_value(arg, "array must be C-contiguous");
  if (writeable && !a.writeable()) fail_value(arg, "array is read-only");
}

void check_bytes(const py::array& a, const char* arg) {
  if (a.itemsize() != 1 || !(a.dtype().kind() == 'u' || a.dtype().kind() == 'i' || a.dtype().kind() == 'b'))
    fail_type(arg, "expected a 1-byte dtype (uint8, int8 or bool), got " + dtype_name(a));
  if (!(a.flags() & py::array::c_style)) fail_value(arg, "array must be C-contiguous");
  if (!a.writeable()) fail_value(arg, "array is read-only");
}

void philox(const py::array& counter, const py::array& key, py::array& out) {
  check_array<u32>(counter, "counter", false);
  check_array<u32>(key, "key", false);
  check_array<u32>(out, "out", true);
  const i64 n = counter.size() / 4;
  if (counter.size() % 4 != 0) fail_value("counter", "size must be a multiple of 4");
  if (key.size() != 2 * n) fail_value("key", "must hold 2 words per counter");
  if (out.size() != 4 * n) fail_value("out", "must hold 4 words per counter");
  const u32* c = static_cast<const u32*>(counter.data());
  const u32* k = static_cast<const u32*>(key.data());
  u32* o = static_cast<u32*>(out.mutable_data());
  py::gil_scoped_release nogil;
  heatbath::cpu::random_table().philox(c, k, o, n);
}

// Fills a float32 or float64 array with f32(...) or f64(...) of the table.
template <class F32, class F64>
void fill_float(py::array& out, u64 seed, u64 stream, u64 offset, F32 f32, F64 f64) {
  const i64 n = out.size();
  if (py::isinstance<py::array_t<float>>(out)) {
    check_array<float>(out, "out", true);
    float* p = static_cast<float*>(out.mutable_data());
    py::gil_scoped_release nogil;
    f32(seed, stream, offset, n, p);
  } else if (py::isinstance<py::array_t<double>>(out)) {
    check_array<double>(out, "out", true);
    double* p = static_cast<double*>(out.mutable_data());
    py::gil_scoped_release nogil;
    f64(seed, stream, offset, n, p);
  } else {
    fail_type("out", "expected dtype float32 or float64, got " + dtype_name(out));
  }
}

void fill_uniform(py::array& out, u64 seed, u64 stream, u64 offset) {
  const auto& t = heatbath::cpu::random_table();
  fill_float(out, seed, stream, offset, t.uniform_f32, t.uniform_f64);
}

void fill_normal(py::array& out, u64 seed, u64 stream, u64 offset) {
  const auto& t = heatbath::cpu::random_table();
  fill_float(out, seed, stream, offset, t.normal_f32, t.normal_f64);
}

// p has out.size elements, or one (broadcast).
void fill_bernoulli(const py::array& p, py::array& out, u64 seed, u64 stream, u64 offset) {
  check_bytes(out, "out");
  const i64 n = out.size();
  if (!(p.size() == n || p.size() == 1))
    fail_value("p", "size " + std::to_string(p.size()) + " does not match out size " + std::to_string(n));
  const i64 stride = p.size() == 1 ? 0 : 1;
  auto* o = static_cast<std::uint8_t*>(out.mutable_data());
  const auto& t = heatbath::cpu::random_table();
  i64 bad = 0;
  if (n == 0) return;
  if (py::isinstance<py::array_t<float>>(p)) {
    check_array<float>(p, "p", false);
    const float* pp = static_cast<const float*>(p.data());
    py::gil_scoped_release nogil;
    bad = t.bernoulli_f32(seed, stream, offset, n, pp, stride, o);
  } else if (py::isinstance<py::array_t<double>>(p)) {
    check_array<double>(p, "p", false);
    const double* pp = static_cast<const double*>(p.data());
    py::gil_scoped_release nogil;
    bad = t.bernoulli_f64(seed, stream, offset, n, pp, stride, o);
  } else {
    fail_type("p", "expected dtype float32 or float64, got " + dtype_name(p));
  }
  if (bad) fail_value("p", std::to_string(bad) + " probabilities are NaN or outside [0, 1]");
}

void fill_integers(py::array& out, std::int64_t low, u64 range, u64 seed, u64 stream, u64 offset) {
  check_array<std::int64_t>(out, "out", true);
  auto* o = static_cast<std::int64_t*>(out.mutable_data());
  const i64 n = out.size();
  py::gil_scoped_release nogil;
  heatbath::cpu::random_table().integers(seed, stream, offset, n, low, range, o);
}

}  // namespace

HB_BIND(bind_random) {
  m.def("philox4x32_10", &philox, py::arg("counter"), py::arg("key"), py::arg("out"));
  m.def("fill_uniform", &fill_uniform, py::arg("out"), py::arg("seed"), py::arg("stream"), py::arg("offset"));
  m.def("fill_normal", &fill_normal, py::arg("out"), py::arg("seed"), py::arg("stream"), py::arg("offset"));
  m.def("fill_bernoulli", &fill_bernoulli, py::arg("p"), py::arg("out"), py::arg("seed"), py::arg("stream"),
        py::arg("offset"));
  m.def("fill_integers", &fill_integers, py::arg("out"), py::arg("low"), py::arg("range"), py::arg("seed"),
        py::arg("stream"), py::arg("offset"));
}
