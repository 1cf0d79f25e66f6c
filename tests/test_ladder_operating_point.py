"""``ladder --slo``: the operating point is the highest rate the baseline meets the SLO at (bench's
``find_max_rate`` against the baseline's server); every rung then runs open loop at it. The search
runs here on constructed trial results (``run_bench`` replaced): which rate is chosen, and the
text printed under the table, whole."""

from __future__ import annotations

from typing import Any

import pytest

from vllmtune.bench import command as bench_command
from vllmtune.commands.ladder import find_operating_point
from vllmtune.errors import LadderError
from vllmtune.ladder.args import LadderArgs
from vllmtune.ladder.table import ladder_notes, ladder_table, operating_point, operating_rate, pooled_goodput


def fake_bench(limit: float | None, throughput: float = 4.0) -> Any:
    """A server that completes ``throughput`` req/s closed loop and meets the SLO up to ``limit`` req/s."""
    calls: list[float | None] = []

    def run_bench(args: bench_command.BenchArgs, progress: Any = None) -> dict[str, Any]:
        calls.append(args.rate)
        met = limit is not None and args.rate is not None and args.rate <= limit
        return {
            "summary": {"request_throughput": args.rate or throughput, "schedule_lag_p50_ms": 1.0},
            "slo": {"met": met, "goodput": (args.rate or throughput) if met else 0.0},
        }

    run_bench.calls = calls  # type: ignore[attr-defined]
    return run_bench


ARGS = LadderArgs(profile="p.yaml", slo="ttft_p99=500ms,e2e_p99=5s", requests=30, concurrency=2)


def test_the_highest_rate_meeting_the_slo_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_bench(limit=2.5)
    monkeypatch.setattr(bench_command, "run_bench", fake)
    said: list[str] = []
    search = find_operating_point(ARGS, "http://127.0.0.1:1", "tiny", said.append)
    # closed loop (4 req/s, misses), then bisection of [0, 4]: 2 meets, 3 misses, 2.5 meets, 2.75 and 2.625 miss
    assert fake.calls == [None, 2.0, 3.0, 2.5, 2.75, 2.625]
    assert operating_rate(search) == 2.5
    assert (
        said[0] == "baseline: finding the highest request rate meeting --slo ttft_p99=500ms,e2e_p99=5s (at most 6 runs)"
    )
    assert said[-1] == "baseline: operating point 2.50 requests/s"
    point = operating_point(ARGS, search)
    assert (point["arrivals"], point["rate"], point["slo"]) == ("open loop", 2.5, "ttft_p99=500ms,e2e_p99=5s")
    assert ladder_notes([], point)[0] == (
        "Operating point: open loop at 2.50 requests/s, at most 2 in flight: the highest rate at which the baseline "
        "met --slo ttft_p99=500ms,e2e_p99=5s (6 trials: closed loop -> 4.00 req/s, misses; 2.00/s -> 2.00 req/s, "
        "meets; 3.00/s -> 3.00 req/s, misses; 2.50/s -> 2.50 req/s, meets; 2.75/s -> 2.75 req/s, misses; 2.62/s "
        "-> 2.62 req/s, misses); 30 measured requests per rung per round after 2 warm-up requests (excluded), "
        "workload mixed, seed 0, 1 round (the rungs one after another)."
    )


def test_a_server_meeting_the_slo_closed_loop_runs_at_its_throughput(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_bench(args: bench_command.BenchArgs, progress: Any = None) -> dict[str, Any]:
        return {"summary": {"request_throughput": 3.2}, "slo": {"met": True, "goodput": 3.2}}

    monkeypatch.setattr(bench_command, "run_bench", run_bench)
    search = find_operating_point(ARGS, "http://127.0.0.1:1", "tiny", lambda _: None)
    assert [t["rate"] for t in search["find_max_rate"]["trials"]] == [None]
    assert operating_rate(search) == 3.2


def test_no_rate_meeting_the_slo_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_command, "run_bench", fake_bench(limit=None, throughput=1.0))
    with pytest.raises(LadderError) as exc:
        find_operating_point(LadderArgs(profile="p.yaml", slo="e2e_p99=1ms", max_trials=3), "http://x:1", None,
                             lambda _: None)  # fmt: skip
    assert str(exc.value) == (
        "the baseline met the SLO at no rate tried (closed loop -> 1.00 req/s, misses; 0.50/s -> 0.50 req/s, misses; "
        "0.25/s -> 0.25 req/s, misses), so there is no operating point to compare the rungs at; loosen --slo, "
        "or raise --max-trials to search lower rates"
    )


def test_without_slo_the_closed_loop_is_the_operating_point() -> None:
    point = operating_point(LadderArgs(profile="p.yaml"), None)
    assert point["arrivals"] == "closed loop" and "rate" not in point
    assert ladder_notes([], point)[0] == (
        "Operating point: closed loop at concurrency 4, 100 measured requests per rung per round after 2 warm-up "
        "requests (excluded), workload mixed, seed 0, 1 round (the rungs one after another)."
    )


def test_goodput_is_pooled_over_rounds_and_shown_in_the_table() -> None:
    def res(good: int, sent: int, wall: float, met: bool) -> dict[str, Any]:
        return {"summary": {"wall_s": wall}, "slo": {"good_requests": good, "requests_sent": sent, "met": met}}

    g = pooled_goodput([res(28, 30, 10.0, True), res(20, 30, 15.0, False)])
    assert g == {"goodput": pytest.approx(48 / 25), "good_requests": 48, "requests_sent": 60, "met": False}
    assert pooled_goodput([{"summary": {}, "slo": None}]) is None
    row = {"config": "baseline", "figures": {}, "relative_cost": 1.0, "goodput": g, "verdicts": {}}
    assert ladder_table([row]) == [
        "| Config | p50 ms | p99 ms | TTFT p50 | Server TTFT p50 | Tokens/call | Cache hits | Quality | Server ms/req "
        "| Relative cost | Goodput req/s | vs previous rung |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| baseline | - | - | - | - | - | - | - | - | 1.00x | 1.92 (SLO missed) | - |",
    ]
