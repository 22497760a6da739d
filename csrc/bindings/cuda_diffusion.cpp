// heatbath._cuda: the fused Gaussian-diffusion step. Device pointers and row
// strides arrive as integers from heatbath.diffusion._kernels, which has
// checked shapes, dtypes, devices and contiguity.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/diffusion.h"
#include "registry.h"

namespace py = pybind11;
using heatbath::i64;
using heatbath::u64;

namespace {

template <class T>
const T* cptr(std::uintptr_t p) {
  return reinterpret_cast<const T*>(p);
}
template <class T>
T* mptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

template <class T>
void run(i64 n, i64 inner, std::uintptr_t coef, i64 coef_stride, std::uintptr_t x, i64 xs, std::uintptr_t m,
         i64 ms, std::uintptr_t h, i64 hs, std::uintptr_t v, i64 vs, std::uintptr_t z, i64 zs, std::uintptr_t out,
         std::uintptr_t x0_out, std::uintptr_t z_out, bool clip, bool use_x0, bool draw, int var_mode, u64 seed,
         u64 sid, u64 offset, std::uintptr_t bad, std::uintptr_t stream) {
  heatbath::StepArgs<T> a{};
  a.n_samples = n;
  a.inner = inner;
  a.coef = cptr<double>(coef);
  a.coef_stride = coef_stride;
  a.x = cptr<T>(x);
  a.x_ss = xs;
  a.m = cptr<T>(m);
  a.m_ss = ms;
  a.h = cptr<T>(h);
  a.h_ss = hs;
  a.v = cptr<T>(v);
  a.v_ss = vs;
  a.z = cptr<T>(z);
  a.z_ss = zs;
  a.out = mptr<T>(out);
  a.x0_out = mptr<T>(x0_out);
  a.z_out = mptr<T>(z_out);
  a.flags = heatbath::StepFlags{m != 0, h != 0, use_x0, clip, x0_out != 0, draw, var_mode};
  a.seed = seed;
  a.stream = sid;
  a.offset = offset;
  const char* err;
  {
    py::gil_scoped_release nogil;
    if constexpr (std::is_same<T, float>::value)
      err = heatbath::cuda::diffusion_step_f32(a, mptr<i64>(bad), reinterpret_cast<void*>(stream));
    else
      err = heatbath::cuda::diffusion_step_f64(a, mptr<i64>(bad), reinterpret_cast<void*>(stream));
  }
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel 'diffusion_step' failed: ") + err);
}

}  // namespace

HB_BIND(bind_diffusion) {
  m.def(
      "diffusion_step",
      [](bool f64, i64 n, i64 inner, std::uintptr_t coef, i64 coef_stride, std::uintptr_t x, i64 xs,
         std::uintptr_t mo, i64 ms, std::uintptr_t h, i64 hs, std::uintptr_t v, i64 vs, std::uintptr_t z, i64 zs,
         std::uintptr_t out, std::uintptr_t x0_out, std::uintptr_t z_out, bool clip, bool use_x0, bool draw,
         int var_mode, u64 seed, u64 sid, u64 offset, std::uintptr_t bad, std::uintptr_t stream) {
        if (n < 0 || inner < 0) heatbath::bind::fail_value("n", "sizes must be >= 0");
        if (var_mode < 0 || var_mode > 2) heatbath::bind::fail_value("var_mode", "must be 0, 1 or 2");
        if (var_mode != 0 && v == 0) heatbath::bind::fail_value("variance", "required for var_mode 1 and 2");
        if (f64)
          run<double>(n, inner, coef, coef_stride, x, xs, mo, ms, h, hs, v, vs, z, zs, out, x0_out, z_out, clip,
                      use_x0, draw, var_mode, seed, sid, offset, bad, stream);
        else
          run<float>(n, inner, coef, coef_stride, x, xs, mo, ms, h, hs, v, vs, z, zs, out, x0_out, z_out, clip,
                     use_x0, draw, var_mode, seed, sid, offset, bad, stream);
      },
      "One fused Gaussian-diffusion step on device pointers (see csrc/heatbath/diffusion.h).");
}
