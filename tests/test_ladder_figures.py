"""The ladder's verdicts and cost model on deterministic, constructed data (no server, no clock)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.support.require_real import require_module
from vllmtune.bench.report import REQUIRED
from vllmtune.ladder.args import LadderArgs
from vllmtune.ladder.server_figures import TTFT
from vllmtune.ladder.table import ladder_notes, ladder_rows, ladder_table, operating_point
from vllmtune.ladder_figures import (
    BETTER,
    SAME,
    VERDICT_LEVEL,
    WORSE,
    busy_seconds,
    compare_figures,
    cost_sample,
    rung_figures,
    server_seconds,
    verdict,
    welch_diff_ci,
)


def req(sent: float, e2e: float, *, hit: bool = False, error: str | None = None, tokens: int = 8) -> dict[str, Any]:
    """One line as ``bench --save-requests`` writes it (times in ms)."""
    return {
        "sent_ms": sent,
        "e2e_ms": e2e,
        "ttft_ms": e2e / 2,
        "error": error,
        "completion_tokens": 0 if error else tokens,
        "x_cache": "HIT" if hit else None,
    }


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        ([-3.0, -1.0], BETTER),
        ([1.0, 3.0], WORSE),
        ([-1.0, 1.0], SAME),
        ([0.0, 2.0], SAME),  # touching 0 includes it
        ([-2.0, 0.0], SAME),
        ([math.nan, math.nan], SAME),  # too few samples: no claim
        (None, SAME),
    ],
)
def test_verdict_is_a_win_or_loss_only_when_the_ci_excludes_0(ci: list[float] | None, expected: str) -> None:
    assert verdict(ci) == expected


INF = math.inf
BASE = [100.0 + (i * 7) % 20 for i in range(60)]  # 100..119, deterministic


def test_compare_figures_on_synthetic_samples() -> None:
    def samples(shift: float) -> dict[str, list[float]]:
        return {"e2e_ms": [v + shift for v in BASE], "ttft_ms": [v / 2 + shift for v in BASE], "cost_ms": BASE}

    faster = compare_figures(samples(0), samples(-30))
    assert {k: f["verdict"] for k, f in faster.items()} == {
        "e2e_p50_ms": BETTER,
        "e2e_p99_ms": SAME,  # 60 requests a side: too few for any honest CI of p99 (368 at 95%)
        "ttft_p50_ms": BETTER,
        "cost_ms_per_request": SAME,  # the same cost sample: an interval centred on 0
    }
    assert faster["e2e_p99_ms"]["ci95"] is None and faster["e2e_p99_ms"]["delta_ci95"] is None
    assert faster["e2e_p99_ms"]["ratio_ci95"] is faster["e2e_p99_ms"]["ratio_ci_verdict"] is None
    many = compare_figures(
        {"e2e_ms": BASE * 10, "ttft_ms": BASE * 10, "cost_ms": BASE},
        {"e2e_ms": [v - 30 for v in BASE * 10], "ttft_ms": BASE * 10, "cost_ms": BASE},
    )  # 600 a side: enough for p99's verdict CI (546 at 99.2%)
    assert many["e2e_p99_ms"]["verdict"] == BETTER and many["e2e_p99_ms"]["ci95"] is not None
    assert faster["e2e_p50_ms"]["delta"] == pytest.approx(-30)
    lo, hi = faster["e2e_p50_ms"]["delta_ci95"]
    assert lo < -30 < hi or lo == hi == -30
    lo, hi = faster["cost_ms_per_request"]["delta_ci95"]
    assert lo == pytest.approx(-hi) and lo < 0
    slower = compare_figures(samples(0), samples(+30))
    assert slower["e2e_p50_ms"]["verdict"] == WORSE and slower["ttft_p50_ms"]["verdict"] == WORSE
    # the same distribution in another order: the CI of the difference straddles 0
    same = compare_figures(samples(0), {k: v[::-1] for k, v in samples(0).items()})
    for key, fig in same.items():
        if key == "e2e_p99_ms":  # too few requests for p99 (see above)
            assert fig["delta_ci95"] is None and fig["verdict"] == SAME
            continue
        lo, hi = fig["delta_ci95"]
        assert lo <= 0 <= hi and fig["verdict"] == SAME
    # the first rung has values and CIs, no verdict
    first = compare_figures(None, samples(0))
    assert set(first["e2e_p50_ms"]) == {"value", "ci95"} and first["e2e_p50_ms"]["value"] == pytest.approx(109.5)


def test_too_few_samples_is_no_significant_change() -> None:
    few = {"e2e_ms": [1.0, 2.0], "ttft_ms": [], "cost_ms": [1.0]}
    figs = compare_figures(few, {"e2e_ms": [50.0, 60.0], "ttft_ms": [], "cost_ms": [9.0]})
    assert {f["verdict"] for f in figs.values()} == {SAME}
    assert all(f["delta_ci95"] is None for f in figs.values())


def test_welch_interval_matches_scipy() -> None:
    from scipy import stats as sps

    a = [float(v) for v in BASE]
    b = [v * 0.8 + (i % 3) for i, v in enumerate(BASE[:40])]
    lo, hi = welch_diff_ci(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert lo == pytest.approx(ref.low, rel=2e-3) and hi == pytest.approx(ref.high, rel=2e-3)


def test_busy_time_is_the_union_of_in_server_intervals_and_hits_cost_nothing() -> None:
    lines = [
        req(0, 100),  # A: alone 0-50, with B 50-100
        req(50, 100),  # B: with A 50-100, alone 100-150
        req(20, 1, hit=True),  # a prompt-cache hit: answered by the proxy
        req(200, 60, error="http_500"),  # failed: the server spent the time anyway
        {"sent_ms": None, "e2e_ms": None, "error": "not_sent", "x_cache": None},
    ]
    assert server_seconds(lines) == pytest.approx([0.075, 0.075, 0.0, 0.060, 0.0])
    assert busy_seconds(lines) == pytest.approx(0.210)
    fig = rung_figures([lines])
    # 210 ms of server time over 3 successful requests (the hit is a success)
    assert fig["cost_s_per_request"] == pytest.approx(0.070)
    assert (fig["requests_sent"], fig["requests_ok"], fig["prompt_cache_hits"]) == (4, 3, 1)
    assert fig["prompt_cache_hit_ratio"] == pytest.approx(1 / 3)
    assert fig["output_tokens"] == 24
    assert sum(cost_sample([lines])) / len(cost_sample([lines])) == pytest.approx(70.0)


def test_touching_intervals_and_runs_are_not_merged() -> None:
    back_to_back = [req(0, 10), req(10, 10)]  # one ends as the next starts: 20 ms, not shared
    assert server_seconds(back_to_back) == pytest.approx([0.010, 0.010])
    # two rounds each on its own clock: their busy times add (the intervals are not overlaid)
    assert rung_figures([back_to_back, back_to_back])["busy_s"] == pytest.approx(0.040)
    nested = [req(0, 100), req(10, 20)]  # a short request inside a long one: the union is 100 ms
    assert busy_seconds(nested) == pytest.approx(0.100)
    assert server_seconds(nested) == pytest.approx([0.090, 0.010])
    no_proxy = rung_figures([nested])
    assert no_proxy["prompt_cache_hits"] is None and no_proxy["prompt_cache_hit_ratio"] is None


def write_rung(tmp: Path, name: str, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    summary = {key: {"count": 0} for key in REQUIRED["summary"]}  # what load_result requires (unread here)
    samples = {key: [] for key in REQUIRED["samples"]}
    result = {"version": 1, "summary": summary, "samples": samples, "server_metrics": {}, "quality": None, **extra}
    (tmp / f"{name}.json").write_text(json.dumps(result))
    (tmp / f"{name}.requests.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "rung": name,
        "status": "done",
        "results": [str(tmp / f"{name}.json")],
        "requests": [str(tmp / f"{name}.requests.jsonl")],
    }


def test_rows_table_and_notes_from_constructed_rungs(tmp_path: Path) -> None:
    # baseline: 40 requests one after another, 100 ms each; the prompt cache answers half of the
    # same requests (1 ms each, in the gaps): half the server time per request; prefix caching:
    # the same intervals as the prompt-cache rung (no change at all)
    base = [req(i * 100, 100) for i in range(40)]
    cached = [req(i * 100, 1, hit=True) if i % 2 else req(i * 100, 100) for i in range(40)]
    # vLLM's TTFT histogram (cumulative deltas): the baseline's 40 requests all between 40 and 60 ms,
    # the prompt cache's 20 misses the same; prefix caching's 20 between 10 and 20 ms; spec-decode
    # counters on the last rung
    slow = {TTFT: [[0.01, 0], [0.02, 0], [0.04, 0], [0.06, 40], [INF, 40]]}
    fast = {TTFT: [[0.01, 0], [0.02, 20], [0.04, 20], [0.06, 20], [INF, 20]]}
    spec = {"drafts": 40, "draft_tokens": 120, "accepted_tokens": 30, "acceptance_rate": 0.25,
            "mean_acceptance_length": 1.75}  # fmt: skip
    entries = [
        write_rung(tmp_path, "baseline", base, server_histograms=slow),
        write_rung(tmp_path, "prompt-cache", cached, server_histograms={TTFT: [[le, c / 2] for le, c in slow[TTFT]]}),
        {"rung": "batching", "status": "failed", "reason": "did not start"},
        write_rung(tmp_path, "prefix-caching", cached, server_histograms=fast, spec_decode=spec),
        {"rung": "quantization", "status": "skipped", "reason": "not configured in the profile"},
    ]
    args = LadderArgs(
        profile="p.yaml", out=str(tmp_path), workload="shared-prefix", requests=40, concurrency=1, gpu_hour_usd=3.6
    )
    rows, measured = ladder_rows(args, entries)
    assert [r["config"] for r in rows] == ["baseline", "+ prompt cache", "+ batching", "+ prefix caching"]
    b, pc, failed, px = rows
    assert failed == {"config": "+ batching", "failed": True, "reason": "did not start"}
    assert b["cost_ms_per_request"] == pytest.approx(100) and b["relative_cost"] == 1.0
    assert pc["cost_ms_per_request"] == pytest.approx(50) and pc["relative_cost"] == pytest.approx(0.5)
    assert pc["prompt_cache_hits"] == 20 and pc["prompt_cache_hit_ratio"] == 0.5
    assert pc["verdicts"]["cost_ms_per_request"] == BETTER and pc["vs"] == "baseline"
    assert px["vs"] == "+ prompt cache"  # the failed rung is not what the next one is compared with
    assert {k: v for k, v in px["verdicts"].items() if k != "server_ttft_p50_ms"} == dict.fromkeys(
        ("e2e_p50_ms", "e2e_p99_ms", "ttft_p50_ms", "cost_ms_per_request"), SAME
    )
    # $3.6 per hour = $0.001 per second: 0.1 s per request -> $0.1 per 1k; 8 tokens per 0.1 s
    assert b["usd_per_1k_requests"] == pytest.approx(0.1)
    assert b["usd_per_1m_output_tokens"] == pytest.approx(0.1 / 8 * 1e6 / 1000)
    assert pc["usd_per_1k_requests"] == pytest.approx(0.05)
    assert len(measured) == 3
    table = ladder_table(rows)
    assert table == [
        '| Config | p50 ms | p99 ms | TTFT p50 | Server TTFT p50 | Tokens/call | Cache hits | Quality | S'
        'erver ms/req | Relative cost | $/1k req | $/1M out tok | vs previous rung |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
        '| baseline | 100 [100, 100] | 100 | 50 [50, 50] | 50 [50, 50] | 8.0 | - | - | 100 [100, 100] | 1'
        '.00x | 0.1000 | 12.50 | - |',
        '| + prompt cache | 50 [1, 100] | 100 | 25 [0, 50] | 50 [50, 50] | 8.0 | 50% | - | 50 [34, 66] | '
        '0.50x (95% CI 0.34-0.66) | 0.0500 | 6.25 | better: cost; no significant change: p50, p99, TTFT p'
        '50, server TTFT |',
        '| + batching (FAILED) | - | - | - | - | - | - | - | - | - | - | - | - |',
        '| + prefix caching | 50 [1, 100] | 100 | 25 [0, 50] | 15 [15, 15] | 8.0 | 50% | - | 50 [34, 66] '
        '| 0.50x (95% CI 0.34-0.66) | 0.0500 | 6.25 | better: server TTFT; no significant change: p50, p9'
        '9, TTFT p50, cost |',
    ]
    assert ladder_notes(rows, operating_point(args)) == [
        'Operating point: closed loop at concurrency 1, 40 measured requests per rung per round after 2 w'
        'arm-up requests (excluded), workload shared-prefix, seed 0, 1 round (the rungs one after another'
        ').',
        'Relative cost: server-busy seconds per successful request at that point (the union of the reques'
        "ts' in-server intervals; prompt-cache hits cost 0), relative to the first rung, with Fieller's 9"
        "5% CI of the ratio (its verdict reads the 99.2% CI). [a, b]: 95% CI. Server TTFT p50: vLLM's TTF"
        'T histogram, interpolated within its bucket (the CI: a bootstrap over the bucketed counts; no fi'
        'ner than the buckets).',
        'Speculative decoding (+ prefix caching): 30 of 120 draft tokens accepted (25%), mean acceptance '
        "length 1.75 over 40 drafts (vLLM's vllm:spec_decode_* counters).",
        '',
        'Change from the previous rung (95% CI of the difference, then the ratio with its 95% CI and its '
        "99.2% CI; the verdict is the ratio's 99.2% CI, Bonferroni over a rung's 6 comparisons: one inclu"
        "ding 1 is no significant change; a percentile's CI needs enough requests a side, 8 for p50 and 5"
        '46 for p99):',
        '- + prompt cache vs baseline: p50 -50 ms [-99, +0.0], -50% (95% CI -99% to +0.0%, 99.2% CI -99% '
        'to +0.0%) no significant change; p99 +0.0 ms [CI: p99 needs 368 requests a side, 40 here], +0.0%'
        ' (95% CI: too few samples) no significant change; TTFT p50 -25 ms [-50, +0.0], -50% (95% CI -99%'
        ' to +0.0%, 99.2% CI -99% to +0.0%) no significant change; cost -50 ms [-66, -34], -50% (95% CI -'
        '66% to -34%, 99.2% CI -72% to -28%) better; server TTFT p50 +0.0% (95% CI +0.0% to +0.0%, 99.2% '
        'CI +0.0% to +0.0%) no significant change',
        '- + prefix caching vs + prompt cache: p50 +0.0 ms [-99, +99], +0.0% (95% CI -99% to +9,900%, 99.'
        '2% CI -99% to +9,900%) no significant change; p99 +0.0 ms [CI: p99 needs 368 requests a side, 40'
        ' here], +0.0% (95% CI: too few samples) no significant change; TTFT p50 +0.0 ms [-50, +50], +0.0'
        '% (95% CI -99% to +9,900%, 99.2% CI -99% to +9,900%) no significant change; cost +0.0 ms [-23, +'
        '23], +0.0% (95% CI -38% to +60%, 99.2% CI -49% to +95%) no significant change; server TTFT p50 -'
        '70% (95% CI -70% to -70%, 99.2% CI -70% to -70%) better',
    ]
    # the server TTFT: all 40 baseline requests in the 40-60 ms bucket: the median interpolated to 50 ms,
    # its CI no narrower (nor wider) than the bucket allows; prefix caching's 20 in 10-20 ms: 15 ms
    assert b["server_ttft_p50_ms"] == {"value": pytest.approx(50), "ci95": [pytest.approx(50)] * 2, "requests": 40}
    assert px["server_ttft_change"] == {"ratio": pytest.approx(0.3), "ratio_ci95": [pytest.approx(0.3)] * 2,
                                        "ratio_ci_verdict": [pytest.approx(0.3)] * 2, "verdict": BETTER}  # fmt: skip
    assert px["verdicts"]["server_ttft_p50_ms"] == BETTER and "server_ttft_p50_ms" not in b["verdicts"]
    assert px["spec_decode"] == spec and pc["spec_decode"] is None
    assert pc["relative_cost_verdict"] == BETTER and b["relative_cost_ci95"] is None


def test_fieller_interval_solves_its_defining_equation() -> None:
    from vllmtune.ladder_figures import _welch_parts, fieller_ratio_ci

    a = [float(v) for v in BASE]
    b = [v * 0.6 + (i % 5) for i, v in enumerate(BASE[:45])]
    lo, hi = fieller_ratio_ci(a, b)
    ma, mb, va, vb, t = _welch_parts(a, b)
    for r in (lo, hi):  # the bounds are the r where |mb - r ma| / sqrt(vb + r^2 va) is exactly t
        assert abs(mb - r * ma) / math.sqrt(vb + r * r * va) == pytest.approx(t)
    assert lo < mb / ma < hi < 1
    # a denominator whose mean is not clearly above 0: unbounded, so not computable
    assert all(math.isnan(v) for v in fieller_ratio_ci([-5.0, 5.0, 0.1], b))
    assert all(math.isnan(v) for v in fieller_ratio_ci([1.0], b))


def test_percentile_ratio_ci_agrees_with_resampling() -> None:
    from vllmtune.ladder_figures import percentile_ratio_ci

    np = require_module("numpy", "numpy (the test extra: pip install -e '.[test]')")
    a = [float(v) for v in BASE]
    b = [v * 0.7 for v in BASE[:50]]
    lo, hi = percentile_ratio_ci(a, b, 50)
    rng = np.random.default_rng(0)
    reps = [np.percentile(rng.choice(b, len(b)), 50) / np.percentile(rng.choice(a, len(a)), 50) for _ in range(4000)]
    ref_lo, ref_hi = np.percentile(reps, [2.5, 97.5])
    assert lo == pytest.approx(ref_lo, abs=0.02) and hi == pytest.approx(ref_hi, abs=0.02)
    assert percentile_ratio_ci(a, b, 50) == [lo, hi]  # seeded
    assert all(math.isnan(v) for v in percentile_ratio_ci(a[:4], b, 50))


@pytest.mark.parametrize(
    ("ci", "expected"),
    [([0.5, 0.9], BETTER), ([1.1, 1.4], WORSE), ([0.9, 1.1], SAME), ([1.0, 1.2], SAME), (None, SAME)],
)
def test_ratio_verdict_is_a_win_or_loss_only_when_the_ci_excludes_1(ci: list[float] | None, expected: str) -> None:
    from vllmtune.ladder_figures import ratio_verdict

    assert ratio_verdict(ci) == expected


def test_served_by_server() -> None:
    from vllmtune.ladder_figures import served_by_server

    assert served_by_server(req(0, 10)) is True
    assert served_by_server(req(0, 10, error="http_500")) is True  # the server spent the time
    assert served_by_server(req(0, 10, hit=True)) is False  # answered by the prompt-cache proxy
    assert served_by_server({"sent_ms": None, "e2e_ms": None, "x_cache": None}) is False  # never sent
    assert served_by_server({"sent_ms": 5.0, "e2e_ms": None, "x_cache": "MISS"}) is False  # no end time


def test_figure_value() -> None:
    from vllmtune.ladder_figures import figure_value

    samples = {"e2e_ms": [float(v) for v in BASE], "ttft_ms": [], "cost_ms": [4.0]}
    mean = figure_value(samples, "e2e_ms", None)
    assert mean["value"] == pytest.approx(sum(BASE) / 60)
    assert mean["ci95"][0] < mean["value"] < mean["ci95"][1]
    p50 = figure_value(samples, "e2e_ms", 50)
    assert p50["value"] == pytest.approx(109.5) and p50["ci95"][0] <= 109.5 <= p50["ci95"][1]
    assert figure_value(samples, "ttft_ms", 50) == {"value": None, "ci95": None}
    assert figure_value(samples, "cost_ms", None) == {"value": 4.0, "ci95": None}  # one value: no interval


def test_verdict_summary() -> None:
    from vllmtune.ladder.table import verdict_summary

    row = {"verdicts": {"e2e_p50_ms": BETTER, "e2e_p99_ms": SAME, "ttft_p50_ms": WORSE,
                        "cost_ms_per_request": BETTER, "server_ttft_p50_ms": SAME}}  # fmt: skip
    assert verdict_summary(row) == "better: p50, cost; worse: TTFT p50; no significant change: p99, server TTFT"
    assert verdict_summary({"verdicts": {}}) == "-"
    assert verdict_summary({}) == "-"


def test_ratio_figure_of_means_and_percentiles_with_their_verdicts() -> None:
    from vllmtune.ladder_figures import fieller_ratio_ci, ratio_figure

    a = [100.0, 104.0, 96.0, 102.0, 98.0, 100.0, 101.0, 99.0]  # 8: the fewest for p50's 99.2% CI
    halved = [x / 2 for x in a]
    mean = ratio_figure(a, halved, None)
    assert mean["ratio"] == 0.5
    assert mean["ratio_ci95"] == fieller_ratio_ci(a, halved)
    assert mean["ratio_ci95"][0] < 0.5 < mean["ratio_ci95"][1] < 1
    assert mean["ratio_verdict"] == "better"
    same = ratio_figure(a, list(reversed(a)), 50)
    assert same["ratio"] == 1.0 and same["ratio_verdict"] == "no significant change"
    assert same["ratio_ci95"][0] < 1 < same["ratio_ci95"][1]
    assert ratio_figure(a, [2 * x for x in a], 50)["ratio_verdict"] == "worse"
    assert ratio_figure([], a, None) == {
        "ratio": None, "ratio_ci95": None, "ratio_ci_verdict": None, "ratio_verdict": "no significant change"
    }  # fmt: skip
    # the verdict reads the wider Bonferroni CI: a 95% CI may exclude 1 while the verdict says none
    assert mean["ratio_ci_verdict"] == fieller_ratio_ci(a, halved, VERDICT_LEVEL)
    assert mean["ratio_ci_verdict"][0] < mean["ratio_ci95"][0] and mean["ratio_ci95"][1] < mean["ratio_ci_verdict"][1]
    seven = ratio_figure(a[:7], [2 * x for x in a[:7]], 50)  # 7 a side: a 95% CI of p50, not a 99.2% one
    assert seven["ratio_ci95"] is not None and seven["ratio_ci_verdict"] is None
    assert seven["ratio_verdict"] == "no significant change"
    # a baseline mean not clearly above 0: no bounded interval, hence no verdict
    unbounded = ratio_figure([-1.0, 1.0, -2.0, 2.0], [1.0, 1.1, 0.9, 1.0], None)
    assert unbounded["ratio"] is None and unbounded["ratio_ci95"] is None
    assert unbounded["ratio_verdict"] == "no significant change"
