"""The rules of the Python layout (CONTRIBUTING.md), read from the imports of
the installed package: no import circles between modules (function-level
imports included), the library never imports ``heatbath.commands``, and no
module much over 800 lines.

Oracle: the import graph built from each module's syntax tree; a cycle is a
strongly connected component of more than one module. The checker itself is
tested on a small package with a known circle."""

from __future__ import annotations

import ast
from pathlib import Path

import heatbath

ROOT = Path(heatbath.__file__).parent
MAX_LINES = 820  # "about 800": a cohesive class may run a little over


def _modules(root: Path, top: str) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        rel = p.relative_to(root.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = p
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its body);
    imports of a module's own ancestor packages are not counted (Python has
    imported them before the module runs)."""
    mods = _modules(root, root.name)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                subs = [f"{full}.{a.name}" for a in node.names if f"{full}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [full] + subs
            for t in targets:
                while t and t not in mods:  # heatbath.x.y.name -> heatbath.x.y
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_checker_finds_a_known_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("def f():\n    from .sub.b import g\n    return g\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..a import f\nfrom .. import c\n")
    (pkg / "c.py").write_text("import os\n")
    e = import_graph(pkg)
    assert e["pkg.a"] == {"pkg.sub.b"} and e["pkg.sub.b"] == {"pkg.a", "pkg.c"}
    assert cycles(e) == [["pkg.a", "pkg.sub.b"]]
    (pkg / "a.py").write_text("X = 1\n")
    assert cycles(import_graph(pkg)) == []


def test_no_import_circles():
    e = import_graph(ROOT)
    assert len(e) > 60 and "heatbath.diffusion.schedulers" in e  # the whole package was read
    assert cycles(e) == []


def test_library_never_imports_commands():
    e = import_graph(ROOT)
    bad = sorted(
        (m, t)
        for m, ts in e.items()
        for t in ts
        if t.startswith("heatbath.commands") and not m.startswith("heatbath.commands") and m != "heatbath.cli"
    )
    assert bad == []


def test_modules_stay_about_800_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in ROOT.rglob("*.py")}
    assert {k: n for k, n in sizes.items() if n > MAX_LINES} == {}


def test_cuda_and_cpu_headers_include_only_shared_structs():
    """csrc/cuda never includes csrc/cpu (shared argument structs live in
    csrc/heatbath); checked where the source tree is at hand."""
    src = Path(__file__).resolve().parents[1] / "csrc"
    if not src.is_dir():
        import pytest

        pytest.skip("the C++ sources are not beside these tests")
    for d, other in (("cuda", "cpu"), ("cpu", "cuda")):
        for p in sorted((src / d).glob("*")):
            if p.suffix in (".h", ".cu", ".cpp", ".cuh"):
                for line in p.read_text().splitlines():
                    s = line.strip()
                    if s.startswith("#include"):
                        assert f"{other}/" not in s, f"{p.name}: {s}"
