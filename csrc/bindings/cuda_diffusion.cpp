// heatbath._cuda: the fused Gaussian-diffusion step. Device pointers and row
// strides arrive as integers from heatbath.diffusion._kernels, which has
// checked shapes, dtypes, devices and contiguity; the coefficient row (or the
// device table of rows) is already in the state's precision. Nothing here
// waits for the device.
#include <pybind11/numpy.h>

#include <cstdint>
#include <cstring>
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

struct Common {
  i64 n, inner;
  int mode;
  py::buffer row;
  std::uintptr_t table;
  i64 table_rows;
  std::uintptr_t tsteps;
  int t_bytes;
  i64 t_stride, t_expect;
  std::uintptr_t x, m, h, v, z, out, x0_out, z_out;
  i64 xs, ms, hs, vs, zs;
  bool clip, use_x0, draw;
  int var_mode;
  u64 seed, sid, offset;
  std::uintptr_t bad, stream;
};

template <class T>
void run(const Common& c) {
  heatbath::cuda::GpuStepArgs<T> a{};
  a.n_samples = c.n;
  a.inner = c.inner;
  a.mode = c.mode;
  if (c.mode == heatbath::cuda::kCoefRow) {
    const py::buffer_info info = c.row.request();
    if (info.itemsize != static_cast<py::ssize_t>(sizeof(T)) || info.size != heatbath::cuda::kGRowWords)
      heatbath::bind::fail_value("row", "expected " + std::to_string(int(heatbath::cuda::kGRowWords)) +
                                            " coefficients in the state's precision");
    std::memcpy(a.row.v, info.ptr, sizeof(a.row.v));
  }
  a.table = cptr<T>(c.table);
  a.table_rows = c.table_rows;
  a.tsteps = reinterpret_cast<const void*>(c.tsteps);
  a.t_bytes = c.t_bytes;
  a.t_stride = c.t_stride;
  a.t_expect = c.t_expect;
  a.x = cptr<T>(c.x);
  a.x_ss = c.xs;
  a.m = cptr<T>(c.m);
  a.m_ss = c.ms;
  a.h = cptr<T>(c.h);
  a.h_ss = c.hs;
  a.v = cptr<T>(c.v);
  a.v_ss = c.vs;
  a.z = cptr<T>(c.z);
  a.z_ss = c.zs;
  a.out = mptr<T>(c.out);
  a.x0_out = mptr<T>(c.x0_out);
  a.z_out = mptr<T>(c.z_out);
  a.flags = heatbath::StepFlags{c.m != 0, c.h != 0, c.use_x0, c.clip, c.x0_out != 0, c.draw, c.var_mode};
  a.seed = c.seed;
  a.stream = c.sid;
  a.offset = c.offset;
  a.bad = mptr<i64>(c.bad);
  const char* err;
  {
    py::gil_scoped_release nogil;
    if constexpr (std::is_same<T, float>::value)
      err = heatbath::cuda::diffusion_step_f32(a, reinterpret_cast<void*>(c.stream));
    else
      err = heatbath::cuda::diffusion_step_f64(a, reinterpret_cast<void*>(c.stream));
  }
  if (err) throw std::runtime_error(std::string("heatbath CUDA kernel 'diffusion_step' failed: ") + err);
}

}  // namespace

HB_BIND(bind_diffusion) {
  m.def(
      "diffusion_step",
      [](bool f64, i64 n, i64 inner, int mode, py::buffer row, std::uintptr_t table, i64 table_rows,
         std::uintptr_t tsteps, int t_bytes, i64 t_stride, i64 t_expect, std::uintptr_t x, i64 xs, std::uintptr_t mo,
         i64 ms, std::uintptr_t h, i64 hs, std::uintptr_t v, i64 vs, std::uintptr_t z, i64 zs, std::uintptr_t out,
         std::uintptr_t x0_out, std::uintptr_t z_out, bool clip, bool use_x0, bool draw, int var_mode, u64 seed,
         u64 sid, u64 offset, std::uintptr_t bad, std::uintptr_t stream) {
        if (n < 0 || inner < 0) heatbath::bind::fail_value("n", "sizes must be >= 0");
        if (var_mode < 0 || var_mode > 2) heatbath::bind::fail_value("var_mode", "must be 0, 1 or 2");
        if (var_mode != 0 && v == 0) heatbath::bind::fail_value("variance", "required for var_mode 1 and 2");
        if (mode < 0 || mode > 2) heatbath::bind::fail_value("mode", "must be 0, 1 or 2");
        if (mode != 0 && table == 0) heatbath::bind::fail_value("table", "required for table modes");
        if (mode == 1 && tsteps == 0) heatbath::bind::fail_value("timestep", "required for mode 1");
        if (tsteps != 0 && t_bytes != 4 && t_bytes != 8)
          heatbath::bind::fail_value("timestep", "expected int32 or int64 timesteps");
        if (x == 0 || out == 0 || bad == 0) heatbath::bind::fail_value("sample", "null device pointer");
        Common c{n,  inner, mode, row, table, table_rows, tsteps, t_bytes, t_stride, t_expect, x, mo, h, v, z, out,
                 x0_out, z_out, xs,  ms,    hs,    vs,         zs,     clip,    use_x0,   draw,     var_mode, seed,
                 sid, offset, bad, stream};
        if (f64)
          run<double>(c);
        else
          run<float>(c);
      },
      "One fused Gaussian-diffusion step on device pointers (see csrc/cuda/diffusion.h); never waits for the "
      "device.");
}
