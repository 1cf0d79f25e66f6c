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
