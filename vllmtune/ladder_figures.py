"""The ladder's figures: 95% CIs per rung, the verdict of each change, and the cost model.

Never imports the ladder's runtime parts (no server, no subprocess): pure functions over the
per-request lines ``bench --save-requests`` writes, so they are tested on constructed data.

Verdicts. Every figure here is lower-is-better. The change from the previous rung is given as
the 95% CI of the difference (this rung - previous rung; percentiles: the bootstrap ``diff_ci``
of vllmtune.bench.stats; the cost, a mean: Welch's t interval) and as the ratio with its 95% CI
(below); the verdict is the ratio's, read from its VERDICT_LEVEL (99.2%) CI, Bonferroni over a
rung's VERDICTS comparisons: entirely below 1 -> "better", entirely above 1 -> "worse", including 1
(or not computable: too few samples) -> "no significant change". A percentile has a CI only from
``quantile_ci_min_samples`` values a side (p99: 368 at 95%, 546 at 99.2%; p50: 6 and 8).

Cost. Server-busy seconds are the length of the union of the in-server intervals [sent, end] of
the requests the server answered (a prompt-cache hit, X-Cache: HIT, is answered by the proxy and
costs 0 server time); failed requests count (the server spent the time). Each instant of busy
time is shared equally among the requests in the server at that instant, which gives every
request its server seconds (they sum to the busy time exactly). Cost per successful request =
busy seconds / successful requests, at the operating point the ladder ran (its load).
Relative cost = a rung's cost / the baseline's. With a price: $/1k requests =
cost x price/3600 x 1000; $/1M output tokens = busy seconds / output tokens x price/3600 x 1e6.

Ratios. Each figure is also compared as a ratio (this rung / the previous one; the relative cost
/ the baseline's), with its 95% CI, and the verdict is read from the ratio's CI: entirely below 1
-> "better", entirely above 1 -> "worse", including 1 (or unbounded, or not computable) -> "no
significant change". Percentile ratios (p50, p99, TTFT p50) are seeded percentile-bootstrap CIs
over the requests: each replicate is percentile(resample of b) / percentile(resample of a), the
resamples' percentiles drawn in O(1) each by ``vllmtune.bench.stats.bootstrap_percentile`` (1,000
replicates for the 95% CI, VERDICT_RESAMPLES for the verdict's; seed 0). The cost ratio is a
ratio of means, and its CI is Fieller's interval
(independent samples, Student t at Welch's degrees of freedom): the set of ratios r for which
mean(b) - r mean(a) = 0 is not rejected; it is exact under normality of the means, needs no
resampling, and is unbounded when the baseline's mean is not significantly above 0 (then: no
significant change).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from vllmtune.bench.stats import (
    bootstrap_percentile,
    diff_ci,
    interval,
    mean_ci,
    percentile,
    quantile_ci_min_samples,
    summarize,
    t_quantile,
)

BETTER, WORSE, SAME = "better", "worse", "no significant change"
# A rung is judged on at most VERDICTS comparisons (p50, p99, TTFT p50, cost and server TTFT
# against the previous rung, the relative cost against the baseline). Bonferroni: each verdict
# reads a (1 - 0.05 / VERDICTS) CI, so the chance that a rung with no real change shows any win or
# loss stays <= 5% (the 95% CIs are still what the table shows).
VERDICTS = 6
VERDICT_LEVEL = 1 - 0.05 / VERDICTS
VERDICT_RESAMPLES = 4000  # the 0.4% tails of 1,000 replicates would rest on 4 values
# figure key, what it is, the sample it is computed from, the percentile (None: the mean)
FIGURES = (
    ("e2e_p50_ms", "p50", "e2e_ms", 50),
    ("e2e_p99_ms", "p99", "e2e_ms", 99),
    ("ttft_p50_ms", "TTFT p50", "ttft_ms", 50),
    ("cost_ms_per_request", "cost", "cost_ms", None),
)


def verdict(ci: Sequence[float] | None) -> str:
    """better | worse | no significant change, for the CI of (new - old) of a lower-is-better figure."""
    if not ci or any(math.isnan(v) for v in ci):
        return SAME
    lo, hi = ci
    if hi < 0:
        return BETTER
    if lo > 0:
        return WORSE
    return SAME


def ratio_verdict(ci: Sequence[float] | None) -> str:
    """better | worse | no significant change, for the CI of new / old of a lower-is-better figure."""
    if not ci or any(math.isnan(v) for v in ci):
        return SAME
    lo, hi = ci
    if hi < 1:
        return BETTER
    if lo > 1:
        return WORSE
    return SAME


def _welch_parts(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float, float, float, float]:
    """(mean a, mean b, var of mean a, var of mean b, the two-sided ``level`` t at Welch's degrees
    of freedom)."""
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1) / nb
    if va + vb == 0:
        return ma, mb, va, vb, 0.0
    df = (va + vb) ** 2 / ((va**2 / (na - 1) if va else 0.0) + (vb**2 / (nb - 1) if vb else 0.0))
    return ma, mb, va, vb, t_quantile(level, max(1, int(df)))


def fieller_ratio_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> list[float]:
    """Fieller's ``level`` (default 95%) interval of mean(b) / mean(a) for independent samples: the r solving
    (mb - r ma)^2 = t^2 (vb + r^2 va); nan when a side has fewer than 2 values or the interval is
    unbounded (mean(a) not significantly above 0)."""
    if len(a) < 2 or len(b) < 2:
        return [math.nan, math.nan]
    ma, mb, va, vb, t = _welch_parts(a, b, level)
    t2 = t * t
    qa = ma * ma - t2 * va  # > 0: the denominator's CI excludes 0
    if ma <= 0 or qa <= 0:
        return [math.nan, math.nan]
    disc = (ma * mb) ** 2 - qa * (mb * mb - t2 * vb)
    root = math.sqrt(max(disc, 0.0))
    return [(ma * mb - root) / qa, (ma * mb + root) / qa]


def percentile_ratio_ci(
    a: Sequence[float], b: Sequence[float], q: float, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Seeded ``level`` percentile-bootstrap CI of percentile_q(b) / percentile_q(a) (independent
    samples; nan below ``quantile_ci_min_samples(q, level)`` values a side, e.g. 368 for a 95% CI
    of p99, or when a replicate's denominator is not above 0)."""
    sa = sorted(v for v in a if not math.isnan(v))
    sb = sorted(v for v in b if not math.isnan(v))
    need = quantile_ci_min_samples(q, level)
    if len(sa) < need or len(sb) < need:
        return [math.nan, math.nan]
    rng = random.Random(seed)
    ra = bootstrap_percentile(sa, q, resamples, rng)
    rb = bootstrap_percentile(sb, q, resamples, rng)
    if min(ra) <= 0:
        return [math.nan, math.nan]
    return interval([y / x for x, y in zip(ra, rb, strict=True)], level)


