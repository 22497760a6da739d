// Argument structs of the restricted Boltzmann machine kernels, shared by the
// CPU API (csrc/cpu/rbm.h: host pointers) and the CUDA API (csrc/cuda/rbm.h:
// device pointers): raw pointers, counts, leading dimensions (row strides in
// elements) and (seed, stream, offset). Element (r, c) of a rows x cols draw
// is stream element offset + r * cols + c. Plain data, no code: the formulas
// are in rbm.h.
#pragma once
#include "defines.h"

namespace heatbath {

// Bernoulli units: p = sigmoid(s_r (x + b) + (1 - s_r) a), sample = [w < p 2^32].
template <class T>
struct RbmBernoulliArgs {
  i64 rows, cols;
  const T* x;       // [rows, ldx] pre-activations (a GEMM's output)
  i64 ldx;
  const T* bias;    // [cols]
  const T* base;    // [cols] base-rate bias a, or nullptr (a = 0)
  const T* scale;   // [rows] inverse temperatures s_r (scale_stride 1), or one value (stride 0)
  i64 scale_stride;
  T* sample;        // [rows, ld_sample] 0/1, or nullptr (no draw)
  i64 ld_sample;
  T* prob;          // [rows, ld_prob] probabilities, or nullptr; may be x itself (same ld)
  i64 ld_prob;
  u64 seed, stream, offset;
};

// Gaussian units: mean = b + sigma (s_r x), sample = b + sigma (s_r x + z).
template <class T>
struct RbmGaussianArgs {
  i64 rows, cols;
  const T* x;       // [rows, ldx]
  i64 ldx;
  const T* bias;    // [cols]
  const T* sigma;   // [cols] (sigma_stride 1) or one value (stride 0)
  i64 sigma_stride;
  const T* scale;   // [rows] or one value (stride 0)
  i64 scale_stride;
  T* sample;        // [rows, ld_sample], or nullptr
  i64 ld_sample;
  T* mean;          // [rows, ld_mean], or nullptr; may be x itself (same ld)
  i64 ld_mean;
  u64 seed, stream, offset;
};

}  // namespace heatbath
