"""Under VLLMTUNE_REQUIRE_REAL=1 (what .ci/run sets) every kind of skip is a failure; without
it, a missing component is a skip (a developer's partial machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import pytest

@pytest.mark.skipif(True, reason="no widget")
def test_skipif():
    pass

def test_importorskip():
    pytest.importorskip("no_such_module_xyz")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

def test_ok():
    pass
"""
MODULE_SKIP = 'import pytest\npytest.importorskip("no_such_module_xyz")\n\ndef test_never():\n    pass\n'


def run(tmp_path: Path, require_real: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    return pytest_in(tmp_path, require_real)


def pytest_in(tmp_path: Path, require_real: bool) -> subprocess.CompletedProcess[str]:
    """pytest over the test files in tmp_path with the require_real plugin, VLLMTUNE_REQUIRE_REAL=1 or unset."""
    env = {k: v for k, v in os.environ.items() if k != "VLLMTUNE_REQUIRE_REAL"}
    if require_real:
        env["VLLMTUNE_REQUIRE_REAL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.require_real", "-p", "no:cacheprovider", "-q", "-rA"]
        + ["--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**env, "PYTHONPATH": str(ROOT)},
    )


def test_skips_are_failures_under_require_real(tmp_path: Path) -> None:
    r = run(tmp_path, require_real=True)
    assert r.returncode == 1, r.stdout
    last = r.stdout.strip().splitlines()[-1]
    # importorskip in the test: failed; skipif (at setup): error; the skipped module: listed below
    assert last.startswith("1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error"), last
    assert "skipped, but VLLMTUNE_REQUIRE_REAL=1 requires every real component: no widget" in r.stdout
    assert "skipped at collection, but VLLMTUNE_REQUIRE_REAL=1 requires every real component" in r.stdout
    assert "test_module_skip.py: could not import 'no_such_module_xyz'" in r.stdout


def test_skips_stay_skips_without_it(tmp_path: Path) -> None:
    r = run(tmp_path, require_real=False)
    assert r.returncode == 0, r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("1 passed, 3 skipped, 1 xfailed"), r.stdout


def test_every_skip_goes_through_require() -> None:
    # One spelling for "a real component is missing": require() / require_module() (the message
    # says what and how to install it). A bare skipif / importorskip / skip elsewhere is a bug.
    spellings = ("importorskip(", "mark.skipif", "mark.skip(", "pytest.skip(")
    allowed = {ROOT / "tests/support/require_real.py", Path(__file__).resolve()}
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path not in allowed
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(s in line for s in spellings) and not line.lstrip().startswith("#")
    ]
    assert found == []


MODULE_PROBE = """
from tests.support.require_real import require_module

def test_present():
    assert require_module("json", "json").dumps([]) == "[]"

def test_missing():
    require_module("no_such_module_xyz", "the widget (pip install widget)")
"""


def test_require_module_fails_naming_the_component(tmp_path: Path) -> None:
    (tmp_path / "test_modprobe.py").write_text(MODULE_PROBE)
    for require_real, rc, summary in ((True, 1, "1 failed, 1 passed"), (False, 0, "1 passed, 1 skipped")):
        r = pytest_in(tmp_path, require_real)
        assert r.returncode == rc, r.stdout
        assert r.stdout.strip().splitlines()[-1].startswith(summary), r.stdout
        if require_real:
            assert "the widget (pip install widget) is required (VLLMTUNE_REQUIRE_REAL=1) but not available" in r.stdout
        else:
            assert "the widget (pip install widget) not available" in r.stdout
