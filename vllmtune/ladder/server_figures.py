"""What vLLM itself measured during a rung: its TTFT histogram's median with a 95% CI, the change
of that median from the previous rung, and speculative decoding's acceptance.

Input: the bench results' ``server_histograms`` (each series a list of ``[le, cumulative count
delta]`` over the measured run, sorted by ``le``, the last ``le`` infinite) and ``spec_decode``
(``{drafts, draft_tokens, accepted_tokens, ...}`` or null). A rung's rounds are pooled by adding
the deltas bucket by bucket.

Median: Prometheus' ``histogram_quantile``: the bucket holding rank n/2, linearly interpolated
between its bounds (the first bucket's lower bound is 0; in the +Inf bucket, its lower bound).
CI: a seeded bootstrap over the bucketed counts: each of 4,000 replicates draws n observations from
the buckets in proportion to their counts (a multinomial resample, drawn bucket by bucket as
conditional binomials, so a replicate costs O(buckets) whatever n is) and takes the same
interpolated median; 95% = the replicates' 2.5th and 97.5th percentiles (the verdict's 99.2%: their
0.42nd and 99.58th); no CI below 8 requests; the change is the ratio
of two rungs' replicates (independent resamples: each rung has its own seed). A binomial draw is
exact below 30 expected successes, the rounded normal approximation above.

Resolution: the histogram only knows which bucket a request fell in; the interpolation assumes
the requests spread evenly inside it, and the CI covers the resampling of requests between
buckets, not where they lie inside one. vLLM's TTFT buckets are 1, 5, 10, 20,
40, 60, 80, 100, 250, 500, 750 ms, 1, 2.5, 5, 7.5, 10 s, ... (vllm/v1/metrics/buckets.py, vLLM 0.32.0):
two rungs whose medians fall in
the same wide bucket (250-500 ms, say) are told apart only by how the counts move within it, and
the CI cannot be narrower than what the bucket's counts allow.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from vllmtune.bench.stats import interval, quantile_ci_min_samples
from vllmtune.ladder_figures import VERDICT_LEVEL, VERDICT_RESAMPLES, ratio_verdict

TTFT = "vllm:time_to_first_token_seconds"
RESAMPLES = VERDICT_RESAMPLES  # enough for the verdict's CI; the 95% CI reads the same replicates


def pooled_histogram(results: Sequence[dict[str, Any]], series: str = TTFT) -> list[tuple[float, float]]:
    """The rounds' ``[le, cumulative count delta]`` added bucket by bucket ([] when none has it)."""
    sums: dict[float, float] = {}
    for res in results:
        for le, count in (res.get("server_histograms") or {}).get(series) or []:
            key = float(le)
            sums[key] = sums.get(key, 0.0) + float(count)
    return sorted(sums.items())


def _counts(cumulative: Sequence[tuple[float, float]]) -> list[float]:
    out, prev = [], 0.0
    for _, c in cumulative:
        out.append(max(0.0, c - prev))
        prev = max(prev, c)
    return out


def histogram_quantile(bounds: Sequence[float], counts: Sequence[float], q: float = 0.5) -> float:
    """The q-quantile of bucketed counts (per bucket, not cumulative) by linear interpolation
    within the bucket (Prometheus' rule); nan when empty."""
    total = sum(counts)
    if total <= 0:
        return math.nan
    rank = q * total
    below = 0.0
    for i, (le, c) in enumerate(zip(bounds, counts, strict=True)):
        if c > 0 and below + c >= rank:
            lower = bounds[i - 1] if i else 0.0
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / c
        below += c
    return bounds[-2] if len(bounds) > 1 else math.nan


def _binomial(n: int, p: float, rng: random.Random) -> int:
    """A Binomial(n, p) draw: exact (waiting times between successes) when n min(p, 1-p) < 30, the
    rounded normal approximation above that (Python 3.11 has no random.binomialvariate)."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    flip = p > 0.5
    q = 1 - p if flip else p
    if n * q < 30:
        log1q = math.log1p(-q)
        k, pos = 0, 0
        while True:  # geometric gaps between successes
            pos += int(math.log(1.0 - rng.random()) / log1q) + 1
            if pos > n:
                break
            k += 1
    else:
        k = min(n, max(0, round(rng.gauss(n * q, math.sqrt(n * q * (1 - q))))))
    return n - k if flip else k


def _replicates(bounds: Sequence[float], counts: Sequence[float], resamples: int, rng: random.Random) -> list[float]:
    """Bootstrap replicates of the interpolated median: each a multinomial resample of the n
    observations over the buckets (bucket by bucket, as conditional binomials: O(buckets) each)."""
    n = round(sum(counts))
    total = float(sum(counts))
    out = []
    for _ in range(resamples):
        left, mass, drawn = n, total, []
        for c in counts:
            k = _binomial(left, c / mass if mass > 0 else 0.0, rng)
            drawn.append(float(k))
            left -= k
            mass -= c
        out.append(histogram_quantile(bounds, drawn, 0.5))
    return out


def server_ttft(results: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any] | None:
    """The pooled server TTFT median in ms with its bootstrap 95% CI, and what the change needs
    (``_replicates``, dropped before writing); None when the results carry no histogram."""
    hist = pooled_histogram(results)
    if not hist:
        return None
    bounds = [le for le, _ in hist]
    counts = _counts(hist)
    n = sum(counts)
    if n <= 0:
        return None
    value = histogram_quantile(bounds, counts) * 1000
    enough = n >= quantile_ci_min_samples(50, VERDICT_LEVEL)
    reps = [v * 1000 for v in _replicates(bounds, counts, RESAMPLES, random.Random(seed))] if enough else []
    finite = [v for v in reps if not math.isnan(v)]
    return {
        "value": value,
        "ci95": interval(finite) if finite else None,
        "requests": int(n),
        "_replicates": reps,
    }


def server_ttft_change(prev: dict[str, Any] | None, cur: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ratio of two rungs' server TTFT medians with its 95% CI and its VERDICT_LEVEL CI (both
    from their independent replicates) and the verdict, read from the latter: entirely below 1 ->
    better, above -> worse, else none."""
    if not prev or not cur:
        return None
    ratio = cur["value"] / prev["value"] if prev["value"] > 0 else None
    pairs = list(zip(prev["_replicates"], cur["_replicates"], strict=False))
    dist = [b / a for a, b in pairs if a > 0 and not math.isnan(b)]
    ok = bool(pairs) and len(dist) == len(pairs)
    ci = interval(list(dist)) if ok else None
    judged = interval(dist, VERDICT_LEVEL) if ok else None
    return {"ratio": ratio, "ratio_ci95": ci, "ratio_ci_verdict": judged, "verdict": ratio_verdict(judged)}


def spec_decode(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The rounds' speculative-decoding counters added up: acceptance rate = accepted / draft
    tokens, mean acceptance length = 1 + accepted / drafts (vLLM's definitions); None without any."""
    parts = [res["spec_decode"] for res in results if res.get("spec_decode")]
    if not parts:
        return None
    drafts = sum(int(p.get("drafts") or 0) for p in parts)
    draft_tokens = sum(int(p.get("draft_tokens") or 0) for p in parts)
    accepted = sum(int(p.get("accepted_tokens") or 0) for p in parts)
    return {
        "drafts": drafts,
        "draft_tokens": draft_tokens,
        "accepted_tokens": accepted,
        "acceptance_rate": accepted / draft_tokens if draft_tokens else None,
        "mean_acceptance_length": 1 + accepted / drafts if drafts else None,
    }
