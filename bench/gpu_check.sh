#!/usr/bin/env bash
# One script for a machine with a GPU: build heatbath there (CUDA module
# forced on, this GPU's architecture only), run the GPU tests and the rest of
# the suite, then the GPU benchmarks, and end with one table of every GPU goal
# and whether it is met. Results go under $OUT (default ./gpu-check-out).
# Needs CUDA, cupy, pybind11, scikit-build-core and pytest (no network used);
# torch, JAX and thrml are used as peers where importable (wheels in .whl/
# are installed first when present).
#
#   bash bench/gpu_check.sh [--quick]     # --quick: GPU tests and benchmarks only
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
quick=0
[ "${1:-}" = "--quick" ] && quick=1

echo "== $(date -u) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader || true
python --version

start=$(date +%s)
if ls .whl/*.whl >/dev/null 2>&1; then
  python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX (THRML) shares the GPU with cupy
export HEATBATH_CUDA=ON
# Only this GPU's architecture: a faster build.
if [ -z "${CMAKE_CUDA_ARCHITECTURES:-}" ]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '.')
  [ -n "$cap" ] && export CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=${cap}-real ${CMAKE_ARGS:-}"
fi
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
python -m pip install --no-build-isolation --no-deps -q . || { echo "BUILD FAILED"; exit 1; }
echo "== build: $(( $(date +%s) - start )) s"
python -c "import heatbath; print('cuda built', heatbath.cuda_built(), 'has cuda', heatbath.has_cuda())"

export HEATBATH_GOALS="$OUT/goals.jsonl"
rm -f "$HEATBATH_GOALS"
status=0
cd "$OUT"  # the tests and benchmarks run against the installed package
python -m pytest -q -p no:cacheprovider "$OLDPWD/tests" -m gpu -rs --junitxml="$OUT/pytest-gpu.xml" || status=1
if [ $quick = 0 ]; then
  xdist=""
  python -c "import xdist" 2>/dev/null && xdist="-n 8"
  python -m pytest -q -p no:cacheprovider "$OLDPWD/tests" -m "not gpu" -x $xdist --junitxml="$OUT/pytest-cpu.xml" \
    || status=1
fi
cd "$OLDPWD"
echo "== tests: $(( $(date +%s) - start )) s"

for b in bench/gpu_bench*.py; do
  name=$(basename "$b" .py)
  PYTHONUNBUFFERED=1 timeout 150 python "$b" | tee "$OUT/$name.txt" || status=1
done
if [ -n "${HEATBATH_SPIN_VARIANTS:-}" ]; then  # register budgets of the spin kernel, compared
  for v in $HEATBATH_SPIN_VARIANTS; do
    echo "== spin kernel variant: $v blocks per SM"
    HEATBATH_GOALS= HEATBATH_SPIN_BLOCKS=$v timeout 60 python bench/gpu_bench_ising.py --sparse-only --no-thrml \
      --chains 10000 100000 | grep -E "SparseIsing ell" || true
  done
fi
echo "== total: $(( $(date +%s) - start )) s, status $status"
python bench/goals.py "$HEATBATH_GOALS"
exit $status
