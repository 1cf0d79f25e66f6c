"""vllmtune.bench.stats against references nobody here wrote: the exact bootstrap distribution of an
order statistic (binomial, Hutson & Ernst 2000), a plain resample-and-sort bootstrap (numpy) and
Student's t (scipy). Fixed data and seeds, so every run draws the same numbers; the tolerances are
the sampling bounds of the Monte Carlo parts, at a false-alarm level of 1e-6."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sps

from vllmtune.bench import stats

# DKW: P(sup |F_R - F| > eps) <= 2 exp(-2 R eps^2); eps for a 1e-6 false alarm
ALPHA = 1e-6


def dkw(r: int) -> float:
    return math.sqrt(math.log(2 / ALPHA) / (2 * r))


def data(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.lognormvariate(3, 0.6) for _ in range(n))


def exact_cdf(n: int, k: int, j: int) -> float:
    """P(k-th smallest of a size-n resample <= x_(j)) = P(Binomial(n, j/n) >= k) (distinct values)."""
    return float(sps.binom.sf(k - 1, n, j / n))


@pytest.mark.parametrize(("n", "q"), [(101, 50), (101, 99), (11, 50), (1001, 90)])
def test_an_order_statistic_replicates_follow_the_exact_bootstrap_distribution(n: int, q: float) -> None:
    x = data(n)
    pos = (n - 1) * q / 100
    assert pos == int(pos)  # no interpolation: the replicate is one order statistic
    k = int(pos) + 1
    r = 20000
    reps = sorted(stats.bootstrap_percentile(x, q, r, random.Random(3)))
    rank = {v: i + 1 for i, v in enumerate(x)}
    assert all(v in rank for v in reps)  # every replicate is a data point
    worst = max(abs(sum(1 for v in reps if rank[v] <= j) / r - exact_cdf(n, k, j)) for j in range(1, n + 1))
    assert worst < dkw(r)


def test_interpolated_percentiles_match_a_resample_and_sort_bootstrap() -> None:
    # p99 of 200 values interpolates between two order statistics: compare with numpy's
    # plain bootstrap by a two-sample Kolmogorov-Smirnov bound (discrete: conservative)
    n, r = 200, 8000
    x = data(n, seed=11)
    arr = np.array(x)
    gen = np.random.default_rng(5)
    for q in (50, 99, 90):
        naive = np.percentile(arr[gen.integers(0, n, (r, n))], q, axis=1)
        ours = stats.bootstrap_percentile(x, q, r, random.Random(5))
        d = sps.ks_2samp(naive, ours).statistic
        c = math.sqrt(-math.log(ALPHA / 2) / 2)
        assert d < c * math.sqrt(2 / r), (q, d)


def test_summarize_cis_are_the_bootstrap_quantiles_and_the_t_interval() -> None:
    x = data(101)
    s = stats.summarize(x, resamples=4000, seed=1)
    assert s["count"] == 101
    assert s["p50"] == x[50]
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["p99"] == pytest.approx(np.percentile(x, 99))
    # mean: Student's t (the table has 3 decimals: relative error < 5e-4 on the half-width)
    m = float(np.mean(x))
    lo, hi = sps.t.interval(0.95, 100, loc=m, scale=sps.sem(x))
    assert s["mean_ci95"][0] == pytest.approx(lo, rel=5e-4)
    assert s["mean_ci95"][1] == pytest.approx(hi, rel=5e-4)
    # p50: each end is where the exact bootstrap CDF crosses 2.5% / 97.5%, within the DKW band
    rank = {v: i + 1 for i, v in enumerate(x)}
    eps = dkw(4000)
    for end, level in zip(s["p50_ci95"], (0.025, 0.975), strict=True):  # type: ignore[arg-type]
        below = max((rank[v] for v in x if v <= end), default=0)
        strictly_below = max((rank[v] for v in x if v < end), default=0)
        assert exact_cdf(101, 51, below) >= level - eps
        assert exact_cdf(101, 51, strictly_below) <= level + eps
    # and the summary is reproducible
    assert stats.summarize(x, resamples=4000, seed=1) == s


def test_t975_against_scipy() -> None:
    for df in (1, 4, 10, 30, 31, 50, 200, 10_000):
        assert stats.t975(df) == pytest.approx(sps.t.ppf(0.975, df), rel=5e-4)


def test_diff_ci_covers_a_known_shift_and_zero_for_the_same_data() -> None:
    a = data(300, seed=1)
    b = [v + 25 for v in data(300, seed=2)]
    lo, hi = stats.diff_ci(a, b)
    true = float(np.median(b) - np.median(a))
    assert lo < true < hi
    same = stats.diff_ci(a, a)
    assert same[0] < 0 < same[1]
    assert all(math.isnan(v) for v in stats.diff_ci(a[:4], b))


def test_small_and_empty_inputs() -> None:
    assert stats.summarize([]) == {"count": 0}
    assert stats.summarize([math.nan, 3.0]) == {
        "count": 1,
        "mean": 3.0,
        "p50": 3.0,
        "p90": 3.0,
        "p99": 3.0,
        "min": 3.0,
        "max": 3.0,
    }
    s = stats.summarize([5.0] * 10)
    assert s["p50_ci95"] == [5.0, 5.0]
    assert s["mean_ci95"] == [5.0, 5.0]


@pytest.mark.parametrize("level", [0.95, 0.99, 1 - 0.05 / 6])
def test_t_quantile_against_scipy(level: float) -> None:
    for df in (1, 2, 3, 7, 30, 31, 200, 10_000):
        assert stats.t_quantile(level, df) == pytest.approx(sps.t.ppf(0.5 + level / 2, df), rel=1e-9)


@pytest.mark.parametrize("level", [0.95, 1 - 0.05 / 6])
@pytest.mark.parametrize("q", [50, 90, 99])
def test_a_quantile_ci_needs_the_samples_an_order_statistic_interval_needs(q: float, level: float) -> None:
    """n is the fewest values for which P(every value is below the q-th percentile) = (q/100)^n
    (and the mirror tail) is at most (1 - level) / 2: the widest order-statistic interval,
    [min, max], then covers it with at least ``level`` (the binomial law, from scipy)."""
    n = stats.quantile_ci_min_samples(q, level)
    p = max(q, 100 - q) / 100
    tail = (1 - level) / 2

    def coverage(m: int) -> float:  # P(min <= the q-th percentile <= max) for m values
        return float(1 - sps.binom.pmf(m, m, q / 100) - sps.binom.pmf(0, m, q / 100))

    assert sps.binom.pmf(n, n, p) <= tail < sps.binom.pmf(n - 1, n - 1, p)
    assert coverage(n) >= level
    assert {(50, 0.95): 6, (90, 0.95): 36, (99, 0.95): 368}.get((q, level), n) == n


def test_summarize_gives_p99_a_ci_only_from_368_values() -> None:
    assert "p99_ci95" not in stats.summarize(data(367)) and "p50_ci95" in stats.summarize(data(367))
    assert "p99_ci95" in stats.summarize(data(368))
    assert "p50_ci95" not in stats.summarize(data(5)) and "mean_ci95" in stats.summarize(data(5))
    assert all(math.isnan(v) for v in stats.diff_ci(data(367), data(400), q=99))


def test_interval_is_the_central_level_of_the_replicates() -> None:
    reps = [float(v) for v in range(1001)]  # 0..1000: the p-th percentile is 10 p
    assert stats.interval(list(reversed(reps))) == [pytest.approx(25.0), pytest.approx(975.0)]
    assert stats.interval(reps, 0.99) == [pytest.approx(5.0), pytest.approx(995.0)]
