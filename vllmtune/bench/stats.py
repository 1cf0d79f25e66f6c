"""Percentiles with bootstrap confidence intervals (seeded, so reports are reproducible)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: Sequence[float], resamples: int = 400, seed: int = 0) -> dict[str, float | list[float] | int]:
    """count, mean, p50, p90, p99, min, max and 95% bootstrap CIs for mean/p50/p99."""
    vals = sorted(v for v in values if not math.isnan(v))
    n = len(vals)
    if n == 0:
        return {"count": 0}
    out: dict[str, float | list[float] | int] = {
        "count": n,
        "mean": sum(vals) / n,
        "p50": percentile(vals, 50),
        "p90": percentile(vals, 90),
        "p99": percentile(vals, 99),
        "min": vals[0],
        "max": vals[-1],
    }
    if n >= 5:
        rng = random.Random(seed)
        means, p50s, p99s = [], [], []
        for _ in range(resamples):
            sample = sorted(vals[rng.randrange(n)] for _ in range(n))
            means.append(sum(sample) / n)
            p50s.append(percentile(sample, 50))
            p99s.append(percentile(sample, 99))
        for name, dist in (("mean_ci95", means), ("p50_ci95", p50s), ("p99_ci95", p99s)):
            dist.sort()
            out[name] = [percentile(dist, 2.5), percentile(dist, 97.5)]
    return out


def diff_ci(a: Sequence[float], b: Sequence[float], q: float = 50, resamples: int = 400, seed: int = 0) -> list[float]:
    """95% bootstrap CI of percentile_q(b) - percentile_q(a) (independent samples)."""
    sa = [v for v in a if not math.isnan(v)]
    sb = [v for v in b if not math.isnan(v)]
    if len(sa) < 5 or len(sb) < 5:
        return [math.nan, math.nan]
    rng = random.Random(seed)
    diffs = []
    for _ in range(resamples):
        ra = sorted(sa[rng.randrange(len(sa))] for _ in range(len(sa)))
        rb = sorted(sb[rng.randrange(len(sb))] for _ in range(len(sb)))
        diffs.append(percentile(rb, q) - percentile(ra, q))
    diffs.sort()
    return [percentile(diffs, 2.5), percentile(diffs, 97.5)]
