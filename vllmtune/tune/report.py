"""What ``vllmtune tune`` reports: the table of trials, the winner's margin with a CI, best.yaml
and its diff against the input, the Pareto plot.

The margin: goodput = (requests sent per second) x (share of requests meeting every bound), at
the rate the max-rate search settled on. Its 95% CI is a percentile bootstrap over the requests'
SLO attainment (each request 1 or 0, resampled within each trial; the send rate held fixed), of
the difference winner - other. A CI that includes 0 is "no significant change".
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
    "[a, b]: 95% bootstrap CI of the goodput difference (requests' SLO attainment resampled, the send "
    "rate held fixed); one that includes 0 is no significant change."
)


def attainment(requests_file: str, objectives: Sequence[Objective]) -> list[int]:
    """1 per request of the file (``bench --save-requests``) meeting every bound, 0 otherwise."""
    out = []
    for line in Path(requests_file).read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("error") or r.get("ttft_ms") is None or r.get("e2e_ms") is None:
            out.append(0)
            continue
        tokens = r.get("chunk_tokens") or []
        gaps = tuple(g / max(k, 1) for g, k in zip(r.get("chunk_gaps_ms") or [], tokens[1:], strict=False))
        n = int(r.get("completion_tokens") or 0)
        tpot = (r["e2e_ms"] - r["ttft_ms"]) / (n - 1) if n > 1 else 0.0
        req = RequestMetrics(r["ttft_ms"], tpot, r["e2e_ms"], gaps)
        out.append(int(all(per_request_value(req, o) <= o.limit_ms for o in objectives)))
    return out


def _scale(rec: dict[str, Any]) -> float:
    """Requests sent per second at the measured rate: goodput / good share."""
    share = rec.get("good_share") or 0.0
    return float(rec["goodput"]) / share if share else 0.0


def goodput_diff_ci(
    a: dict[str, Any], b: dict[str, Any], objectives: Sequence[Objective], seed: int = 0
) -> list[float]:
    """95% bootstrap CI of goodput(a) - goodput(b) (see the module docstring); NaNs without requests."""
    xa, xb = attainment(a["requests"], objectives), attainment(b["requests"], objectives)
    if len(xa) < 5 or len(xb) < 5:
        return [math.nan, math.nan]
    sa, sb = _scale(a), _scale(b)
    rng = random.Random(seed)
    dist = []
    for _ in range(RESAMPLES):
        ma = sum(rng.choices(xa, k=len(xa))) / len(xa)
        mb = sum(rng.choices(xb, k=len(xb))) / len(xb)
        dist.append(sa * ma - sb * mb)
    dist.sort()
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
