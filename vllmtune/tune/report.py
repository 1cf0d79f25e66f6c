"""What ``vllmtune tune`` reports: the table of trials, the winner's margin with a CI, best.yaml
and its diff against the input, the Pareto plot.

The margin: goodput = requests completed per second meeting every bound, at the rate the
max-rate search settled on. Its 95% CI is a bootstrap over time windows: each trial's measured
span is cut into equal windows (5 to 20, about 5 requests each), a window's goodput is its good
completions over its length, and the windows are resampled (the mean of a resample is one
replicate; windows keep a batch's completions together, which resampling single requests would
not). The CI is the percentile interval of winner - other. One that includes 0 is "no
significant change".
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vllmtune.bench.slo import Objective, RequestMetrics, parse_slo, per_request_value
from vllmtune.bench.stats import percentile
from vllmtune.tune.space import Knob, describe

RESAMPLES = 2000
CI_NOTE = (
    "[a, b]: 95% CI of the goodput difference (a bootstrap over time windows of each run); one that "
    "includes 0 is no significant change."
)


def attainment(requests_file: str, objectives: Sequence[Objective]) -> list[tuple[float, int]]:
    """Per completed request of the file (``bench --save-requests``): when it completed (s from the
    run's start) and 1 when it met every bound, else 0 (failed requests count as 0 where they ended)."""
    out = []
    for line in Path(requests_file).read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("sent_ms") is None or r.get("e2e_ms") is None:
            continue
        end = (r["sent_ms"] + r["e2e_ms"]) / 1000
        if r.get("error") or r.get("ttft_ms") is None:
            out.append((end, 0))
            continue
        tokens = r.get("chunk_tokens") or []
        gaps = tuple(g / max(k, 1) for g, k in zip(r.get("chunk_gaps_ms") or [], tokens[1:], strict=False))
        n = int(r.get("completion_tokens") or 0)
        tpot = (r["e2e_ms"] - r["ttft_ms"]) / (n - 1) if n > 1 else 0.0
        req = RequestMetrics(r["ttft_ms"], tpot, r["e2e_ms"], gaps)
        out.append((end, int(all(per_request_value(req, o) <= o.limit_ms for o in objectives))))
    return out


def windows(done: list[tuple[float, int]]) -> list[float]:
    """Goodput (good completions per second) in each of equal time windows over the measured span."""
    span = max((end for end, _ in done), default=0.0)
    count = max(5, min(20, len(done) // 5))
    if span <= 0 or len(done) < 5:
        return []
    width = span / count
    good = [0] * count
    for end, met in done:
        good[min(max(math.ceil(end / width) - 1, 0), count - 1)] += met  # windows (a, b]
    return [g / width for g in good]


def goodput_diff_ci(
    a: dict[str, Any], b: dict[str, Any], objectives: Sequence[Objective], seed: int = 0
) -> list[float]:
    """95% bootstrap CI of goodput(a) - goodput(b) (see the module docstring); NaNs without requests."""
    wa, wb = windows(attainment(a["requests"], objectives)), windows(attainment(b["requests"], objectives))
    if not wa or not wb:
        return [math.nan, math.nan]
    rng = random.Random(seed)
    dist = sorted(
        sum(rng.choices(wa, k=len(wa))) / len(wa) - sum(rng.choices(wb, k=len(wb))) / len(wb) for _ in range(RESAMPLES)
    )
    return [percentile(dist, 2.5), percentile(dist, 97.5)]


def verdict(ci: list[float]) -> str:
    if any(math.isnan(v) for v in ci):
        return "too few requests to judge"
    if ci[0] <= 0 <= ci[1]:
        return "no significant change"
    return "better" if ci[0] > 0 else "worse"


def margin(winner: dict[str, Any], other: dict[str, Any] | None, slo: str, seed: int) -> dict[str, Any] | None:
    if other is None:
        return None
    ci = goodput_diff_ci(winner, other, parse_slo(slo), seed)
    delta = float(winner["goodput"]) - float(other["goodput"])
    return {"trial": other["trial"], "delta": delta, "ci95": ci, "verdict": verdict(ci)}


def _fmt(v: Any, spec: str = ",.2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(knobs: list[Knob], records: list[dict[str, Any]], best: int | None) -> list[str]:
    """The trials as a markdown table, best goodput first (failed starts last)."""
    head = ["#", *(k.kind.path[-1] for k in knobs), "status", "goodput req/s", "max rate /s", "TTFT p99 ms"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ranked = sorted(records, key=lambda r: (r["status"] != "done", -float(r.get("goodput") or 0.0), r["trial"]))
    for r in ranked:
        config = describe(knobs, tuple(r["config"])).split(" ")
        status = r["status"] + (" (best)" if r["trial"] == best else "") + (" (input)" if r["trial"] == 0 else "")
        cells = [str(r["trial"]), *(c.split("=", 1)[1] for c in config), status]
        if r["status"] == "done":
            cells += [_fmt(r["goodput"]), _fmt(r.get("max_rate")), _fmt(r.get("ttft_p99_ms"), ",.1f")]
        else:
            cells += ["-", "-", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def margin_line(what: str, m: dict[str, Any] | None) -> str:
    if m is None:
        return f"vs {what}: nothing to compare with"
    lo, hi = m["ci95"]
    return (
        f"vs {what} (trial {m['trial']}): {m['delta']:+,.2f} req/s goodput, 95% CI [{_fmt(lo, '+,.2f')}, "
        f"{_fmt(hi, '+,.2f')}]: {m['verdict']}"
    )


def pareto(records: list[dict[str, Any]], path: Path, gpus: int) -> str:
    """goodput vs TTFT p99 and cost (GPU-seconds per good request) vs TTFT p99; the Pareto front
    marked. Without matplotlib: skipped, and the message says so."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no Pareto plot (pip install 'vllmtune[plot]')"
    done = [r for r in records if r["status"] == "done" and r.get("ttft_p99_ms") is not None and r["goodput"] > 0]
    if not done:
        return "no trial met the SLO with a goodput: no Pareto plot"
    front = [r for r in done if not any(
        o["goodput"] >= r["goodput"] and o["ttft_p99_ms"] <= r["ttft_p99_ms"] and o is not r
        and (o["goodput"], o["ttft_p99_ms"]) != (r["goodput"], r["ttft_p99_ms"]) for o in done
    )]  # fmt: skip

    def good(r: dict[str, Any]) -> float:
        return float(r["goodput"])

    def cost(r: dict[str, Any]) -> float:
        return max(gpus, 1) / float(r["goodput"])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, value, label in ((ax1, good, "goodput (req/s)"), (ax2, cost, "cost (GPU-seconds per good request)")):
        ax.scatter([r["ttft_p99_ms"] for r in done], [value(r) for r in done], color="tab:blue", label="trial")
        ax.scatter([r["ttft_p99_ms"] for r in front], [value(r) for r in front], color="tab:red", label="Pareto front")
        for r in done:
            ax.annotate(str(r["trial"]), (r["ttft_p99_ms"], value(r)), fontsize=7)
        ax.set_xlabel("TTFT p99 (ms)")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"wrote {path}"
