"""bench.stats.mean_ci called directly against an independent oracle: scipy's Student t
interval of the mean on fixed data (the table's t quantiles are rounded to 3 decimals (so |dt| <= 5e-4), the
Cornish-Fisher tail is within 1e-4 of the exact quantile)."""

from __future__ import annotations

import math

import pytest

from tests.support.require_real import require_module
from vllmtune.bench.stats import mean_ci

DATA = {
    "n=2": [10.0, 14.0],
    "n=5": [101.0, 97.5, 110.25, 99.0, 103.0],
    "n=31": [float((i * 37) % 23) for i in range(31)],
    "n=200": [math.sin(i) * 50 + 500 for i in range(200)],
}


@pytest.mark.parametrize("name", list(DATA))
def test_mean_ci_matches_scipy_t_interval(name: str) -> None:
    stats = require_module("scipy.stats", "scipy")
    values = DATA[name]
    n = len(values)
    mean = sum(values) / n
    sem = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sem)
    got = mean_ci(values)
    assert got == pytest.approx([lo, hi], rel=0, abs=5e-4 * sem + 1e-12)  # t rounded to 3 decimals: |dt| <= 5e-4
    assert (got[0] + got[1]) / 2 == pytest.approx(mean)


def test_mean_ci_by_hand() -> None:
    # n = 2: mean 12, s = 2 * sqrt(2), sem = 2, t_{0.975, 1} = 12.706 (the table)
    assert mean_ci([10.0, 14.0]) == pytest.approx([12 - 12.706 * 2, 12 + 12.706 * 2])
    assert mean_ci([3.0, 3.0, 3.0]) == [3.0, 3.0]
    with pytest.raises(ZeroDivisionError):
        mean_ci([1.0])  # n >= 2 is the caller's contract (summarize asks from 5 values)
