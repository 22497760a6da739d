#!/usr/bin/env python3
"""Link against an older glibc than the build machine's, and check the result.

A shared object linked on a machine with glibc 2.36 binds each C library
function to the newest version of it there (``exp@GLIBC_2.29``,
``pthread_once@GLIBC_2.34``), so it refuses to load where glibc is older and
auditwheel gives it no manylinux tag older than the build machine. glibc keeps
every older version of each symbol, and a binary linked on an older system
keeps working on newer ones; what is missing is only a link against the older
versions.

``make`` writes stand-in libraries for that link: for each library of glibc on
this machine (libc, libm, ld.so, and libpthread, libdl, librt, libutil,
libanl, which glibc 2.34 merged into libc), a shared object with the same
soname that defines each symbol the real one has at the newest version not
later than the chosen glibc, and no symbol glibc did not have then. Linking
with ``-L DIR`` ahead of the system folders (CMake:
``-DHEATBATH_GLIBC_STUBS=DIR``) binds every reference to a version that glibc
had. The stand-ins are only read by the linker; at run time the real glibc
of the machine is used.

``check`` reads built shared objects (or every one in a wheel) and fails when
one of them would still need more than the chosen glibc:

* a reference to a symbol version of glibc newer than the chosen one;
* a reference without a version to a symbol other than Python's own (``Py*``),
  which the linker leaves when no library defined it: on an older glibc it may
  not exist;
* a reference bound to an older version of a symbol whose interface changed
  later, unless the change is one listed in ``SAME_INTERFACE`` below.

Usage::

    python tools/glibc_stubs.py make --glibc 2.28 --out build/glibc-2.28
    python tools/glibc_stubs.py check --glibc 2.28 dist/heatbath-*.whl
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

# sonames of glibc's libraries on x86-64, and the library each links as (-l).
LIBRARIES = {
    "libc.so.6": "c",
    "libm.so.6": "m",
    "ld-linux-x86-64.so.2": None,
    "libpthread.so.0": "pthread",
    "libdl.so.2": "dl",
    "librt.so.1": "rt",
    "libutil.so.1": "util",
    "libanl.so.1": "anl",
}

# glibc 2.34 moved these libraries' functions into libc (each got a new
# version there; the old one stayed, with the same interface). A symbol of
# libc that has a version of 2.34 or later and an older one, and whose name
# is here, belonged to that library.
MOVED = {
    "libpthread.so.0": re.compile(
        r"^(_?_?pthread_.*|sem_.*|thrd_.*|mtx_.*|cnd_.*|tss_.*|call_once|__libpthread.*|"
        r"__errno_location_pthread)$"
    ),
    "libdl.so.2": re.compile(r"^(dlopen|dlclose|dlsym|dlvsym|dlerror|dladdr|dladdr1|dlinfo|dlmopen)$"),
    "librt.so.1": re.compile(r"^(aio_.*|lio_.*|mq_.*|__mq_open_2|shm_open|shm_unlink|timer_.*)$"),
    "libutil.so.1": re.compile(r"^(forkpty|openpty|login|login_tty|logout|logwtmp)$"),
    "libanl.so.1": re.compile(r"^(gai_.*|getaddrinfo_a)$"),
}

# Symbols whose newer version kept the interface of the older one: glibc
# 2.29's exp, exp2, log, log2 and pow differ from the older versions only in
# leaving out the SVID error handling (matherr, _LIB_VERSION), which programs
# cannot select since glibc 2.27; both return the same values and set errno
# alike.
SAME_INTERFACE = {"exp", "exp2", "log", "log2", "pow"}

PYTHON_API = re.compile(r"^_?Py")


def parse_version(name: str):
    m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def version_str(v) -> str:
    return "GLIBC_" + ".".join(map(str, v))


def _sections(elf):
    out = {}
    for s in elf.iter_sections():
        for kind in (GNUVerSymSection, GNUVerDefSection, GNUVerNeedSection, DynamicSection):
            if isinstance(s, kind):
                out[kind] = s
        if isinstance(s, SymbolTableSection) and s.name == ".dynsym":
            out["dynsym"] = s
    return out


def defined_symbols(path: Path):
    """(soname, version nodes, {name: [(version, type, bind, size)]}) of a glibc library."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sec = _sections(elf)
        soname = next(
            (t.soname for t in sec[DynamicSection].iter_tags() if t.entry.d_tag == "DT_SONAME"), path.name
        )
        ndx_name = {}
        nodes = []
        for vd, aux in sec[GNUVerDefSection].iter_versions():
            name = next(iter(aux)).name
            ndx_name[vd["vd_ndx"]] = name
            if not vd["vd_flags"] & 1:  # VER_FLG_BASE names the file itself
                nodes.append(name)
        syms = {}
        versym = sec[GNUVerSymSection]
        for i, s in enumerate(sec["dynsym"].iter_symbols()):
            if s["st_shndx"] == "SHN_UNDEF" or s["st_shndx"] == "SHN_ABS" or not s.name:
                continue
            n = versym.get_symbol(i)["ndx"]
            ver = ndx_name.get(n & 0x7FFF) if isinstance(n, int) else None
            if ver is None or parse_version(ver) is None:
                continue  # GLIBC_PRIVATE and unversioned
            syms.setdefault(s.name, []).append(
                (parse_version(ver), s["st_info"]["type"], s["st_info"]["bind"], s["st_size"])
            )
        return soname, nodes, syms


