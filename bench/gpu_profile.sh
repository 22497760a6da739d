#!/usr/bin/env bash
# Nsight Compute on the hot GPU kernels (one launch each): duration, SM and
# DRAM throughput, registers, occupancy and executed instructions, for the
# design notes in docs/ising.md and docs/diffusion.md. Run after
# bench/gpu_check.sh has installed heatbath; output under $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
metrics=gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active
prog=$(mktemp --suffix=.py)
cat > "$prog" <<'PY'
import numpy as np, cupy as cp
from heatbath.ebm import SparseIsing, SparsePotts
from heatbath.ebm.graphs import dtm_grid_edges
from heatbath.diffusion import DDPMScheduler, DDIMScheduler
from heatbath import random as hr
x = cp.random.standard_normal((64, 3, 256, 256), dtype=cp.float32)
e = cp.random.standard_normal((64, 3, 256, 256), dtype=cp.float32)
s = DDPMScheduler(); s.set_timesteps(50); s.step(e, 500, x, seed=1).prev_sample
d = DDIMScheduler(); d.set_timesteps(50); d.step(e, 500, x).prev_sample
o = cp.empty(100_000_000, dtype=cp.float32)
hr.uniform(None, 3, out=o); hr.normal(None, 3, out=o)
i, j, w, c = dtm_grid_edges(side=70, seed=0)
m = SparseIsing.from_edges(4900, list(zip(i.tolist(), j.tolist())), w, n_chains=10000, colouring=c, seed=1,
                           device="cuda", beta=np.ones(10000))
m.sweep(1)
p = SparsePotts.from_edges(4900, list(zip(i.tolist(), j.tolist())), w, K=3, n_chains=10000, colouring=c, seed=1,
                           device="cuda")
p.sweep(1)
cp.cuda.Device().synchronize()
PY
timeout 150 ncu --clock-control none --metrics "$metrics" -k regex:'k_spins|k_step|k_fill|k_potts' -c 7 python "$prog" \
  > "$OUT/ncu.txt" 2>&1
grep -E "^  [a-z ]*[a-z_]*k_|void|duration|throughput|registers|warps_active|inst_executed" "$OUT/ncu.txt" \
  | sed -E 's/\(unsigned.*//; s/ +/ /g' | head -80
