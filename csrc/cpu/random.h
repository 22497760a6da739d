// C++ API of the CPU random-number kernels. Knows nothing of Python: raw
// pointers, element counts, (seed, stream, offset). Element j of a fill is
// element offset + j of the stream (seed, stream); see
// csrc/heatbath/distributions.h for the element-to-counter map.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace heatbath {
namespace cpu {

// One implementation of every kernel per instruction-set level; see
// dispatch.h.
struct RandomTable {
  // counter: [n, 4], key: [n, 2], out: [n, 4]
  void (*philox)(const u32* counter, const u32* key, u32* out, i64 n);
  void (*uniform_f32)(u64 seed, u64 stream, u64 offset, i64 n, float* out);
  void (*uniform_f64)(u64 seed, u64 stream, u64 offset, i64 n, double* out);
  void (*normal_f32)(u64 seed, u64 stream, u64 offset, i64 n, float* out);
  void (*normal_f64)(u64 seed, u64 stream, u64 offset, i64 n, double* out);
  // p: [n] (or one value broadcast when p_stride == 0); out: [n] of 0/1.
  // Returns the number of p outside [0, 1] or NaN (their outputs are 0).
  i64 (*bernoulli_f32)(u64 seed, u64 stream, u64 offset, i64 n, const float* p, i64 p_stride,
                       std::uint8_t* out);
  i64 (*bernoulli_f64)(u64 seed, u64 stream, u64 offset, i64 n, const double* p, i64 p_stride,
                       std::uint8_t* out);
  // Uniform integers in [low, low + range); range >= 1 (range == 0 means 2^64).
  void (*integers)(u64 seed, u64 stream, u64 offset, i64 n, std::int64_t low, u64 range,
                   std::int64_t* out);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(RandomTable, random_table)
