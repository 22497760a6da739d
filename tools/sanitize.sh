#!/usr/bin/env bash
# The CPU module built with AddressSanitizer and UndefinedBehaviorSanitizer
# (the base instruction-set level only, -O1, no link-time optimization; see
# HEATBATH_SANITIZE in CMakeLists.txt), and the tests that reach the C++
# kernels run against it: any out-of-bounds access, use after free or
# undefined behaviour aborts the test run (float-cast-overflow too, a NaN or
# out-of-range float converted to an int, which GCC's "undefined" leaves out).
#
#   bash tools/sanitize.sh [PYTHON]
#
# A fresh virtual environment in .venv-asan, the build in build/asan; the
# tests run from a copy outside the source tree, against the installed module.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=${1:-python3}

rm -rf .venv-asan
"$py" -m venv .venv-asan
.venv-asan/bin/python -m pip install --quiet --upgrade pip
.venv-asan/bin/python -m pip install --quiet pytest scipy scikit-learn
HEATBATH_SANITIZE=address,undefined,float-cast-overflow HEATBATH_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  .venv-asan/bin/python -m pip install --quiet -Cbuild-dir=build/asan .

# Python itself is not instrumented: the ASan runtime is preloaded, with the
# C++ runtime (ASan's interceptor of C++ exceptions needs it loaded first);
# leak checks off (the interpreter keeps its allocations to the end).
cxx=${CXX:-g++}
preload="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libstdc++.so)"
suite=$(mktemp -d)
cp -r tests pyproject.toml "$suite/"
cd "$suite"
LD_PRELOAD=$preload \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
OPENBLAS_NUM_THREADS=1 \
  "$repo/.venv-asan/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_random_kat.py tests/test_random_errors.py tests/test_random_invariance.py \
    tests/test_rbm_kernels.py tests/test_sparse_gibbs.py tests/test_sparse_observe.py \
    tests/test_ising_lattice.py tests/test_diffusion_steps.py tests/test_dtm_kernels.py \
    tests/test_packed_rows.py tests/test_hardening.py tests/test_fuzz.py
