"""The ladder end to end on the stub server (vllmtune/bench/stub.py started as `vllm` on the local
runtime) with the real prompt-cache proxy: --repeats 2 interleaves the rounds, every figure has a
95% CI, every change a verdict that agrees with its CI in ladder.json, the table and report.md, and
the cost is the server-busy time of the requests the server answered (hits cost 0). No timings
are compared: the verdicts are checked against their own intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.ladder.verdict_checks import check_verdicts
from tests.support.cli import vt
from tests.support.ladder import stub_ladder
from vllmtune.ladder_figures import busy_seconds


def read_lines(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_stub_ladder_verdicts_cis_and_cost(tmp_path: Path) -> None:
    prof, env = stub_ladder(
        tmp_path,
        "lad-v",
        "prompt_cache: {enabled: true, ttl: 1h}\nprefix_caching: true\n",
        '["--ttft", "0.02", "--itl", "0.002"]',
    )
    out = tmp_path / "out"
    argv = ["ladder", str(prof), "--runtime", "local", "-w", "duplicates",
            "--duplicate-share", "0.5", "-n", "30", "-c", "2", "--max-tokens", "4", "--repeats", "2",
            "--gpu-hour-usd", "3.6", "-o", str(out)]  # fmt: skip
    r = vt(*argv, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    starts = [line.removeprefix("ladder: ") for line in r.stderr.splitlines() if line.endswith(": starting (local)")]
    assert starts == [  # A B C A B C: drift on the machine hits every rung alike
        f"{rung} (round {n}/2): starting (local)"
        for n in (1, 2)
        for rung in ("baseline", "+ prompt cache", "+ prefix caching")
    ]
    summary = json.loads((out / "ladder.json").read_text())
    assert summary["operating_point"] == {
        "arrivals": "closed loop",
        "concurrency": 2,
        "requests_per_round": 30,
        "warmup_requests": 2,
        "rounds": 2,
        "workload": "duplicates",
        "seed": 0,
        "max_tokens": 4,
    }
    rows = summary["rows"]
    assert [row["config"] for row in rows] == ["baseline", "+ prompt cache", "+ prefix caching"]
    assert [row["vs"] for row in rows] == [None, "baseline", "+ prompt cache"]
    entries = {e["rung"]: e for e in summary["rungs"]}
    for row in rows:
        assert (row["rounds"], row["requests_ok"], row["requests_sent"]) == (2, 60, 60)
        # the cost: the union of the in-server intervals of each round's requests, hits excluded
        runs = [read_lines(p) for p in entries[row["rung"]]["requests"]]
        assert len(runs) == 2 and all(len(run) == 30 for run in runs)
        busy = sum(busy_seconds(run) for run in runs)
        assert row["server_busy_s"] == pytest.approx(busy)
        assert row["cost_ms_per_request"] == pytest.approx(busy / 60 * 1000)
        assert row["relative_cost"] == pytest.approx(row["cost_ms_per_request"] / rows[0]["cost_ms_per_request"])
        assert row["usd_per_1k_requests"] == pytest.approx(busy / 60 * 0.001 * 1000)
        tokens = sum(line["completion_tokens"] for run in runs for line in run)
        assert row["usd_per_1m_output_tokens"] == pytest.approx(busy / tokens * 0.001 * 1e6)
        hits = sum(line["x_cache"] == "HIT" for run in runs for line in run)
        for result, run in zip(entries[row["rung"]]["results"], runs, strict=True):
            # the server (its /metrics, scraped around the measured run) saw exactly the requests the
            # proxy missed: the warm-up is not counted, a hit never reached it
            served = json.loads(Path(result).read_text())["server_metrics"]["vllm:time_to_first_token_seconds_count"]
            assert served == sum(line["x_cache"] != "HIT" for line in run)
        if row["rung"] == "baseline":
            assert row["prompt_cache_hits"] is None and hits == 0
            assert all(line["x_cache"] is None for run in runs for line in run)  # no proxy: no header
        else:  # the same repeats in both rounds are answered by the proxy, never by the server
            assert row["prompt_cache_hits"] == hits > 0
            assert row["prompt_cache_hit_ratio"] == pytest.approx(hits / 60)
    # the table and the lines under it say what ladder.json says
    table = r.stdout.splitlines()
    assert table == summary["table_markdown"]
    assert table[6].startswith(
        "Operating point: closed loop at concurrency 2, 30 measured requests per rung per round "
    )
    assert table[6].endswith(", 2 interleaved rounds (every rung once per round, in ladder order), pooled.")
    check_verdicts(summary, table)
    md = (out / "report.md").read_text()
    assert "\n".join(table) in md
    # --resume: every round of every rung is done; the same table comes back
    again = vt(*argv, "--resume", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sum("done earlier (resume)" in line for line in again.stderr.splitlines()) == 6
    assert again.stdout.splitlines() == table
