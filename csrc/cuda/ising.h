// C++ API of the CUDA Ising-lattice kernels: device pointers, sizes and a
// cudaStream_t passed as void*; layouts as in csrc/cpu/ising.h. Each returns
// nullptr on success or the CUDA error string.
#pragma once
#include <cstdint>

namespace heatbath {
namespace cuda {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

// spins: [chains, 2, ly * lz, ceil(lx / 64)] packed words; th: [chains, 33];
// up, agree: [nsweeps / rec_every, chains] int64 (written when rec_every > 0);
// chain0: index in the whole run of the first chain (see csrc/cpu/ising.h).
const char* ising_sweep(u32* spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, const u32* th, bool metropolis,
                        u64 seed, u64 sweep0, i64 nsweeps, i64 rec_every, i64* up, i64* agree, void* stream,
                        u64 chain0 = 0);
// up, agree: [chains] int64.
const char* ising_observe(const u32* spins, i64 lx, i64 ly, i64 lz, int dim, i64 chains, i64* up, i64* agree,
                          void* stream);

}  // namespace cuda
}  // namespace heatbath
