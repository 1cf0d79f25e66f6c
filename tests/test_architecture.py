"""The house's shape, checked (issue 15): layers that import only downwards, no import circle, no
oversized module, every user error in errors.py.

The layers (CONTRIBUTING.md, "How the house is laid out"); a module may import its own layer and
the ones below it, never above:

  L0  vllmtune (__version__), errors, levers,   facts and helpers that import nothing of ours
      argdiff, util/
  L1  flags/, modelfacts/, cache/, bench core   the flag catalog, model facts, the standalone proxy,
                                                the load client and its statistics
  L2  profile/                                   the user's file, validated
  L3  plan/                                      one frozen plan, every default resolved
  L4  render/, containers, fit/, runtime/        what the plan becomes: files, estimates, processes
  L5  commands/ and the command modules          one module per command: Args in, Result out
  L6  cli/, entry, __main__                      the typer app, printers, exit codes

Every import counts, lazy ones inside functions included (a lazy import still makes a circle for
the reader). The import graph is read from the source with ``ast``, not by importing.
"""

from __future__ import annotations

import ast
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import vllmtune
from vllmtune import errors

PKG = Path(vllmtune.__file__).parent

# module name (without "vllmtune.") or package prefix -> layer; the longest match wins
LAYERS: dict[str, int] = {
    "": 5,  # any top-level module not listed: a command
    "errors": 0,
    "levers": 0,
    "argdiff": 0,
    "util": 0,
    "flags": 1,
    "modelfacts": 1,
    "cache": 1,
    "bench": 1,
    "bench.command": 5,
    "profile": 2,
    "plan": 3,
    "render": 4,
    "containers": 4,
    "fit": 4,
    "runtime": 4,
    "commands": 5,
    "tune": 5,  # the tune engine, at the ladder's layer (a command's package)
    "cli": 6,
    "entry": 6,
    "__main__": 6,
}


def layer(module: str) -> int:
    name = module.removeprefix("vllmtune").lstrip(".")
    if not name:
        return 0  # the package root holds only __version__
    best = ""
    for prefix in LAYERS:
        if prefix and (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return LAYERS[best]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = pkg.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in mods and t != name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(_modules()):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_sees_lazy_and_relative_imports() -> None:
    edges = import_graph()
    # render/__init__ imports its renderers lazily, inside a function
    assert any(t.startswith("vllmtune.render.") for t in edges["vllmtune.render"])
    assert "vllmtune.errors" in edges["vllmtune.flags.catalog"]


def test_no_import_circle() -> None:
    assert _cycles(import_graph()) == []


def test_no_import_from_a_higher_layer() -> None:
    upward = [
        f"{src} (L{layer(src)}) imports {dst} (L{layer(dst)})"
        for src, dsts in sorted(import_graph().items())
        for dst in sorted(dsts)
        if layer(dst) > layer(src) and not dst.startswith(src + ".")  # a package may name its parts
    ]
    assert upward == []


def test_layer_table_knows_each_name() -> None:
    assert layer("vllmtune.errors") == 0
    assert layer("vllmtune.bench.stats") == 1
    assert layer("vllmtune.bench.command") == 5
    assert layer("vllmtune.render.k8s.core") == 4
    assert layer("vllmtune.explain") == 5


MAX_LINES = 600


def test_no_module_over_600_lines() -> None:
    big = {
        str(p.relative_to(PKG.parent)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}


def _user_error_classes() -> list[type[BaseException]]:
    seen: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(vllmtune.__path__, "vllmtune."):
        if info.name.endswith("__main__"):
            continue
        module = __import__(info.name, fromlist=["_"])
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, errors.VllmtuneError) and obj not in seen:
                seen.append(obj)
    return seen


@pytest.mark.parametrize("cls", _user_error_classes(), ids=lambda c: c.__name__)
def test_every_user_error_lives_in_errors_py(cls: type[BaseException]) -> None:
    assert cls.__module__ == "vllmtune.errors"
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} says what it means in its docstring"
