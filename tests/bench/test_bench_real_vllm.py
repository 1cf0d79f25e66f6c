"""`vllmtune bench` against the REAL vLLM CPU server, prefix caching off vs on, with the
shared-prefix workload: the server's prefix-cache hit counter must rise, and the result JSON
must record it. `compare` then tabulates the two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.cli import Cli
from tests.support.dockerenv import free_port
from tests.support.profiles import tiny_profile
from tests.support.realvllm import tiny_model_dir, vllm_executable

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


vt = Cli(timeout=600)


def test_prefix_caching_off_vs_on(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None and exe.exists() and model is not None, "the vLLM CPU venv and the tiny model")
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    results = {}
    for name, on in (("prefix-off", False), ("prefix-on", True)):
        extra = f"  max_model_len: 2048\nprefix_caching: {str(on).lower()}\n"
        profile = tiny_profile(tmp_path / f"{name}.yaml", f"vt-{name}", str(model), extra)
        port = free_port()
        try:
            up = vt("up", str(profile), "--runtime", "local", "-d", "--port", str(port), "--timeout", "400", env=env)
            assert up.returncode == 0, up.stderr[-3000:]
            out = tmp_path / f"{name}.json"
            r = vt(
                "bench",
                str(profile),
                "--workload",
                "shared-prefix",
                "-n",
                "24",
                "-c",
                "2",
                "--max-tokens",
                "8",
                "--warmup",
                "2",
                "-l",
                name,
                "-o",
                str(out),
                env=env,
            )
            assert r.returncode == 0, r.stderr[-3000:]
            print(f"\n{r.stdout}")
            results[name] = json.loads(out.read_text())
        finally:
            vt("down", str(profile), "--runtime", "local", env=env)
    off, on_ = results["prefix-off"], results["prefix-on"]
    for res in (off, on_):
        assert res["summary"]["requests_ok"] == 24
        assert res["errors"] == {}
        assert res["config"]["vllm_version"] == "0.32.0"
        assert res["config"]["profile_hash"]
    assert on_["server_metrics"]["vllm:prefix_cache_hits_total"] > 0
    assert off["server_metrics"].get("vllm:prefix_cache_hits_total", 0) == 0
    table = vt(
        "compare", str(tmp_path / "prefix-off.json"), str(tmp_path / "prefix-on.json"), "--output", "markdown", env=env
    )
    print(table.stdout)
    assert table.returncode == 0
