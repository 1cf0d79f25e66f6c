"""vLLM's own TTFT histogram per rung (median by interpolation, bootstrap CI over the bucketed
counts, the change between rungs) and speculative decoding's counters, on constructed results."""

from __future__ import annotations

import math

import pytest

from tests.support.require_real import require_module
from vllmtune.ladder.server_figures import (
    TTFT,
    histogram_quantile,
    pooled_histogram,
    server_ttft,
    server_ttft_change,
    spec_decode,
)

INF = math.inf
BOUNDS = [0.01, 0.02, 0.04, 0.06, INF]


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 10 in (0, 10 ms], 30 in (10, 20], 60 in (20, 40]: rank 50 is 10 into the third bucket's 60
    assert histogram_quantile(BOUNDS, [10, 30, 60, 0, 0]) == pytest.approx(0.02 + 0.02 * 10 / 60)
    assert histogram_quantile(BOUNDS, [4, 0, 0, 0, 0]) == pytest.approx(0.005)  # first bucket: from 0
    assert histogram_quantile(BOUNDS, [0, 0, 0, 1, 9]) == 0.06  # in +Inf: its lower bound
    assert math.isnan(histogram_quantile(BOUNDS, [0, 0, 0, 0, 0]))


def test_rounds_are_pooled_bucket_by_bucket() -> None:
    one = {"server_histograms": {TTFT: [[0.01, 2], [0.02, 5], [INF, 6]]}}
    two = {"server_histograms": {TTFT: [[0.01, 1], [0.02, 1], [INF, 4]]}}
    assert pooled_histogram([one, two, {"server_histograms": None}, {}]) == [(0.01, 3), (0.02, 6), (INF, 10)]
    assert server_ttft([{}, {"server_histograms": {}}]) is None
    # as JSON may carry the last bound: Prometheus' "+Inf" or Python's Infinity
    spelled = {"server_histograms": {TTFT: [[0.01, 1], ["+Inf", 2]]}}
    assert pooled_histogram([spelled, {"server_histograms": {TTFT: [[0.01, 1], [INF, 1]]}}]) == [(0.01, 2), (INF, 3)]


@pytest.mark.parametrize("n", [100, 1000, 200_000])  # exact binomial draws, then the normal approximation
def test_median_ci_is_a_seeded_bootstrap_over_the_counts(n: int) -> None:
    share = [0.1, 0.3, 0.6, 0.0, 0.0]
    cumulative = [[le, n * sum(share[: i + 1])] for i, le in enumerate(BOUNDS)]
    fig = server_ttft([{"server_histograms": {TTFT: cumulative}}])
    assert fig is not None
    assert fig["value"] == pytest.approx(20 + 20 * 10 / 60)  # rank n/2: 1/6 into the (20, 40] bucket
    assert fig["requests"] == n and len(fig["_replicates"]) == 4000
    lo, hi = fig["ci95"]
    assert lo < fig["value"] < hi
    # the same bootstrap by another route: numpy's multinomial resamples of the n requests, same rule
    np = require_module("numpy", "numpy (the test extra: pip install -e '.[test]')")
    rng = np.random.default_rng(1)
    reps = [histogram_quantile(BOUNDS, [float(c) for c in counts]) * 1000 for counts in rng.multinomial(n, share, 4000)]
    ref_lo, ref_hi = np.percentile(reps, [2.5, 97.5])
    width = ref_hi - ref_lo
    assert lo == pytest.approx(ref_lo, abs=0.1 * width) and hi == pytest.approx(ref_hi, abs=0.1 * width)
    assert server_ttft([{"server_histograms": {TTFT: cumulative}}]) == fig  # seeded: the same CI every time


def test_the_change_between_rungs_is_a_ratio_with_a_ci_and_a_verdict() -> None:
    slow = server_ttft([{"server_histograms": {TTFT: [[0.02, 0], [0.04, 10], [0.06, 50], [INF, 50]]}}])
    fast = server_ttft([{"server_histograms": {TTFT: [[0.02, 30], [0.04, 50], [0.06, 50], [INF, 50]]}}])
    assert slow is not None and fast is not None
    change = server_ttft_change(slow, fast)
    assert change is not None
    assert change["ratio"] == pytest.approx(fast["value"] / slow["value"])
    lo, hi = change["ratio_ci95"]
    assert lo <= change["ratio"] <= hi < 1 and change["verdict"] == "better"
    assert server_ttft_change(fast, slow)["verdict"] == "worse"  # type: ignore[index]
    same = server_ttft_change(slow, server_ttft([{"server_histograms": {TTFT: [[0.02, 0], [0.04, 10], [0.06, 50],
                                                                                [INF, 50]]}}], seed=1))  # fmt: skip
    assert same is not None and same["ratio"] == 1.0
    assert same["ratio_ci95"][0] < 1 < same["ratio_ci95"][1] and same["verdict"] == "no significant change"
    assert server_ttft_change(None, fast) is None and server_ttft_change(slow, None) is None


def test_a_few_requests_have_a_median_but_no_ci() -> None:
    few = server_ttft([{"server_histograms": {TTFT: [[0.02, 3], [INF, 3]]}}])
    assert few == {"value": pytest.approx(10), "ci95": None, "requests": 3, "_replicates": []}
    other = server_ttft([{"server_histograms": {TTFT: [[0.02, 30], [INF, 30]]}}])
    assert server_ttft_change(few, other) == {"ratio": pytest.approx(1.0), "ratio_ci95": None, "ratio_ci_verdict": None,
                                              "verdict": "no significant change"}  # fmt: skip


def test_spec_decode_counters_are_added_up_and_rates_recomputed() -> None:
    a = {"spec_decode": {"drafts": 10, "draft_tokens": 30, "accepted_tokens": 15, "acceptance_rate": 0.5,
                         "mean_acceptance_length": 2.5}}  # fmt: skip
    b = {"spec_decode": {"drafts": 30, "draft_tokens": 90, "accepted_tokens": 15, "acceptance_rate": 1 / 6,
                         "mean_acceptance_length": 1.5}}  # fmt: skip
    assert spec_decode([a, b, {"spec_decode": None}]) == {
        "drafts": 40,
        "draft_tokens": 120,
        "accepted_tokens": 30,
        "acceptance_rate": 0.25,
        "mean_acceptance_length": 1.75,
    }
    zero = {"spec_decode": {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0}}
    assert spec_decode([zero]) == {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0, "acceptance_rate": None,
                                   "mean_acceptance_length": None}  # fmt: skip
    assert spec_decode([{}, {"spec_decode": None}]) is None
