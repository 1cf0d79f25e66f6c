"""Whole user-facing messages for mistakes that the feature tests do not reach."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vllmtune
from tests.conftest import ROOT
from vllmtune import errors


def vt(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = subprocess.run(
        [sys.executable, "-m", "vllmtune.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "VLLMTUNE_NO_CACHE": "1", **(env or {})},
    )
    assert "Traceback" not in r.stderr
    return r.returncode, r.stderr


def test_profile_file_mistakes(tmp_path: Path) -> None:
    assert vt("validate", str(tmp_path), "--output", "text") == (1, f"{tmp_path}: is a directory, not a profile file\n")
    p = tmp_path / "p.yaml"
    p.write_text("extends: 3\nname: x\n")
    assert vt("render", str(p)) == (1, f"{p}:1: extends: must be a file path or a preset name\n")
    p.write_text('name: x\nvllm: {version: "0.32.0"}\nmodel: {id: "m\\0x"}\n')
    assert vt("render", str(p)) == (
        1,
        f"{p}:3: model.id: contains a NUL character (\\0), which no command line, environment or shell can carry; "
        "remove it\n",
    )


def test_jsonl_case_mistakes(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"input": "a", "max_tokens": 0}\n')
    assert vt("bench", "http://127.0.0.1:9", "-w", str(cases)) == (
        1,
        f'error: {cases}:1: "max_tokens" must be a positive whole number, not 0\n',
    )
    cases.write_text('{"input": 42}\n')
    assert vt("bench", "http://127.0.0.1:9", "-w", str(cases)) == (
        1,
        f'error: {cases}:1: "input" must be a string or a list of chat messages\n',
    )


def test_bench_target_mistakes() -> None:
    assert vt("bench") == (1, "error: give an endpoint URL or a profile (or --calibrate)\n")
    assert vt("bench", "https://example.invalid") == (
        1,
        "error: https endpoints are not supported by the benchmark client yet; use http:// (or a local port-forward)\n",
    )


def test_logs_of_an_unknown_server(tmp_path: Path) -> None:
    assert vt("logs", "nope", "--runtime", "local", env={"VLLMTUNE_STATE_DIR": str(tmp_path)}) == (
        1,
        "error: no server named 'nope'; see vllmtune ps\n",
    )


def test_cache_serve_redis_without_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VLLMTUNE_REDIS_URL"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vllmtune.cli",
            "cache",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--backend",
            "redis",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --backend redis needs --redis-url (or $VLLMTUNE_REDIS_URL")


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
