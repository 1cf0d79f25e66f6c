"""--slo parsing and goodput, on fixed per-request figures (vllm bench serve --goodput's rule)."""

from __future__ import annotations

import math

import pytest

from vllmtune.bench.slo import (
    Objective,
    RequestMetrics,
    SloError,
    check_streaming,
    goodput,
    parse_slo,
    per_request_value,
)


def test_parse_the_documented_example_and_vllm_spellings() -> None:
    assert parse_slo("ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s") == (
        Objective("ttft", 99.0, 500.0),
        Objective("itl", 99.0, 50.0),
        Objective("e2e", 99.0, 5000.0),
    )
    # vLLM's KEY:VALUE in ms, its e2el name; no percentile means p99; spaces and case ignored
    assert parse_slo("TTFT:200, e2el:1500, tpot_p50 = 20") == (
        Objective("ttft", 99.0, 200.0),
        Objective("e2e", 99.0, 1500.0),
        Objective("tpot", 50.0, 20.0),
    )
    assert parse_slo("e2e_p99.9=0.25s") == (Objective("e2e", 99.9, 250.0),)


HINT = "write it as METRIC[_pNN]=LIMIT[ms|s], e.g. --slo ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"--slo is empty; {HINT}"),
        ("ttft=1,,e2e=2", f"--slo 'ttft=1,,e2e=2': an empty entry (two commas?); {HINT}"),
        ("ttft", f"--slo 'ttft': not METRIC=LIMIT; {HINT}"),
        ("latency_p99=5s", "--slo 'latency_p99=5s': unknown metric 'latency'; use one of ttft, tpot, itl, e2e"),
        ("ttft_p0=5s", "--slo 'ttft_p0=5s': the percentile must be above 0 and at most 100"),
        ("ttft_p101=5s", "--slo 'ttft_p101=5s': the percentile must be above 0 and at most 100"),
        ("ttft=5min", "--slo 'ttft=5min': unknown unit 'min'; use ms or s (a bare number is ms)"),
        ("ttft=ms", f"--slo 'ttft=ms': '' is not a number; {HINT}"),
        ("ttft=1.2.3ms", f"--slo 'ttft=1.2.3ms': '1.2.3' is not a number; {HINT}"),
        ("ttft=0", "--slo 'ttft=0': the limit must be a positive number"),
        ("ttft=-5ms", "--slo 'ttft=-5ms': the limit must be a positive number"),
        ("ttft=1,ttft_p50=2", "--slo 'ttft=1,ttft_p50=2': ttft is given twice"),
    ],
)
def test_bad_slo_strings_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(SloError) as exc:
        parse_slo(text)
    assert str(exc.value) == message


def test_streaming_only_metrics_need_streaming() -> None:
    check_streaming(parse_slo("ttft=1,e2e=2"), stream=True)
    check_streaming(parse_slo("e2e=2"), stream=False)
    with pytest.raises(SloError) as exc:
        check_streaming(parse_slo("ttft=1,itl_p90=2,e2e=3"), stream=False)
    assert str(exc.value) == "--slo ttft_p99, itl_p90: measured on streamed answers only; drop --no-stream"


def req(ttft: float, tpot: float, e2e: float, itl: tuple[float, ...] = ()) -> RequestMetrics:
    return RequestMetrics(ttft, tpot, e2e, itl)


def test_goodput_counts_requests_within_every_bound() -> None:
    reqs = [
        req(100, 10, 1000, (10, 10, 10)),  # good
        req(600, 10, 1000, (10, 10, 10)),  # TTFT over
        req(100, 10, 6000, (10, 10, 10)),  # e2e over
        req(100, 10, 1000, (10, 10, 90)),  # its own p99 gap (89.4) over 50
        req(500, 0, 5000, ()),  # exactly at the bounds is within (vLLM: slo >= value)
    ]
    g = goodput(reqs, parse_slo("ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s"), wall_s=2.0, sent=6)
    assert g["good_requests"] == 2
    assert g["goodput"] == 1.0
    assert g["good_share"] == pytest.approx(2 / 6)
    assert g["met"] is False  # one of the 6 sent failed, and the p99s are over
    by = {o["objective"]: o for o in g["objectives"]}
    assert by["ttft_p99"]["requests_within"] == 4
    assert by["e2e_p99"]["requests_within"] == 4
    assert by["itl_p99"]["requests_within"] == 4
    # run level: p99 of [100, 100, 100, 500, 600] = 500 + 0.96 * 100
    assert by["ttft_p99"]["observed_ms"] == pytest.approx(596.0)
    assert by["ttft_p99"]["met"] is False


def test_a_run_meets_its_slo_at_the_stated_percentile() -> None:
    reqs = [req(float(t), 5, 100) for t in range(1, 101)]  # TTFT 1..100 ms
    g = goodput(reqs, parse_slo("ttft_p50=60ms"), wall_s=10.0, sent=100)
    assert g["objectives"][0]["observed_ms"] == pytest.approx(50.5)
    assert g["met"] is True
    assert g["good_requests"] == 60  # per request, the bound applies to every request
    assert g["goodput"] == 6.0
    assert goodput(reqs, parse_slo("ttft_p90=60ms"), 10.0, 100)["met"] is False


def test_no_completed_request_is_zero_goodput_and_not_met() -> None:
    g = goodput([], parse_slo("e2e=1s"), wall_s=1.0, sent=3)
    assert (g["good_requests"], g["goodput"], g["met"]) == (0, 0.0, False)
    assert math.isnan(g["objectives"][0]["observed_ms"])


def test_compare_rows_carry_each_runs_goodput_number() -> None:
    from vllmtune.bench.report import compare_rows

    def result(path: str, goodput: float | None) -> dict[str, object]:
        summary: dict[str, object] = {
            "request_throughput": 4.0,
            "e2e_ms": {"p50": 10.0, "p99": 20.0},
            "ttft_ms": {"p50": 5.0, "p99": 6.0},
            "tokens_per_call": 8.0,
            "output_token_throughput": 32.0,
        }
        if goodput is not None:
            summary["goodput"] = goodput
        return {"_path": path, "summary": summary, "samples": {"e2e_ms": [10.0, 11.0], "ttft_ms": [5.0, 6.0]}}

    rows = compare_rows([result("a.json", 3.5), result("b.json", None)], None)
    assert [r["goodput"] for r in rows] == [3.5, None]


def test_per_request_value_reads_the_objectives_metric() -> None:
    r = req(100.0, 20.0, 900.0, (10.0, 40.0, 20.0, 30.0))
    assert per_request_value(r, Objective("ttft", 99.0, 1.0)) == 100.0
    assert per_request_value(r, Objective("tpot", 99.0, 1.0)) == 20.0
    assert per_request_value(r, Objective("e2e", 99.0, 1.0)) == 900.0
    # itl: the request's own percentile of its gaps, over the sorted gaps (10, 20, 30, 40)
    assert per_request_value(r, Objective("itl", 50.0, 1.0)) == 25.0
    assert per_request_value(r, Objective("itl", 100.0, 1.0)) == 40.0
    assert per_request_value(req(100.0, 20.0, 900.0), Objective("itl", 99.0, 1.0)) == 0.0  # one token: no gap
