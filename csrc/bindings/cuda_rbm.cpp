// heatbath._cuda: restricted Boltzmann machine kernels. Device pointers arrive
// as integers (0 for an absent array) from heatbath.ebm.rbm, which has
// checked dtype, shape, strides and device; leading dimensions are in
// elements.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/rbm.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::cuda::i64;
using heatbath::cuda::u64;

namespace {

void check(const char* what, const char* err) {
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel '") + what + "' failed: " + err);
}

void check_dims(i64 rows, i64 cols) {
  if (rows < 0) heatbath::bind::fail_value("rows", "must be >= 0, got " + std::to_string(rows));
  if (cols < 1) heatbath::bind::fail_value("cols", "must be >= 1, got " + std::to_string(cols));
}

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

template <class T>
void bernoulli_t(i64 rows, i64 cols, std::uintptr_t x, i64 ldx, std::uintptr_t bias, std::uintptr_t base,
                 std::uintptr_t scale, double scale_value, std::uintptr_t sample, i64 ld_sample, std::uintptr_t prob,
                 i64 ld_prob, u64 seed, u64 sid, u64 offset, std::uintptr_t s) {
  heatbath::RbmBernoulliArgs<T> A{rows, cols, ptr<const T>(x), ldx, ptr<const T>(bias), ptr<const T>(base),
                                       ptr<const T>(scale), scale ? 1 : 0, ptr<T>(sample), ld_sample, ptr<T>(prob),
                                       ld_prob, seed, sid, offset};
  py::gil_scoped_release nogil;
  if constexpr (sizeof(T) == 4)
    check("rbm_bernoulli", heatbath::cuda::rbm_bernoulli_f32(A, static_cast<float>(scale_value),
                                                             reinterpret_cast<void*>(s)));
  else
    check("rbm_bernoulli", heatbath::cuda::rbm_bernoulli_f64(A, scale_value, reinterpret_cast<void*>(s)));
}

template <class T>
void gaussian_t(i64 rows, i64 cols, std::uintptr_t x, i64 ldx, std::uintptr_t bias, std::uintptr_t sigma,
                double sigma_value, std::uintptr_t scale, double scale_value, std::uintptr_t sample, i64 ld_sample,
                std::uintptr_t mean, i64 ld_mean, u64 seed, u64 sid, u64 offset, std::uintptr_t s) {
  heatbath::RbmGaussianArgs<T> A{rows, cols, ptr<const T>(x), ldx, ptr<const T>(bias), ptr<const T>(sigma),
                                      sigma ? 1 : 0, ptr<const T>(scale), scale ? 1 : 0, ptr<T>(sample), ld_sample,
                                      ptr<T>(mean), ld_mean, seed, sid, offset};
  py::gil_scoped_release nogil;
  if constexpr (sizeof(T) == 4)
    check("rbm_gaussian", heatbath::cuda::rbm_gaussian_f32(A, static_cast<float>(sigma_value),
                                                           static_cast<float>(scale_value), reinterpret_cast<void*>(s)));
  else
    check("rbm_gaussian", heatbath::cuda::rbm_gaussian_f64(A, sigma_value, scale_value, reinterpret_cast<void*>(s)));
}

}  // namespace

HB_BIND(bind_rbm) {
  m.def("rbm_bernoulli", [](i64 rows, i64 cols, bool f64, std::uintptr_t x, i64 ldx, std::uintptr_t bias,
                            std::uintptr_t base, std::uintptr_t scale, double scale_value, std::uintptr_t sample,
                            i64 ld_sample, std::uintptr_t prob, i64 ld_prob, u64 seed, u64 sid, u64 offset,
                            std::uintptr_t s) {
    check_dims(rows, cols);
    (f64 ? bernoulli_t<double> : bernoulli_t<float>)(rows, cols, x, ldx, bias, base, scale, scale_value, sample,
                                                      ld_sample, prob, ld_prob, seed, sid, offset, s);
  });
  m.def("rbm_gaussian", [](i64 rows, i64 cols, bool f64, std::uintptr_t x, i64 ldx, std::uintptr_t bias,
                           std::uintptr_t sigma, double sigma_value, std::uintptr_t scale, double scale_value,
                           std::uintptr_t sample, i64 ld_sample, std::uintptr_t mean, i64 ld_mean, u64 seed, u64 sid,
                           u64 offset, std::uintptr_t s) {
    check_dims(rows, cols);
    (f64 ? gaussian_t<double> : gaussian_t<float>)(rows, cols, x, ldx, bias, sigma, sigma_value, scale, scale_value,
                                                    sample, ld_sample, mean, ld_mean, seed, sid, offset, s);
  });
}
