"""vllmtune.errors: the one tree (every user error defined there, documented, drawn in the
module's docstring) and each error's separate hint."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import vllmtune
from vllmtune import errors


def _error_classes() -> list[type[BaseException]]:
    seen: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(vllmtune.__path__, "vllmtune."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, errors.VllmtuneError) and obj not in seen:
                seen.append(obj)
    return seen


def test_every_user_error_is_defined_in_errors_py_and_documented() -> None:
    classes = _error_classes()
    names = {c.__name__ for c in classes}
    assert len(classes) >= 15  # the walk found the package's errors
    assert [c.__name__ for c in classes if c.__module__ != "vllmtune.errors"] == []
    assert [c.__name__ for c in classes if not (c.__doc__ and c.__doc__.strip())] == []
    # the tree drawn in errors.py's docstring names each class, no more, no fewer
    drawn = set(re.findall(r"^\s*[│ ]*[├└]── (\w+) ", errors.__doc__ or "", re.M))
    assert drawn | {"VllmtuneError"} == names
    # and no module subclasses one by source (a class defined in a function is not seen by the walk)
    pkg = Path(errors.__file__).parent
    elsewhere = [
        f"{path.relative_to(pkg)}: {node.name}"
        for path in sorted(pkg.rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, (ast.Name, ast.Attribute)) and ast.unparse(b).split(".")[-1] in names for b in node.bases)
    ]
    assert elsewhere == []


def test_an_error_keeps_its_hint_apart_and_its_whole_text() -> None:
    err = errors.SloError("--slo is empty", hint="write it as METRIC=LIMIT")
    assert (str(err), err.message, err.hint) == (
        "--slo is empty; write it as METRIC=LIMIT",
        "--slo is empty",
        "write it as METRIC=LIMIT",
    )
    plain = errors.VllmtuneError("no hint")
    assert (str(plain), plain.message, plain.hint) == ("no hint", "no hint", None)
    err = errors.CacheError("--backend 'x'", hint="choose memory or redis", sep=": ")
    assert str(err) == "--backend 'x': choose memory or redis"
    d = errors.DockerUnreachable("unix:///nope.sock", "no such file")
    assert (d.message, d.hint) == (
        "cannot reach the Docker daemon at unix:///nope.sock: no such file",
        "start it (sudo systemctl start docker, or dockerd) or point DOCKER_HOST at a running daemon; or use --runtime local",
    )
    assert str(d) == f"{d.message}\n{d.hint}"


def test_raise_sites_pass_the_fix_as_the_hint() -> None:
    from vllmtune.bench.slo import HINT, check_streaming, parse_slo

    with pytest.raises(errors.SloError) as bad_unit:
        parse_slo("ttft_p99=5parsecs")
    assert (bad_unit.value.message, bad_unit.value.hint) == (
        "--slo 'ttft_p99=5parsecs': unknown unit 'parsecs'",
        "use ms or s (a bare number is ms)",
    )
    with pytest.raises(errors.SloError) as empty:
        parse_slo("")
    assert (str(empty.value), empty.value.hint) == (f"--slo is empty; {HINT}", HINT)
    with pytest.raises(errors.SloError) as unstreamed:
        check_streaming(parse_slo("ttft=1s"), stream=False)
    assert (unstreamed.value.message, unstreamed.value.hint) == (
        "--slo ttft_p99: measured on streamed answers only",
        "drop --no-stream",
    )