def _known(ci: list[float]) -> list[float] | None:
    return None if any(math.isnan(v) or math.isinf(v) for v in ci) else ci


def ratio_figure(a: Sequence[float], b: Sequence[float], q: int | None) -> dict[str, Any]:
    """``{"ratio", "ratio_ci95", "ratio_ci_verdict", "ratio_verdict"}`` of figure(b) / figure(a) (a
    percentile or the mean): the 95% CI shown, and the VERDICT_LEVEL CI the verdict reads."""
    if not a or not b:
        return {"ratio": None, "ratio_ci95": None, "ratio_ci_verdict": None, "ratio_verdict": SAME}
    fa = sum(a) / len(a) if q is None else percentile(sorted(a), q)
    fb = sum(b) / len(b) if q is None else percentile(sorted(b), q)
    if q is None:
        ci, judged = fieller_ratio_ci(a, b), fieller_ratio_ci(a, b, VERDICT_LEVEL)
    else:
        ci = percentile_ratio_ci(a, b, q)
        judged = percentile_ratio_ci(a, b, q, resamples=VERDICT_RESAMPLES, level=VERDICT_LEVEL)
    return {
        "ratio": fb / fa if fa > 0 else None,
        "ratio_ci95": _known(ci),
        "ratio_ci_verdict": _known(judged),
        "ratio_verdict": ratio_verdict(_known(judged)),
    }


def welch_diff_ci(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Welch's 95% t interval of mean(b) - mean(a) (nan when a side has fewer than 2 values)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return [math.nan, math.nan]
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1) / nb
    d = mb - ma
    if va + vb == 0:
        return [d, d]
    df = (va + vb) ** 2 / ((va**2 / (na - 1) if va else 0.0) + (vb**2 / (nb - 1) if vb else 0.0))
    half = t_quantile(0.95, max(1, int(df))) * math.sqrt(va + vb)
    return [d - half, d + half]


def served_by_server(line: dict[str, Any]) -> bool:
    """Whether the server spent time on this request (sent, finished, not a prompt-cache hit)."""
    return line.get("sent_ms") is not None and line.get("e2e_ms") is not None and line.get("x_cache") != "HIT"


