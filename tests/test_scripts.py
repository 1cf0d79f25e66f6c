"""The test command's own steps (scripts/): what they do without a component, with and without
VLLMTUNE_REQUIRE_REAL=1 (CI). The heavy installs are exercised by every CI run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from vllmtune import quantize_job


def sh(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "VLLMTUNE_REQUIRE_REAL"}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script)], capture_output=True, text=True, timeout=120, env={**base, **env}
    )


def test_flag_catalog_check_without_the_dumps(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-dumps")
    r = sh("check_flag_catalog.sh", {"VLLMTUNE_FLAG_DUMPS": missing})
    assert (r.returncode, r.stdout) == (0, f"skipped: no vLLM flag dumps at {missing} (set VLLMTUNE_FLAG_DUMPS)\n")
    r = sh("check_flag_catalog.sh", {"VLLMTUNE_FLAG_DUMPS": missing, "VLLMTUNE_REQUIRE_REAL": "1"})
    assert (r.returncode, r.stderr) == (
        1,
        f"error: the vLLM flag dumps ({missing}) are required (VLLMTUNE_REQUIRE_REAL=1) but missing\n",
    )


def test_ci_runs_the_readme_test_command() -> None:
    # One way to run the suite: .ci/run only requires every component and calls scripts/test.sh,
    # which installs the system packages itself (scripts/setup_system.sh).
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci
    assert 'export VLLMTUNE_REQUIRE_REAL=1\nexec bash scripts/test.sh "$@"\n' in ci
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "bash scripts/setup_system.sh" in test_sh and "bash scripts/check_flag_catalog.sh" in test_sh
    # the CI run ends with the package's branch coverage (pytest-cov, the test extra)
    assert "cov=(--cov=vllmtune --cov-branch --cov-report=term:skip-covered)" in test_sh
    assert 'python3 -m pytest "${cov[@]}" "$@"' in test_sh
    system = (ROOT / "scripts" / "setup_system.sh").read_text()
    for pkg in ("docker.io", "busybox-static", "redis-server", "docker-compose", "prometheus"):
        assert pkg in system
    for script in ("test.sh", "setup_system.sh", "check_flag_catalog.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)]).returncode == 0


def test_the_demo_quantization_script_gives_the_job_valid_settings_without_calibration(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_demo_quantized", ROOT / "scripts" / "make_demo_quantized.py")
    assert spec is not None and spec.loader is not None
    mdq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mdq)
    settings = mdq.settings(Path("/m/demo"), Path("/m/out"))
    assert quantize_job.parse_settings([json.dumps(settings)]) == settings
    assert (settings["scheme"], settings["algorithm"], quantize_job.needs_calibration(settings)) == ("W8A8", "rtn", False)
    # no demo model: a one-line error naming the step to run first, exit 1
    r = subprocess.run(
        ["python3", str(ROOT / "scripts" / "make_demo_quantized.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VLLMTUNE_DEMO_MODEL": str(tmp_path / "none"), "VLLMTUNE_DEMO_W8A8": str(tmp_path / "q")},
    )
    assert (r.returncode, r.stderr) == (
        1,
        f"no demo model at {tmp_path / 'none'}: run scripts/make_tiny_model.py --demo first\n",
    )
