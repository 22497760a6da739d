// C++ API of the CPU Ising-lattice kernels (multi-spin coded). Knows nothing
// of Python: raw pointers and sizes. The packed layout and the counter layout
// are documented in csrc/heatbath/ising.h.
#pragma once
#include <cstdint>

#include "dispatch.h"

namespace heatbath {
namespace cpu {

// The lattice: sides lx, ly, lz (lz = 1 for 2D), every side even; lx <= 64 or
// a multiple of 64. Packed spins: [chains, 2 colours, rows = ly lz, wpr]
// uint32 words, wpr = ceil(lx / 64).
struct IsingShape {
  i64 lx, ly, lz;
  int dim;  // 2 or 3
  i64 chains;
};

struct IsingTable {
  // Runs nsweeps sweeps (colour 0, then colour 1) of the chains; sweep t uses
  // Philox stream sweep0 + t. th: [chains, 33] words per chain: 32 bit masks
  // of classes (bit b of the thresholds, b = 0..31), then the mask of classes
  // whose threshold is 2^32. When rec_every > 0, after every rec_every-th
  // sweep writes the chain's number of up spins to up[rec, chain] and of
  // agreeing nearest-neighbour bonds to agree[rec, chain] (int64). chain0:
  // index in the whole run of the first chain here (its words' Philox ids
  // start at chain0 * words per chain), so that chains [a, b) of a run
  // swept here equal chains a .. b - 1 of the run swept in one piece.
  void (*sweep)(std::uint32_t* spins, const IsingShape& shape, const std::uint32_t* th, bool metropolis, u64 seed,
                u64 sweep0, i64 nsweeps, i64 rec_every, i64* up, i64* agree, u64 chain0);
  // up[chain], agree[chain] of the current state.
  void (*observe)(const std::uint32_t* spins, const IsingShape& shape, i64* up, i64* agree);
  // spins8: [chains, lz, ly, lx] int8 (> 0 means up) <-> packed words.
  void (*pack)(const std::int8_t* spins8, const IsingShape& shape, std::uint32_t* packed);
  void (*unpack)(const std::uint32_t* packed, const IsingShape& shape, std::int8_t* spins8);
};

}  // namespace cpu
}  // namespace heatbath

HB_DECLARE_ISA_TABLE(IsingTable, ising_table)
