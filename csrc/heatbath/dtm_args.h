// Argument structs of the DTM learning kernels, shared by the CPU API
// (csrc/cpu/dtm.h: host pointers) and the CUDA API (csrc/cuda/dtm.h: device
// pointers). Plain data, no code: the formulas are in dtm.h.
#pragma once
#include "defines.h"

namespace heatbath {

struct AdamCoefficients {
  double lr;            // step size
  double b1, b2;        // decay rates of the first and second moments
  double one_minus_b1;  // 1 - b1 and 1 - b2 as the caller rounds them
  double one_minus_b2;
  double c1, c2;        // bias corrections 1 - b1^t and 1 - b2^t
  double eps;
};

// One Adam step of a DTM step's parameters from the moment counts of its two
// phases, the new values also written, as float32, into the Gibbs engine's
// CSR weights and biases.
struct DtmAdamArgs {
  i64 n_edges, n_nodes;
  const std::int32_t* edge_i;  // [n_edges] the two nodes of each coupling
  const std::int32_t* edge_j;  // [n_edges]
  const i64* pos_up;           // [n_nodes] positive phase: up counts
  const i64* pos_agree;        // [n_edges] positive phase: agreement counts
  i64 pos_n;                   // positive phase: values per count (records x chains)
  const i64* neg_up;           // [n_nodes] negative phase
  const i64* neg_agree;        // [n_edges]
  i64 neg_n;
  double* w;                   // [n_edges] couplings, updated
  double* mw;                  // [n_edges] Adam moments of the couplings, updated
  double* vw;
  double* b;                   // [n_nodes] biases, updated
  double* mb;                  // [n_nodes]
  double* vb;
  double weight_decay, cp;
  AdamCoefficients adam;
  float* engine_w;             // the engine's CSR weights: edge e at engine_pos[2 e] and [2 e + 1]
  const i64* engine_pos;       // [2 n_edges]
  float* engine_bias;          // [n_nodes] (the engine's first n_nodes biases)
};

}  // namespace heatbath
