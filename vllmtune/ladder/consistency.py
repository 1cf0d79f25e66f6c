"""Whether repeated ladders agree: each rung's verdicts across K ``ladder.json`` summaries
(``benchmarks/ladder_under_load.py`` runs the ladder K times on a busy machine)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def rung_verdicts(summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{rung config: {figure: verdict}} of one ladder (measured rungs with a previous rung), plus
    ``relative_cost`` (the verdict of the relative cost's CI against the baseline)."""
    out: dict[str, dict[str, str]] = {}
    for row in summary["rows"]:
        if row.get("failed") or not row.get("vs"):
            continue
        v = dict(row.get("verdicts") or {})
        if row.get("relative_cost_verdict"):
            v["relative_cost"] = row["relative_cost_verdict"]
        out[row["config"]] = v
    return out


def consistent_verdicts(summaries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per rung and figure: the verdict of each run, and whether all runs gave the same one (a rung
    or figure missing from a run counts as a different verdict: ``None`` in its place)."""
    per_run = [rung_verdicts(s) for s in summaries]
    rungs = list(dict.fromkeys(c for run in per_run for c in run))
    out: dict[str, dict[str, Any]] = {}
    for config in rungs:
        figures = list(dict.fromkeys(k for run in per_run for k in run.get(config, {})))
        per_figure = {}
        for fig in figures:
            said = [run.get(config, {}).get(fig) for run in per_run]
            per_figure[fig] = {"verdicts": said, "consistent": len(set(said)) == 1 and said[0] is not None}
        out[config] = {"figures": per_figure, "consistent": all(f["consistent"] for f in per_figure.values())}
    return out


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The two figures issue 17 asks to hold: prefix caching's server-TTFT change (ratio and CI) and
    the prompt cache's relative cost (and CI), from one ladder."""
    rows = {r["rung"]: r for r in summary["rows"] if not r.get("failed") and r.get("rung")}
    prefix = rows.get("prefix-caching", {}).get("server_ttft_change")
    cache = rows.get("prompt-cache")
    return {
        "prefix_caching_server_ttft": prefix,
        "prompt_cache_relative_cost": None
        if cache is None
        else {"ratio": cache["relative_cost"], "ratio_ci95": cache.get("relative_cost_ci95")},
    }
