"""The ladder's table, notes, report.md, chart and ladder.json, from the rungs' results."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from vllmtune.errors import VllmtuneError
from vllmtune.ladder.args import LadderArgs
from vllmtune.ladder.rungs import TITLES, LadderError


def _read_requests(path: str) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise LadderError(f"{path}: cannot read the rung's requests ({exc}); run the rung again") from None


def operating_point(args: LadderArgs) -> dict[str, Any]:
    """The load every rung was measured (and costed) at."""
    return {
        "arrivals": "closed loop",
        "concurrency": args.concurrency,
        "requests_per_round": args.requests,
        "warmup_requests": args.warmup,
        "rounds": args.repeat,
        "workload": args.workload,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
    }


COST_MODEL = (
    "relative cost = server-busy seconds per successful request / the baseline's; server-busy seconds = "
    "length of the union of the requests' in-server intervals [sent, end] (prompt-cache hits, X-Cache: HIT, "
    "cost 0); $/1k req = busy s per request x price/3600 x 1000, $/1M out tok = busy s / output tokens x "
    "price/3600 x 1e6"
)


def ladder_rows(args: LadderArgs, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(table rows in rung order, a failed rung where it stands; the measured rungs' samples)."""
    from vllmtune.bench import report
    from vllmtune.ladder_figures import compare_figures, rung_figures

    rows: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    base_cost: float | None = None
    for e in entries:
        if e.get("status") == "failed":
            rows.append({"config": TITLES[e["rung"]], "failed": True, "reason": e.get("reason", "")})
            continue
        if e.get("status") != "done":
            continue
        results = [report.load_result(p) for p in e["results"]]
        fig = rung_figures([_read_requests(p) for p in e["requests"]])
        figures = compare_figures(prev["samples"] if prev else None, fig["samples"])
        cost = fig["cost_s_per_request"]
        base_cost = cost if base_cost is None else base_cost
        sm: dict[str, float] = {}
        for res in results:
            for k, v in res.get("server_metrics", {}).items():
                sm[k] = sm.get(k, 0.0) + v
        n = sm.get("vllm:time_to_first_token_seconds_count")
        quality = [res["quality"] for res in results if res.get("quality")]
        row: dict[str, Any] = {
            "config": TITLES[e["rung"]],
            "rung": e["rung"],
            "vs": prev["config"] if prev else None,
            "rounds": len(results),
            "requests_ok": fig["requests_ok"],
            "requests_sent": fig["requests_sent"],
            "p50_ms": figures["e2e_p50_ms"]["value"],
            "p99_ms": figures["e2e_p99_ms"]["value"],
            "ttft_p50_ms": figures["ttft_p50_ms"]["value"],
            "server_ttft_mean_ms": (sm["vllm:time_to_first_token_seconds_sum"] / n * 1000) if n else None,
            "tokens_per_call": fig["output_tokens"] / fig["requests_ok"] if fig["requests_ok"] else 0.0,
            "prompt_cache_hit_ratio": fig["prompt_cache_hit_ratio"],
            "prompt_cache_hits": fig["prompt_cache_hits"],
            "server_busy_s": fig["busy_s"],
            "cost_ms_per_request": figures["cost_ms_per_request"]["value"],
            "relative_cost": cost / base_cost if base_cost else math.inf,
            "figures": figures,
            "verdicts": {k: f["verdict"] for k, f in figures.items() if "verdict" in f},
        }
        if quality:
            cases = sum(q["cases"] for q in quality)
            row["quality"] = sum(q["normalized"] * q["cases"] for q in quality) / cases
        if args.gpu_hour_usd:
            usd_s = args.gpu_hour_usd / 3600
            row["usd_per_1k_requests"] = cost * usd_s * 1000
            row["usd_per_1m_output_tokens"] = (
                fig["busy_s"] / fig["output_tokens"] * usd_s * 1e6 if fig["output_tokens"] else math.inf
            )
        rows.append(row)
        measured.append({"samples": fig["samples"], "row": row})
        prev = {"samples": fig["samples"], "config": row["config"]}
    base_quality = next((r.get("quality") for r in rows if not r.get("failed")), None)
    for r in rows:
        if r.get("quality") is not None and base_quality is not None:
            r["quality_delta"] = r["quality"] - base_quality
            r["quality_regression"] = r["quality_delta"] < -0.01
    return rows, measured


