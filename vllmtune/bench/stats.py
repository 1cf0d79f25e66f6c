"""Percentiles with 95% confidence intervals, cheap enough for every per-chunk gap of a long run.

The percentile CIs are percentile-bootstrap CIs, but each bootstrap replicate costs O(1) instead
of a resample and a sort (O(n log n)): for sorted data x_(1) <= ... <= x_(n), a resample's k-th
smallest value is x[floor(n * U_(k))], where U_(k) is the k-th smallest of n uniforms, which is
Beta(k, n + 1 - k) distributed; given U_(k) = u, U_(k+1) = u + (1 - u) * Beta(1, n - k). So a
replicate of the (linearly interpolated) percentile is drawn from exactly the distribution the
resample-and-sort bootstrap samples, from two Beta draws. The mean's CI is Student's t interval.
Seeded, so reports are reproducible. Pure Python (no numpy): ``render`` never imports this.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

# two-sided 95% Student t quantiles t_{0.975, df} for df 1..30 (standard tables)
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959963984540054
MIN_CI_SAMPLES = 5  # fewer values (a side) and no CI is given: a bootstrap of so few says nothing


def t975(df: int) -> float:
    """t_{0.975, df}: the table up to 30, then the Cornish-Fisher expansion (error < 1e-4 there)."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list (numpy's default)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_percentile(sorted_values: Sequence[float], q: float, resamples: int, rng: random.Random) -> list[float]:
    """``resamples`` bootstrap replicates of ``percentile(resample, q)`` (see the module docstring)."""
    n = len(sorted_values)
    pos = (n - 1) * q / 100
    lo = math.floor(pos)
    frac = pos - lo
    k = lo + 1  # 1-based rank of the lower order statistic
    out = []
    for _ in range(resamples):
        u = rng.betavariate(k, n + 1 - k)
        a = sorted_values[min(n - 1, int(n * u))]
        if frac and k < n:
            u2 = u + (1 - u) * (1 - rng.random() ** (1 / (n - k)))  # Beta(1, n-k) by inversion
            b = sorted_values[min(n - 1, int(n * u2))]
            out.append(a + (b - a) * frac)
        else:
            out.append(a)
    return out


def _interval(dist: list[float]) -> list[float]:
    dist.sort()
    return [percentile(dist, 2.5), percentile(dist, 97.5)]


def mean_ci(values: Sequence[float]) -> list[float]:
    """Student's t 95% interval of the mean (n >= 2)."""
    n = len(values)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    half = t975(n - 1) * math.sqrt(var / n)
    return [m - half, m + half]


def summarize(values: Sequence[float], resamples: int = 1000, seed: int = 0) -> dict[str, float | list[float] | int]:
    """count, mean, p50, p90, p99, min, max and 95% CIs for mean (t) and p50/p99 (bootstrap)."""
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
    if n >= MIN_CI_SAMPLES:
        rng = random.Random(seed)
        out["mean_ci95"] = mean_ci(vals)
        out["p50_ci95"] = _interval(bootstrap_percentile(vals, 50, resamples, rng))
        out["p99_ci95"] = _interval(bootstrap_percentile(vals, 99, resamples, rng))
    return out


def diff_ci(a: Sequence[float], b: Sequence[float], q: float = 50, resamples: int = 1000, seed: int = 0) -> list[float]:
    """95% bootstrap CI of percentile_q(b) - percentile_q(a) (independent samples; nan, nan below
    MIN_CI_SAMPLES values a side)."""
    sa = sorted(v for v in a if not math.isnan(v))
    sb = sorted(v for v in b if not math.isnan(v))
    if len(sa) < MIN_CI_SAMPLES or len(sb) < MIN_CI_SAMPLES:
        return [math.nan, math.nan]
    rng = random.Random(seed)
    ra = bootstrap_percentile(sa, q, resamples, rng)
    rb = bootstrap_percentile(sb, q, resamples, rng)
    return _interval([y - x for x, y in zip(ra, rb, strict=True)])
