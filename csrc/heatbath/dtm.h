// Formulas of the DTM learning kernels (csrc/cpu/dtm_kernels.cpp and
// csrc/cuda/dtm.cu), written once for both.
//
// Moments of packed +/-1 spins are kept as integer counts: for a node the
// number of up spins, for a pair of nodes the number of chains in which the
// two agree, summed over chains and recorded sweeps. The float64 moments
// follow from a count u out of n values as (2 u - n) / n: the mean of the
// +/-1 values (or of their products), the exact integer sum divided once, so
// they equal a float64 mean of the unpacked states to the bit.
//
// The parameter update is one Adam ascent step on the contrastive gradient,
// in the order of operations of the numpy code it replaces; with contraction
// off (-ffp-contract=off, --fmad=false) the CPU and the GPU round alike.
#pragma once
#include "defines.h"
#include "distributions.h"  // sqrt_f64
#include "dtm_args.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace heatbath {
inline namespace HB_ISA {

HB_HD int popc_u32(u32 x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

// Valid-chain mask of word k of a packed row of `chains` chains (the bits
// past the last chain of the last word are padding, never counted).
HB_HD u32 chain_mask(i64 k, i64 chains) {
  const i64 rest = chains - 32 * k;
  return rest >= 32 ? 0xffffffffu : ((u32(1) << rest) - 1u);
}

// (2 count - n) / n: the float64 mean of n values +/-1 of which `count` are +1.
HB_HD double spin_mean(i64 count, i64 n) { return static_cast<double>(2 * count - n) / static_cast<double>(n); }

// One Adam ascent step of parameter p on gradient g:
//   m = b1 m + (1 - b1) g;  v = b2 v + ((1 - b2) g) g;
//   p = p + (lr (m / c1)) / (sqrt(v / c2) + eps).
HB_HD void adam_ascent(double& p, double& m, double& v, double g, const AdamCoefficients& a) {
  m = m * a.b1;
  m = m + a.one_minus_b1 * g;
  v = v * a.b2;
  v = v + (a.one_minus_b2 * g) * g;
  p = p + (a.lr * (m / a.c1)) / (sqrt_f64(v / a.c2) + a.eps);
}

// Contrastive gradient of coupling (i, j) with weight decay and the adaptive
// correlation penalty cp (skipped when cp == 0):
//   g = (<s_i s_j>+ - <s_i s_j>-) - wd w + cp (<s_i>- <s_j>- - <s_i s_j>-).
HB_HD double coupling_gradient(double pos2, double neg2, double neg_i, double neg_j, double w, double wd,
                               double cp) {
  double g = (pos2 - neg2) - wd * w;
  if (cp != 0.0) g = g + cp * (neg_i * neg_j - neg2);
  return g;
}

}  // namespace HB_ISA
}  // namespace heatbath
