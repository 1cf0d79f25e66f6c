"""The five-lever ladder end to end on REAL vLLM (CPU build, tiny model): every rung the CPU
build supports is brought up, measured with the same seeded workload and torn down; fp8
quantization cannot run on CPU and must be reported with its reason while the ladder goes on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.ladder.verdict_checks import check_verdicts
from tests.support.cli import vt
from tests.support.realvllm import tiny_model_dir, vllm_executable

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def server_metrics(summary: dict[str, Any], rung: str) -> dict[str, float]:
    """What vLLM's /metrics counted during a rung's measured run (deltas)."""
    [entry] = [e for e in summary["rungs"] if e["rung"] == rung]
    metrics: dict[str, float] = json.loads(Path(entry["results"][0]).read_text())["server_metrics"]
    return metrics


def prefix_cache_counters(summary: dict[str, Any], rung: str) -> tuple[float, float]:
    """vLLM's prefix-cache (queries, hits) in tokens during a rung's measured run."""
    metrics = server_metrics(summary, rung)
    for series in ("vllm:prefix_cache", "vllm:gpu_prefix_cache"):  # V1, then V0 names
        if f"{series}_queries_total" in metrics:
            return metrics[f"{series}_queries_total"], metrics.get(f"{series}_hits_total", 0.0)
    raise AssertionError(f"{rung}: vLLM reported no prefix-cache counters: {sorted(metrics)}")


def test_cpu_ladder(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None and exe.exists() and model is not None, "the vLLM CPU venv and the tiny model")
    profile = tmp_path / "ladder.yaml"
    profile.write_text(f"extends: {ROOT / 'profiles/examples/cpu-ladder.yaml'}\nmodel:\n  id: {model}\n")
    out = tmp_path / "ladder"
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    ladder = ["ladder", str(profile), "--runtime", "local", "--workload", "mixed", "-n", "30", "-c", "2",
              "--max-tokens", "8", "--gpu-hour-usd", "2.49", "-o", str(out)]  # fmt: skip
    r = vt(*ladder, "--duplicate-share", "0.3", "--timeout", "400", env=env, timeout=2400)
    print(r.stderr[-3000:])
    print(r.stdout)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "ladder.json").read_text())
    status = {e["rung"]: e["status"] for e in summary["rungs"]}
    assert status == {
        "baseline": "done",
        "prompt-cache": "done",
        "prefix-caching": "done",
        "batching": "done",
        "quantization": "failed",
        "speculative": "done",
    }
    quant = next(e for e in summary["rungs"] if e["rung"] == "quantization")
    assert (
        quant["reason"] == "reason: this vLLM build has no kernel for the quantization method: static_scaled_fp8_quant"
    )
    rows = {row["config"]: row for row in summary["rows"]}
    # the prompt-cache rung answers the configured share of repeats from the cache
    assert rows["+ prompt cache"]["prompt_cache_hit_ratio"] >= 0.15
    # Prefix caching reuses the shared system prompts: what vLLM itself counts (block hits during
    # the measured run), not a TTFT difference, which load on the machine can reverse.
    queries, hits = prefix_cache_counters(summary, "prefix-caching")
    assert hits / queries >= 0.5, (hits, queries)  # 4 prefixes of ~600 words across 30 requests
    baseline = server_metrics(summary, "baseline")  # --no-enable-prefix-caching: no hits (or no series)
    assert [baseline.get(f"vllm:{s}_hits_total", 0.0) for s in ("prefix_cache", "gpu_prefix_cache")] == [0.0, 0.0]
    assert all(rows[c]["server_ttft_mean_ms"] > 0 for c in ("baseline", "+ prefix caching"))
    assert rows["baseline"]["relative_cost"] == 1.0
    # every printed verdict agrees with its own CI (the ratio's CI excludes 1 <=> better / worse; a CI
    # including 1 is never a win or a loss), and the table and the lines under it carry those CIs; the
    # figures themselves move with the load on the machine: no ordering is asserted
    check_verdicts(summary, r.stdout.splitlines())
    assert r.stdout.splitlines() == summary["table_markdown"]
    for row in summary["rows"]:
        if not row.get("failed"):
            assert row["cost_ms_per_request"] == pytest.approx(row["server_busy_s"] / row["requests_ok"] * 1000)
    # prompt-cache hits are answered by the proxy: counted from each request's X-Cache, costing no server time
    assert rows["+ prompt cache"]["prompt_cache_hits"] == round(rows["+ prompt cache"]["prompt_cache_hit_ratio"] * 30)
    assert summary["operating_point"]["concurrency"] == 2 and summary["operating_point"]["rounds"] == 1
    assert any(line.startswith("Operating point: closed loop at concurrency 2, 30 measured requests") for line in
               summary["table_markdown"])  # fmt: skip
    assert (out / "report.md").read_text().startswith("# Ladder: ")
    assert (out / "ladder.png").exists()
    for rung in ("baseline", "prompt-cache", "speculative"):  # every rung is a deployable profile
        v = vt("validate", str(out / "rungs" / f"{rung}.yaml"), env=env)
        assert v.returncode == 0, v.stderr
    # resume: nothing left to do, the same table comes back
    again = vt(*ladder, "--resume", env=env, timeout=300)  # the first run's arguments but --duplicate-share, --timeout
    assert again.returncode == 0, again.stderr
    assert "done earlier (resume)" in again.stderr
