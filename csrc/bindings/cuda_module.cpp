// heatbath._cuda: the CUDA kernels. Device pointers arrive as integers from
// the Python layer (heatbath._backend), which has checked dtype, size,
// contiguity and device; the cuda_*.cpp binding files forward them with the
// caller's stream.
#include "registry.h"

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "heatbath CUDA kernels (private; use the heatbath package).";
  heatbath::bind::bind_all(m);
}
