// C++ API of the CUDA random-number kernels: device pointers, element counts,
// (seed, stream, offset) and a cudaStream_t passed as void*. Each returns
// nullptr on success or the CUDA error string of the launch.
#pragma once
#include <cstdint>

namespace heatbath {
namespace cuda {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

const char* philox(const u32* counter /*[n,4]*/, const u32* key /*[n,2]*/, u32* out /*[n,4]*/, i64 n,
                   void* stream);
const char* uniform_f32(u64 seed, u64 stream_id, u64 offset, i64 n, float* out, void* stream);
const char* uniform_f64(u64 seed, u64 stream_id, u64 offset, i64 n, double* out, void* stream);
const char* normal_f32(u64 seed, u64 stream_id, u64 offset, i64 n, float* out, void* stream);
const char* normal_f64(u64 seed, u64 stream_id, u64 offset, i64 n, double* out, void* stream);
// p: [n] or one value (p_stride 0); bad: one device int64 that counts p
// outside [0, 1] (added to, not reset).
const char* bernoulli_f32(u64 seed, u64 stream_id, u64 offset, i64 n, const float* p, i64 p_stride,
                          std::uint8_t* out, i64* bad, void* stream);
const char* bernoulli_f64(u64 seed, u64 stream_id, u64 offset, i64 n, const double* p, i64 p_stride,
                          std::uint8_t* out, i64* bad, void* stream);
const char* integers(u64 seed, u64 stream_id, u64 offset, i64 n, std::int64_t low, u64 range,
                     std::int64_t* out, void* stream);

}  // namespace cuda
}  // namespace heatbath
