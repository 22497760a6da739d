#!/usr/bin/env bash
# Print the path of a position-independent static libgomp.a for this
# machine's GCC, building it first if needed.
#
# A portable wheel links the OpenMP runtime into its modules (libgomp.so of a
# new distribution needs that distribution's glibc). The libgomp.a that GCC
# ships is often compiled without -fPIC, which cannot go into a shared
# object; this script then compiles libgomp from the source of the same GCC:
#   - GCC's own libgomp.a when it is position-independent;
#   - else the source tarball named by GCC_SOURCE (gcc-X.Y.Z.tar.xz or .gz);
#   - else, on Debian and Ubuntu, the source package of the installed gcc-N,
#     fetched with apt-get (deb-src lines are added for this fetch only).
# The result is kept in ${XDG_CACHE_HOME:-~/.cache}/heatbath-build.
set -euo pipefail

CC=${CC:-gcc}
major=$("$CC" -dumpversion | cut -d. -f1)
full=$("$CC" -dumpfullversion 2>/dev/null || "$CC" -dumpversion)

own=$("$CC" -print-file-name=libgomp.a)
if [ -f "$own" ] && [ "$(readelf -r "$own" 2>/dev/null | grep -c -E 'R_X86_64_(TPOFF32|32S?) ' || true)" = 0 ]; then
  echo "$own"
  exit 0
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/heatbath-build/libgomp-gcc-$full
if [ -f "$cache/libgomp.a" ]; then
  echo "$cache/libgomp.a"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/log
{
  src=${GCC_SOURCE:-}
  if [ -z "$src" ]; then
    command -v apt-get >/dev/null || {
      echo "static_libgomp: $own is not position-independent; set GCC_SOURCE to a gcc-$full source tarball" >&2
      exit 1
    }
    pkg=gcc-$major
    version=$(dpkg-query -W -f='${Version}' "$pkg")
    apt=$work/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources"
    # The machine's own package sources, as source-package sources.
    [ -f /etc/apt/sources.list ] && sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt/sources/main.list"
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      case $f in
        *.list) sed -n 's/^deb /deb-src /p' "$f" >"$apt/sources/$(basename "$f")" ;;
        *.sources) sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt/sources/$(basename "$f")" ;;
      esac
    done
    opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources"
          -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
    apt-get "${opts[@]}" update
    (cd "$work" && apt-get "${opts[@]}" source --download-only "$pkg=$version")
    orig=$(ls "$work"/"${pkg}"_*.orig.tar.* | head -1)
    # Debian's orig tarball holds the upstream tarball.
    inner=$(tar tf "$orig" | grep -E "/gcc-[0-9.]+(-dfsg)?\.tar\.(xz|gz|bz2)$" | head -1 || true)
    if [ -n "$inner" ]; then
      tar xf "$orig" -C "$work" "$inner"
      src=$work/$inner
    else
      src=$orig
    fi
  fi
  top=$(tar tf "$src" | head -1 | cut -d/ -f1)
  tar xf "$src" -C "$work" --wildcards "$top/libgomp/*" "$top/include/*" "$top/config/*" \
    "$top/config.guess" "$top/config.sub" "$top/install-sh" "$top/ltmain.sh" "$top/missing" \
    "$top/config-ml.in" "$top/mkinstalldirs" "$top/depcomp" "$top/compile" "$top/gcc/BASE-VER" \
    "$top/gcc/DATESTAMP" "$top/gcc/DEV-PHASE"
  mkdir -p "$work/build"
  cd "$work/build"
  host=$("$CC" -dumpmachine)
  CC=$CC CFLAGS="-O2 -g0" "$work/$top/libgomp/configure" --host="$host" --build="$host" --target="$host" \
    --disable-multilib --disable-shared --enable-static --with-pic
  make -j"${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
  mkdir -p "$cache"
  cp .libs/libgomp.a "$cache/libgomp.a.tmp"
  mv "$cache/libgomp.a.tmp" "$cache/libgomp.a"
} >"$log" 2>&1 || {
  cat "$log" >&2
  echo "static_libgomp: could not build libgomp.a (log above)" >&2
  exit 1
}
echo "$cache/libgomp.a"
