#!/usr/bin/env bash
# One script for a machine with a GPU: build heatbath there (CUDA module
# forced on), run the whole test suite (CUDA tests included) and the GPU
# benchmarks. Results go under $OUT (default ./gpu-check-out). Needs CUDA,
# cupy, pybind11, scikit-build-core and pytest installed (no network used).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1

echo "== $(date -u) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python --version

start=$(date +%s)
export HEATBATH_CUDA=ON
# Only this GPU's architecture: a faster build.
if [ -z "${CMAKE_CUDA_ARCHITECTURES:-}" ]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '.')
  [ -n "$cap" ] && export CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=${cap}-real ${CMAKE_ARGS:-}"
fi
python -m pip install --no-build-isolation --no-deps -q . || { echo "BUILD FAILED"; exit 1; }
echo "== build: $(( $(date +%s) - start )) s"
python -c "import heatbath; print('cuda built', heatbath.cuda_built(), 'has cuda', heatbath.has_cuda())"

status=0
python -m pytest -q -p no:cacheprovider tests -m gpu -rs --junitxml="$OUT/pytest-gpu.xml" || status=1
python -m pytest -q -p no:cacheprovider tests -x --junitxml="$OUT/pytest-all.xml" || status=1
echo "== tests: $(( $(date +%s) - start )) s"

for b in bench/gpu_bench*.py; do
  name=$(basename "$b" .py)
  timeout 120 python "$b" | tee "$OUT/$name.txt" || status=1
done
echo "== total: $(( $(date +%s) - start )) s, status $status"
exit $status
