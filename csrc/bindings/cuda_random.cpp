// heatbath._cuda: random-number functions.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/random.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cuda::i64;
using heatbath::cuda::u32;
using heatbath::cuda::u64;

namespace {

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}
void* stream_of(std::uintptr_t s) { return reinterpret_cast<void*>(s); }

void check(const char* what, const char* err) {
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel '") + what + "' failed: " + err);
}

void check_n(i64 n) {
  if (n < 0) heatbath::bind::fail_value("n", "must be >= 0, got " + std::to_string(n));
}

}  // namespace

HB_BIND(bind_random) {
  m.def("philox4x32_10", [](std::uintptr_t counter, std::uintptr_t key, std::uintptr_t out, i64 n, std::uintptr_t s) {
    check_n(n);
    py::gil_scoped_release nogil;
    check("philox4x32_10", heatbath::cuda::philox(ptr<const u32>(counter), ptr<const u32>(key), ptr<u32>(out), n,
                                                  stream_of(s)));
  });
  m.def("fill_uniform", [](std::uintptr_t out, i64 n, bool f64, u64 seed, u64 sid, u64 offset, std::uintptr_t s) {
    check_n(n);
    py::gil_scoped_release nogil;
    check("uniform", f64 ? heatbath::cuda::uniform_f64(seed, sid, offset, n, ptr<double>(out), stream_of(s))
                         : heatbath::cuda::uniform_f32(seed, sid, offset, n, ptr<float>(out), stream_of(s)));
  });
  m.def("fill_normal", [](std::uintptr_t out, i64 n, bool f64, u64 seed, u64 sid, u64 offset, std::uintptr_t s) {
    check_n(n);
    py::gil_scoped_release nogil;
    check("normal", f64 ? heatbath::cuda::normal_f64(seed, sid, offset, n, ptr<double>(out), stream_of(s))
                        : heatbath::cuda::normal_f32(seed, sid, offset, n, ptr<float>(out), stream_of(s)));
  });
  m.def("fill_bernoulli", [](std::uintptr_t p, bool p_f64, i64 p_stride, std::uintptr_t out, i64 n,
                             std::uintptr_t bad, u64 seed, u64 sid, u64 offset, std::uintptr_t s) {
    check_n(n);
    py::gil_scoped_release nogil;
    check("bernoulli", p_f64 ? heatbath::cuda::bernoulli_f64(seed, sid, offset, n, ptr<const double>(p), p_stride,
                                                             ptr<std::uint8_t>(out), ptr<i64>(bad), stream_of(s))
                             : heatbath::cuda::bernoulli_f32(seed, sid, offset, n, ptr<const float>(p), p_stride,
                                                             ptr<std::uint8_t>(out), ptr<i64>(bad), stream_of(s)));
  });
  m.def("fill_integers", [](std::uintptr_t out, i64 n, std::int64_t low, u64 range, u64 seed, u64 sid, u64 offset,
                            std::uintptr_t s) {
    check_n(n);
    py::gil_scoped_release nogil;
    check("integers", heatbath::cuda::integers(seed, sid, offset, n, low, range, ptr<std::int64_t>(out),
                                               stream_of(s)));
  });
}
