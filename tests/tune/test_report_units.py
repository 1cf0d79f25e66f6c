"""The winner's margin: a CI over time windows of each run, its verdict and its line, the table's order."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from vllmtune.bench.slo import parse_slo
from vllmtune.tune.report import attainment, goodput_diff_ci, margin, margin_line, pareto, table, verdict, windows
from vllmtune.tune.space import Knob, KnobKind


def _requests(path: Path, ends_ms: list[float], ttft_ms: float) -> dict[str, Any]:
    lines = [
        {
            "sent_ms": end - 100.0,
            "e2e_ms": 100.0,
            "ttft_ms": ttft_ms,
            "error": None,
            "completion_tokens": 4,
            "chunk_tokens": [1, 1, 1, 1],
            "chunk_gaps_ms": [10.0, 10.0, 10.0],
        }
        for end in ends_ms
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {"trial": 1, "requests": str(path), "goodput": len(lines) / (max(ends_ms) / 1000)}


def test_twice_the_completions_is_better_and_the_same_run_is_no_change(tmp_path: Path) -> None:
    slo = parse_slo("ttft_p99=50ms")
    fast = _requests(tmp_path / "a.jsonl", [50.0 * i for i in range(1, 41)], 20.0)  # 20 req/s, all good
    slow = _requests(tmp_path / "b.jsonl", [100.0 * i for i in range(1, 41)], 20.0)  # 10 req/s
    assert [m for _, m in attainment(fast["requests"], slo)] == [1] * 40
    assert windows(attainment(fast["requests"], slo)) == [20.0] * 8
    lo, hi = goodput_diff_ci(fast, slow, slo)
    assert (lo, hi) == (10.0, 10.0)  # every window 20 against every window 10
    assert verdict([lo, hi]) == "better"
    assert verdict(goodput_diff_ci(fast, fast, slo)) == "no significant change"
    bad = _requests(tmp_path / "c.jsonl", [50.0 * i for i in range(1, 41)], 80.0)  # fast, but every TTFT misses
    assert windows(attainment(bad["requests"], slo)) == [0.0] * 8
    assert verdict(goodput_diff_ci(bad, slow, slo)) == "worse"
    assert verdict(goodput_diff_ci(fast, _requests(tmp_path / "d.jsonl", [50.0], 20.0), slo)) == (
        "too few requests to judge"
    )


def test_the_table_ranks_by_goodput_and_lists_failed_starts_last() -> None:
    knobs = [Knob(KnobKind(("batching", "max_num_seqs"), int), (1, 2, 4), True)]
    records = [
        {"trial": 0, "config": [2], "status": "done", "goodput": 5.0, "max_rate": 5.5, "ttft_p99_ms": 12.0},
        {"trial": 1, "config": [4], "status": "failed", "reason": "reason: OOM"},
        {"trial": 2, "config": [1], "status": "done", "goodput": 7.25, "max_rate": None, "ttft_p99_ms": 30.04},
    ]
    assert table(knobs, records, 2) == [
        "| # | max_num_seqs | status | goodput req/s | max rate /s | TTFT p99 ms |",
        "|---|---|---|---|---|---|",
        "| 2 | 1 | done (best) | 7.25 | - | 30.0 |",
        "| 0 | 2 | done (input) | 5.00 | 5.50 | 12.0 |",
        "| 1 | 4 | failed | - | - | - |",
    ]


def test_without_matplotlib_the_plot_is_skipped_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    records = [{"trial": 0, "config": [2], "status": "done", "goodput": 5.0, "ttft_p99_ms": 12.0}]
    assert (
        pareto(records, tmp_path / "p.png", 1)
        == "matplotlib is not installed: no Pareto plot (pip install 'vllmtune[plot]')"
    )
    assert not (tmp_path / "p.png").exists()


def test_the_margin_line_gives_the_delta_the_ci_and_the_verdict(tmp_path: Path) -> None:
    fast = _requests(tmp_path / "a.jsonl", [50.0 * i for i in range(1, 41)], 20.0)  # 20 req/s
    slow = _requests(tmp_path / "b.jsonl", [100.0 * i for i in range(1, 41)], 20.0)  # 10 req/s
    assert margin_line("the runner-up", margin(fast, slow, "ttft_p99=50ms", 0)) == (
        "vs the runner-up (trial 1): +10.00 req/s goodput, 95% CI [+10.00, +10.00]: better"
    )
    few = {"trial": 4, "delta": -0.5, "ci95": [math.nan, math.nan], "verdict": "too few requests to judge"}
    assert margin_line("the input profile", few) == (
        "vs the input profile (trial 4): -0.50 req/s goodput, 95% CI [-, -]: too few requests to judge"
    )
    assert margin_line("the runner-up", margin(fast, None, "ttft_p99=50ms", 0)) == (
        "vs the runner-up: nothing to compare with"
    )
