"""Service-level objectives and goodput (``vllmtune bench --slo ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s``).

Goodput is defined as ``vllm bench serve --goodput`` defines it (vllm/benchmarks/serve.py,
``calculate_metrics``; DistServe, arXiv 2401.09670): the completed requests whose every
per-request metric is within its bound, divided by the measured duration. A request with at
most one output token has TPOT 0, as there. Failed requests are never good.

Per-request metrics: ``ttft`` (time to first token), ``tpot`` ((e2e - ttft) / (tokens - 1)),
``e2e`` (vLLM's ``e2el``) and ``itl``, which vLLM has no per-request form of: here it is the
request's own percentile (the objective's, p99 unless given) of its gaps per token.

The percentile in a name (``ttft_p99``) also states the run-level objective: the run meets its
SLO when, for every objective, that percentile over the completed requests is within the bound.
Without one, p99. This module imports nothing heavy: it parses ``--slo`` before any request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vllmtune.bench.stats import percentile
from vllmtune.errors import SloError

METRICS = ("ttft", "tpot", "itl", "e2e")
ALIASES = {"e2el": "e2e"}  # vLLM's spelling
STREAMING_ONLY = ("ttft", "tpot", "itl")
PART = re.compile(r"(?P<name>[a-z0-9]+?)(?:_p(?P<pct>\d+(?:\.\d+)?))?\s*[=:]\s*(?P<num>[^a-z\s]*)\s*(?P<unit>[a-z]*)")
UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}
HINT = "write it as METRIC[_pNN]=LIMIT[ms|s], e.g. --slo ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s"


@dataclass(frozen=True)
class Objective:
    """One bound: the ``percentile`` of ``metric`` must be at most ``limit_ms``."""

    metric: str
    percentile: float
    limit_ms: float

    @property
    def name(self) -> str:
        return f"{self.metric}_p{self.percentile:g}"


def parse_slo(text: str) -> tuple[Objective, ...]:
    """``ttft_p99=500ms,e2e=5s`` -> objectives; a clear error naming the bad part otherwise."""
    out: list[Objective] = []
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise SloError("--slo is empty", hint=HINT)
    for part in parts:
        if not part:
            raise SloError(f"--slo {text!r}: an empty entry (two commas?)", hint=HINT)
        m = PART.fullmatch(part.lower())
        if not m:
            raise SloError(f"--slo {part!r}: not METRIC=LIMIT", hint=HINT)
        name = ALIASES.get(m["name"], m["name"])
        if name not in METRICS:
            raise SloError(f"--slo {part!r}: unknown metric {m['name']!r}", hint=f"use one of {', '.join(METRICS)}")
        pct = float(m["pct"]) if m["pct"] else 99.0
        if not 0 < pct <= 100:
            raise SloError(f"--slo {part!r}: the percentile must be above 0 and at most 100")
        if m["unit"] not in UNITS:
            raise SloError(f"--slo {part!r}: unknown unit {m['unit']!r}", hint="use ms or s (a bare number is ms)")
        try:
            value = float(m["num"])
        except ValueError:
            raise SloError(f"--slo {part!r}: {m['num']!r} is not a number", hint=HINT) from None
        if not math.isfinite(value) or value <= 0:
            raise SloError(f"--slo {part!r}: the limit must be a positive number")
        if any(o.metric == name for o in out):
            raise SloError(f"--slo {text!r}: {name} is given twice")
        out.append(Objective(name, pct, value * UNITS[m["unit"]]))
    return tuple(out)


def check_streaming(objectives: Sequence[Objective], stream: bool) -> None:
    """TTFT, TPOT and ITL are only measured on streamed answers."""
    if stream:
        return
    bad = [o.name for o in objectives if o.metric in STREAMING_ONLY]
    if bad:
        raise SloError(f"--slo {', '.join(bad)}: measured on streamed answers only", hint="drop --no-stream")


@dataclass(frozen=True)
class RequestMetrics:
    """One completed request's figures, in ms (``itl_ms``: its gaps per token)."""

    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    itl_ms: tuple[float, ...]


def per_request_value(req: RequestMetrics, o: Objective) -> float:
    if o.metric == "ttft":
        return req.ttft_ms
    if o.metric == "tpot":
        return req.tpot_ms
    if o.metric == "e2e":
        return req.e2e_ms
    return percentile(sorted(req.itl_ms), o.percentile) if req.itl_ms else 0.0


def goodput(
    requests: Sequence[RequestMetrics], objectives: Sequence[Objective], wall_s: float, sent: int
) -> dict[str, Any]:
    """Goodput (vLLM's definition) and the run-level verdict per objective."""
    good = sum(all(per_request_value(r, o) <= o.limit_ms for o in objectives) for r in requests)
    rows = []
    for o in objectives:
        if o.metric == "itl":
            values = sorted(v for r in requests for v in r.itl_ms)
        else:
            values = sorted(v for r in requests if not math.isnan(v := per_request_value(r, o)))
        observed = percentile(values, o.percentile) if values else math.nan
        rows.append(
            {
                "objective": o.name,
                "metric": o.metric,
                "percentile": o.percentile,
                "limit_ms": o.limit_ms,
                "observed_ms": observed,
                "met": bool(values) and observed <= o.limit_ms,
                "requests_within": sum(per_request_value(r, o) <= o.limit_ms for r in requests),
            }
        )
    return {
        "objectives": rows,
        "good_requests": good,
        "requests_sent": sent,
        "good_share": good / sent if sent else 0.0,
        "goodput": good / wall_s if wall_s > 0 else 0.0,
        "met": all(r["met"] for r in rows) and len(requests) == sent,
        "definition": "goodput: requests completed with every per-request metric within its bound, per "
        "second of measured time (vllm bench serve --goodput); met: every objective's percentile over the "
        "completed requests within its bound and no request failed",
    }
