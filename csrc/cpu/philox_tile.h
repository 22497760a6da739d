// Philox over a whole tile of blocks on SIMD vectors, for the CPU loops that
// are compiled once per instruction-set level (include after
// heatbath/distributions.h).
#pragma once
#include "heatbath/distributions.h"

namespace heatbath {
inline namespace HB_ISA {

#if defined(HB_HAVE_SIMD)
// Vectors per tile: kChains independent Philox chains of simd::kWidth lanes.
constexpr int kChains = kTileBlocks / simd::kWidth;

// Philox on the kTileBlocks blocks of tile t: c[v][l] holds word l of blocks
// base + v * kWidth + lane.
inline void philox_tile_vec(u64 seed, u64 stream, u64 t, vu32 (&c)[kChains][4]) {
  const u64 base = t * kTileBlocks;
  vu32 lane;
  for (int i = 0; i < simd::kWidth; ++i) lane[i] = static_cast<u32>(i);
  for (int v = 0; v < kChains; ++v) {
    // base is a multiple of kTileBlocks, so the low word cannot carry.
    c[v][0] = lane + static_cast<u32>(base + v * simd::kWidth);
    c[v][1] = vu32{} + static_cast<u32>(base >> 32);
    c[v][2] = vu32{} + static_cast<u32>(stream);
    c[v][3] = vu32{} + static_cast<u32>(stream >> 32);
  }
  philox4x32_10_n<kChains>(c, static_cast<u32>(seed), static_cast<u32>(seed >> 32));
}
#endif

}  // namespace HB_ISA
}  // namespace heatbath