def find_library(soname: str, cc: str) -> Path:
    out = subprocess.run(
        [cc, f"-print-file-name={soname}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if out and os.path.isabs(out) and os.path.exists(out):
        return Path(os.path.realpath(out))
    for d in (
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ):
        p = Path(d) / soname
        if p.exists():
            return Path(os.path.realpath(p))
    raise SystemExit(f"glibc_stubs: cannot find {soname} on this machine")


def make(args) -> int:
    target = parse_version("GLIBC_" + args.glibc)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cc = args.cc

    libs = {}
    for soname in LIBRARIES:
        _, nodes, syms = defined_symbols(find_library(soname, cc))
        libs[soname] = {"nodes": [n for n in nodes if (parse_version(n) or (999,)) <= target], "syms": {}}
        libs[soname]["all_syms"] = syms

    # Each symbol at its newest version not later than the target; libc's
    # symbols that came from another library go back to it.
    for soname, lib in libs.items():
        if soname in MOVED:
            continue
        for name, defs in lib["all_syms"].items():
            old = [d for d in defs if d[0] <= target]
            if not old:
                continue  # glibc did not have it then
            best = max(old, key=lambda d: d[0])
            home = soname
            if soname == "libc.so.6" and any(d[0] > target for d in defs):
                for other, pattern in MOVED.items():
                    if pattern.match(name) and version_str(best[0]) in libs[other]["nodes"]:
                        home = other
                        break
            libs[home]["syms"][name] = best

    libc_nonshared = subprocess.run(
        [cc, "-print-file-name=libc_nonshared.a"], capture_output=True, text=True, check=False
    ).stdout.strip()
    for soname, lib in libs.items():
        lines = ["\t.text"]
        for name, (ver, typ, bind, size) in sorted(lib["syms"].items()):
            binding = ".weak" if bind == "STB_WEAK" else ".globl"
            if typ == "STT_TLS":
                lines += [
                    '\t.section .tbss,"awT",@nobits',
                    f"\t{binding} {name}",
                    f"\t.type {name}, @tls_object",
                    f"\t.size {name}, {size}",
                    f"{name}:",
                    f"\t.zero {max(size, 1)}",
                ]
            elif typ in ("STT_OBJECT", "STT_COMMON"):
                lines += [
                    "\t.data",
                    f"\t{binding} {name}",
                    f"\t.type {name}, @object",
                    f"\t.size {name}, {size}",
                    f"{name}:",
                    f"\t.zero {max(size, 1)}",
                ]
            else:  # functions, GNU indirect functions
                lines += ["\t.text", f"\t{binding} {name}", f"\t.type {name}, @function", f"{name}:", "\tret"]
        by_node = {}
        for name, (ver, *_rest) in lib["syms"].items():
            by_node.setdefault(version_str(ver), []).append(name)
        nodes = sorted(set(lib["nodes"]) | set(by_node), key=parse_version)
        script, prev = [], None
        for i, node in enumerate(nodes):
            names = sorted(by_node.get(node, []))
            body = (" global:" + "".join(f" {n};" for n in names)) if names else ""
            local = " local: *;" if i == 0 else ""
            script.append(f"{node} {{{body}{local} }}{' ' + prev if prev else ''};")
            prev = node
        with tempfile.TemporaryDirectory() as tmp:
            asm = Path(tmp) / "stub.s"
            asm.write_text("\n".join(lines) + "\n")
            vs = Path(tmp) / "stub.map"
            vs.write_text("\n".join(script) + "\n")
            subprocess.run(
                [
                    cc,
                    "-shared",
                    "-nostdlib",
                    "-o",
                    str(out / soname),
                    f"-Wl,-soname,{soname}",
                    f"-Wl,--version-script={vs}",
                    str(asm),
                ],
                check=True,
            )
        link = LIBRARIES[soname]
        if link == "c":
            (out / "libc.so").write_text(
                "/* glibc link stand-ins: see tools/glibc_stubs.py */\n"
                f"GROUP ( {out / 'libc.so.6'} {libc_nonshared} AS_NEEDED ( {out / 'ld-linux-x86-64.so.2'} ) )\n"
            )
        elif link:
            dest = out / f"lib{link}.so"
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            dest.symlink_to(soname)
        print(f"{soname}: {len(lib['syms'])} symbols, versions up to {nodes[-1] if nodes else '-'}")
    (out / "GLIBC_VERSION").write_text(args.glibc + "\n")
    return 0


def shared_objects(paths):
    """(label, bytes) of each ELF shared object named, or inside each wheel named."""
    for p in paths:
        if p.endswith(".whl"):
            with zipfile.ZipFile(p) as z:
                for n in z.namelist():
                    if re.search(r"\.so(\.\d+)*$", n):
                        yield f"{os.path.basename(p)}:{n}", z.read(n)
        else:
            yield p, Path(p).read_bytes()


def needed_symbols(data: bytes):
    """[(name, version or None, file or None, weak)] of the undefined dynamic symbols."""
    import io

    elf = ELFFile(io.BytesIO(data))
    sec = _sections(elf)
    ndx = {}
    if GNUVerNeedSection in sec:
        for vn, aux in sec[GNUVerNeedSection].iter_versions():
            for a in aux:
                ndx[a["vna_other"]] = (a.name, vn.name)
    versym = sec.get(GNUVerSymSection)
    out = []
    for i, s in enumerate(sec["dynsym"].iter_symbols()):
        if s["st_shndx"] != "SHN_UNDEF" or not s.name:
            continue
        n = versym.get_symbol(i)["ndx"] if versym else 0
        v = ndx.get(n & 0x7FFF) if isinstance(n, int) else None
        out.append((s.name, v[0] if v else None, v[1] if v else None, s["st_info"]["bind"] == "STB_WEAK"))
    return out


def check(args) -> int:
    target = parse_version("GLIBC_" + args.glibc)
    host = {}
    for soname in LIBRARIES:
        _, _, syms = defined_symbols(find_library(soname, args.cc))
        for name, defs in syms.items():
            host.setdefault(name, []).extend(d[0] for d in defs)
    problems = 0
    for label, data in shared_objects(args.files):
        bad = []
        for name, ver, lib, weak in needed_symbols(data):
            v = parse_version(ver) if ver else None
            if ver is None:
                if not weak and not PYTHON_API.match(name):
                    bad.append(f"{name}: no version (no library defined it at link time)")
                continue
            if v is None:
                continue  # GLIBCXX_*, GCC_*, CUDA's: auditwheel judges those
            if v > target:
                bad.append(f"{name}@{ver} ({lib}): newer than glibc {args.glibc}")
                continue
            later = sorted(h for h in host.get(name, []) if h > v)
            if later and name not in SAME_INTERFACE:
                moved = lib in MOVED or (lib == "libc.so.6" and later == [(2, 34)])
                if not moved:
                    bad.append(
                        f"{name}@{ver}: this machine's glibc has a later version "
                        f"{version_str(later[-1])}; check that the interface is the same"
                    )
        status = "ok" if not bad else "FAILED"
        print(f"{label}: {status}")
        for b in bad:
            print(f"    {b}")
        problems += len(bad)
    return 1 if problems else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the link stand-ins for an older glibc")
    m.add_argument("--glibc", default="2.28", help="the oldest glibc to support (default 2.28)")
    m.add_argument("--out", required=True, help="folder for the stand-ins")
    m.add_argument("--cc", default=os.environ.get("CC", "cc"))
    m.set_defaults(fn=make)
    c = sub.add_parser("check", help="check that shared objects (or wheels) need no newer glibc")
    c.add_argument("--glibc", default="2.28")
    c.add_argument("--cc", default=os.environ.get("CC", "cc"))
    c.add_argument("files", nargs="+")
    c.set_defaults(fn=check)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
