// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011): a counter-based generator, i.e. a keyed bijection of
// a 128-bit counter. Ten rounds, exactly as in Random123; it reproduces the
// published known-answer vectors (tests/test_random_kat.py).
//
// heatbath's stream layout. For a 64-bit seed and a 64-bit stream number,
//   key     = (seed_lo, seed_hi)
//   counter = (block_lo, block_hi, stream_lo, stream_hi)
// Block b yields four 32-bit words. The transforms in distributions.h map
// element j of a draw to a fixed (block, word) pair, so element j is a pure
// function of (seed, stream, offset + j): independent of thread count,
// chunking, SIMD width and device.
#pragma once
#include "defines.h"

namespace heatbath {
inline namespace HB_ISA {

constexpr u32 kPhiloxM0 = 0xD2511F53u;
constexpr u32 kPhiloxM1 = 0xCD9E8D57u;
constexpr u32 kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr u32 kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

// Ten rounds in place on N counters c[i] = (c0..c3) under key (k0, k1). U is
// u32 for one counter or a SIMD vector of u32 for one counter per lane. The
// N counters are independent chains, interleaved round by round, which hides
// the multiply latency on CPUs.
template <int N, class U>
HB_HD void philox4x32_10_n(U (&c)[N][4], u32 k0, u32 k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    for (int i = 0; i < N; ++i) {
      U hi0, lo0, hi1, lo1;
      mulhilo(kPhiloxM0, c[i][0], hi0, lo0);
      mulhilo(kPhiloxM1, c[i][2], hi1, lo1);
      c[i][0] = hi1 ^ c[i][1] ^ k0;
      c[i][1] = lo1;
      c[i][2] = hi0 ^ c[i][3] ^ k1;
      c[i][3] = lo0;
    }
  }
}

template <class U>
HB_HD void philox4x32_10(U& c0, U& c1, U& c2, U& c3, u32 k0, u32 k1) {
  U c[1][4] = {{c0, c1, c2, c3}};
  philox4x32_10_n<1>(c, k0, k1);
  c0 = c[0][0];
  c1 = c[0][1];
  c2 = c[0][2];
  c3 = c[0][3];
}

struct Words4 {
  u32 w[4];
};

// Block b of the stream (seed, stream).
HB_HD Words4 philox_block(u64 seed, u64 stream, u64 block) {
  u32 c0 = static_cast<u32>(block), c1 = static_cast<u32>(block >> 32);
  u32 c2 = static_cast<u32>(stream), c3 = static_cast<u32>(stream >> 32);
  philox4x32_10(c0, c1, c2, c3, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
  return Words4{{c0, c1, c2, c3}};
}

}  // namespace HB_ISA
}  // namespace heatbath
