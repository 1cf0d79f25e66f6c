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


def quantile_ci_min_samples(q: float, level: float = 0.95) -> int:
    """The fewest values for which a distribution-free ``level`` CI of the q-th percentile exists
    (and at least MIN_CI_SAMPLES): with n values, the interval [x_(1), x_(n)] covers the
    percentile with probability 1 - p^n - (1 - p)^n (p = q / 100), so each tail needs
    max(p, 1 - p)^n <= (1 - level) / 2. Below that no method can give the CI honestly (the
    percentile bootstrap of an extreme percentile just resamples the largest values): p50 needs 6
    values at 95%, p90 36, p99 368."""
    p = max(q, 100 - q) / 100
    if p >= 1:
        return MIN_CI_SAMPLES
    need = math.log((1 - level) / 2) / math.log(p)
    return max(MIN_CI_SAMPLES, math.floor(need) + 1)


def _t_within(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df >= 1 (Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd
        if df == 1:
            return 2 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(level: float, df: int) -> float:
    """t such that P(|T| < t) = level (the two-sided ``level`` interval's half-width in standard
    errors), Student's t with integer df >= 1: bisection on the exact distribution function."""
    lo, hi = 0.0, 1.0
    while _t_within(hi, df) < level:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if _t_within(mid, df) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


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


def interval(dist: list[float], level: float = 0.95) -> list[float]:
    """The central ``level`` interval of bootstrap replicates (sorts ``dist`` in place)."""
    dist.sort()
    tail = (1 - level) * 50
    return [percentile(dist, tail), percentile(dist, 100 - tail)]


def mean_ci(values: Sequence[float]) -> list[float]:
    """Student's t 95% interval of the mean (n >= 2)."""
    n = len(values)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    half = t975(n - 1) * math.sqrt(var / n)
    return [m - half, m + half]


def summarize(values: Sequence[float], resamples: int = 1000, seed: int = 0) -> dict[str, float | list[float] | int]:
    """count, mean, p50, p90, p99, min, max and 95% CIs for mean (t) and p50/p99 (bootstrap; each
    percentile's CI only from ``quantile_ci_min_samples`` values: p99 needs 368)."""
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
        for q in (50, 99):
            if n >= quantile_ci_min_samples(q):
                out[f"p{q}_ci95"] = interval(bootstrap_percentile(vals, q, resamples, rng))
    return out


def diff_ci(
    a: Sequence[float], b: Sequence[float], q: float = 50, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """``level`` bootstrap CI of percentile_q(b) - percentile_q(a) (independent samples; nan, nan
    below ``quantile_ci_min_samples(q, level)`` values a side)."""
    sa = sorted(v for v in a if not math.isnan(v))
    sb = sorted(v for v in b if not math.isnan(v))
    need = quantile_ci_min_samples(q, level)
    if len(sa) < need or len(sb) < need:
        return [math.nan, math.nan]
    rng = random.Random(seed)
    ra = bootstrap_percentile(sa, q, resamples, rng)
    rb = bootstrap_percentile(sb, q, resamples, rng)
    return interval([y - x for x, y in zip(ra, rb, strict=True)], level)