def finish(args: LadderArgs, entries: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Table, markdown report, chart and ladder.json from the rungs' results."""
    from vllmtune.bench import report

    if not any(e.get("status") == "done" for e in entries):
        raise LadderError("no rung could be measured; see the reasons above")  # (say() printed them)
    table_rows, measured = ladder_rows(args, entries)
    point = operating_point(args)
    lines = [*ladder_table(table_rows), "", *ladder_notes(table_rows, point)]
    skipped = []
    for e in entries:
        if e.get("status") == "done":
            continue
        skipped.append(f"- {TITLES[e['rung']]}: {e['status']} ({e.get('reason', '')})")
        for sample in e.get("error_samples", []):  # what the server said, first distinct answers
            said = f": {sample['message']}" if sample["message"] else ""
            skipped.append(f"  - {sample['error']} ({sample['count']}x){said}")
    md = [
        f"# Ladder: {args.profile}",
        "",
        f"Workload `{args.workload}`, {args.requests} requests, concurrency "
        f"{args.concurrency}, seed {args.seed}, runtime {args.runtime}.",
        "",
        *lines,
    ]
    if skipped:
        md += ["", "Failed or not measured:", *skipped]
    md += [
        "",
        "Rung profiles (deployable): " + ", ".join(f"`rungs/{e['rung']}.yaml`" for e in entries if e.get("profile")),
    ]
    (out / "report.md").write_text("\n".join(md) + "\n")
    with contextlib.suppress(VllmtuneError):
        report.plot(
            [{"samples": m["samples"]} for m in measured], [m["row"] for m in measured], str(out / "ladder.png")
        )
    summary = {
        "profile": args.profile,
        "operating_point": point,
        "cost_model": COST_MODEL,
        "rows": table_rows,
        "rungs": entries,
        "table_markdown": lines,
        "failed_rungs": [e["rung"] for e in entries if e.get("status") == "failed"],
        "error_rate_failures": [e["rung"] for e in entries if e.get("error_rate")],
    }
    (out / "ladder.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _num(v: Any, d: int = 0, suffix: str = "") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{d}f}{suffix}"


def _signed(v: float) -> str:
    """``+12``, ``-0.3``: one decimal below 10 so that a bound just under 0 does not read as 0."""
    return f"{v + 0.0:+,.{1 if abs(v) < 10 else 0}f}"


def _with_ci(fig: dict[str, Any] | None, d: int = 0) -> str:
    """``436 [420, 450]``: the value and its 95% CI."""
    if not fig or fig.get("value") is None:
        return "-"
    ci = fig.get("ci95")
    return _num(fig["value"], d) + (f" [{_num(ci[0], d)}, {_num(ci[1], d)}]" if ci else "")


def verdict_summary(row: dict[str, Any]) -> str:
    """``better: p50, cost; no significant change: p99, TTFT p50`` (the change from the previous rung)."""
    from vllmtune.ladder_figures import BETTER, FIGURES, SAME, WORSE

    verdicts = row.get("verdicts") or {}
    if not verdicts:
        return "-"
    parts = []
    for word in (BETTER, WORSE, SAME):
        names = [name for key, name, _, _ in FIGURES if verdicts.get(key) == word]
        if names:
            parts.append(f"{word}: {', '.join(names)}")
    return "; ".join(parts)


def ladder_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table: figures with their 95% CIs, and the verdict against the previous rung."""
    head = [
        "Config",
        "p50 ms",
        "p99 ms",
        "TTFT p50",
        "Server TTFT",
        "Tokens/call",
        "Cache hits",
        "Quality",
        "Server ms/req",
        "Relative cost",
    ]
    costs = any("usd_per_1k_requests" in r for r in rows)  # --gpu-hour-usd given
    if costs:
        head += ["$/1k req", "$/1M out tok"]
    head.append("vs previous rung")
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        if r.get("failed"):  # a rung that did not start or whose requests failed: no figures to show
            cells = [f"{r['config']} (FAILED)", *("-" for _ in head[1:])]
            out.append("| " + " | ".join(cells) + " |")
            continue
        figs = r.get("figures") or {}
        q = "-" if r.get("quality") is None else f"{r['quality']:.3f}" + (" (!)" if r.get("quality_regression") else "")
        hits = "-" if r.get("prompt_cache_hit_ratio") is None else f"{r['prompt_cache_hit_ratio']:.0%}"
        cells = [
            r["config"],
            _with_ci(figs.get("e2e_p50_ms")),
            _with_ci(figs.get("e2e_p99_ms")),
            _with_ci(figs.get("ttft_p50_ms")),
            _num(r.get("server_ttft_mean_ms")),
            _num(r.get("tokens_per_call"), 1),
            hits,
            q,
            _with_ci(figs.get("cost_ms_per_request")),
            _num(r.get("relative_cost"), 2, "x"),
        ]
        if costs:
            cells += [_num(r.get("usd_per_1k_requests"), 4), _num(r.get("usd_per_1m_output_tokens"), 2)]
        cells.append(verdict_summary(r))
        out.append("| " + " | ".join(cells) + " |")
    return out


def ladder_notes(rows: list[dict[str, Any]], point: dict[str, Any]) -> list[str]:
    """Under the table: the operating point, the cost model, each change with its CI and verdict."""
    from vllmtune.ladder_figures import FIGURES

    rounds = point["rounds"]
    how = (
        f"{rounds} interleaved rounds (every rung once per round, in ladder order), pooled"
        if rounds > 1
        else "1 round (the rungs one after another)"
    )
    out = [
        f"Operating point: closed loop at concurrency {point['concurrency']}, {point['requests_per_round']} "
        f"measured requests per rung per round after {point['warmup_requests']} warm-up requests (excluded), "
        f"workload {point['workload']}, seed {point['seed']}, {how}.",
        "Relative cost: server-busy seconds per successful request (the union of the requests' in-server "
        "intervals; prompt-cache hits cost 0), relative to the first rung. [a, b]: 95% CI.",
    ]
    changes = []
    for r in rows:
        if r.get("failed") or not r.get("vs"):
            continue
        parts = []
        for key, name, _, _ in FIGURES:
            fig = r["figures"][key]
            ci = fig.get("delta_ci95")
            delta = "-" if fig.get("delta") is None else f"{_signed(fig['delta'])} ms"
            within = f" [{_signed(ci[0])}, {_signed(ci[1])}]" if ci else " [CI: too few samples]"
            parts.append(f"{name} {delta}{within} {fig['verdict']}")
        changes.append(f"- {r['config']} vs {r['vs']}: " + "; ".join(parts))
        if r.get("quality_regression"):
            changes.append(f"- {r['config']}: QUALITY DROP {r['quality_delta']:+.3f} vs {rows[0]['config']}")
    if changes:
        out += [
            "",
            "Change from the previous rung (95% CI of the difference; a CI including 0: no significant change):",
        ]
        out += changes
    return out