def server_seconds(lines: Sequence[dict[str, Any]]) -> list[float]:
    """Each request's server seconds (0 for hits and unsent requests): the union of the in-server
    intervals, each instant shared equally among the requests in the server then."""
    events: list[tuple[float, int, int]] = []  # (time s, +1 start / -1 end, request)
    for i, line in enumerate(lines):
        if served_by_server(line):
            start = line["sent_ms"] / 1000
            events.append((start, 1, i))
            events.append((start + line["e2e_ms"] / 1000, -1, i))
    events.sort(key=lambda e: (e[0], e[1]))  # at a tie, ends before starts
    shares = [0.0] * len(lines)
    active: set[int] = set()
    last = 0.0
    for t, kind, i in events:
        if active and t > last:
            each = (t - last) / len(active)
            for j in active:
                shares[j] += each
        last = t
        if kind == 1:
            active.add(i)
        else:
            active.discard(i)
    return shares


def busy_seconds(lines: Sequence[dict[str, Any]]) -> float:
    """Length of the union of the in-server intervals (the server-busy wall time)."""
    return sum(server_seconds(lines))


def cost_sample(runs: Sequence[Sequence[dict[str, Any]]]) -> list[float]:
    """Per sent request, its server ms scaled so that the sample's mean is the cost per successful
    request (busy / ok, every run pooled): the values whose mean's CI is the cost's CI."""
    sent = [ln for run in runs for ln in run if ln.get("sent_ms") is not None]
    ok = sum(1 for ln in sent if not ln.get("error"))
    if not ok:
        return []
    scale = len(sent) / ok * 1000
    return [
        s * scale
        for run in runs
        for ln, s in zip(run, server_seconds(run), strict=True)
        if ln.get("sent_ms") is not None
    ]


def rung_figures(runs: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """The samples and headline numbers of one rung from its runs' requests (the rounds pooled;
    each run's busy time from its own intervals: their clocks start at each run's start)."""
    lines = [ln for run in runs for ln in run]
    ok = [ln for ln in lines if ln.get("sent_ms") is not None and not ln.get("error") and ln.get("e2e_ms") is not None]
    hits = sum(1 for ln in ok if ln.get("x_cache") == "HIT")
    proxied = any(ln.get("x_cache") for ln in lines)
    busy = sum(busy_seconds(run) for run in runs)
    samples = {
        "e2e_ms": [ln["e2e_ms"] for ln in ok],
        "ttft_ms": [ln["ttft_ms"] for ln in ok if ln.get("ttft_ms") is not None],
        "cost_ms": cost_sample(runs),
    }
    return {
        "samples": samples,
        "requests_sent": sum(1 for ln in lines if ln.get("sent_ms") is not None),
        "requests_ok": len(ok),
        "prompt_cache_hits": hits if proxied else None,
        "prompt_cache_hit_ratio": (hits / len(ok) if ok else None) if proxied else None,
        "busy_s": busy,
        "output_tokens": sum(int(ln.get("completion_tokens") or 0) for ln in ok),
        "cost_s_per_request": busy / len(ok) if ok else math.inf,
    }


def figure_value(samples: dict[str, list[float]], source: str, q: int | None) -> dict[str, Any]:
    """A figure's value and 95% CI (None when the sample is too small)."""
    vals = samples[source]
    if not vals:
        return {"value": None, "ci95": None}
    if q is None:
        value = sum(vals) / len(vals)
        return {"value": value, "ci95": mean_ci(vals) if len(vals) >= 2 else None}
    s = summarize(vals)
    key = f"p{q}_ci95"
    return {"value": percentile(sorted(vals), q), "ci95": s.get(key)}


def compare_figures(prev: dict[str, list[float]] | None, cur: dict[str, list[float]]) -> dict[str, Any]:
    """Each figure's value, CI, and (against ``prev``) the CI of the difference and the verdict."""
    out: dict[str, Any] = {}
    for key, _, source, q in FIGURES:
        fig = figure_value(cur, source, q)
        if prev is not None:
            a, b = prev[source], cur[source]
            if not a or not b:
                ci = [math.nan, math.nan]
            elif q is None:
                ci = welch_diff_ci(a, b)
            else:
                ci = diff_ci(a, b, q=q)
            known = not any(math.isnan(v) for v in ci)
            pa, pb = figure_value(prev, source, q)["value"], fig["value"]
            fig["delta"] = None if pa is None or pb is None else pb - pa
            fig["delta_ci95"] = ci if known else None
            fig.update(ratio_figure(a, b, q))
            fig["verdict"] = fig["ratio_verdict"]  # read from the ratio's CI (excludes 1 or not)
        out[key] = fig
    return out
