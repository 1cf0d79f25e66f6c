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


def operating_point(args: LadderArgs, search: dict[str, Any] | None = None) -> dict[str, Any]:
    """The load every rung was measured (and costed) at: the closed loop at --concurrency, or with
    --slo the open-loop rate ``search`` (the baseline's ``find_max_rate``) found."""
    point: dict[str, Any] = {
        "arrivals": "closed loop",
        "concurrency": args.concurrency,
        "requests_per_round": args.requests,
        "warmup_requests": args.warmup,
        "rounds": args.repeat,
        "workload": args.workload,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
    }
    if args.slo and search is not None:
        point.update(
            {
                "arrivals": "open loop",
                "rate": operating_rate(search),
                "slo": args.slo,
                "found_by": "the highest request rate at which the baseline met the SLO (bench --find-max-rate)",
                "trials": search["find_max_rate"]["trials"],
            }
        )
    return point


def operating_rate(search: dict[str, Any]) -> float:
    """The rate every rung runs at: the highest one the baseline's search found meeting the SLO."""
    found = search["find_max_rate"]
    if found["max_rate"] is None:
        tried = "; ".join(_trial_text(t) for t in found["trials"])
        raise LadderError(
            f"the baseline met the SLO at no rate tried ({tried}), so there is no operating point to compare "
            "the rungs at",
            hint="loosen --slo, or raise --max-trials to search lower rates",
        )
    return float(found["max_rate"])


def _trial_text(t: dict[str, Any]) -> str:
    what = "closed loop" if t["rate"] is None else f"{t['rate']:,.2f}/s"
    met = "meets" if t["met"] else "misses" if t["rate_held"] else "misses (rate not held)"
    return f"{what} -> {t['request_throughput']:,.2f} req/s, {met}"


COST_MODEL = (
    "relative cost = server-busy seconds per successful request / the baseline's; server-busy seconds = "
    "length of the union of the requests' in-server intervals [sent, end] (prompt-cache hits, X-Cache: HIT, "
    "cost 0), at the operating point; its 95% CI: Fieller's interval of the ratio of the two rungs' mean per-request "
    "server ms; $/1k req = busy s per request x price/3600 x 1000, $/1M out tok = busy s / output tokens x "
    "price/3600 x 1e6"
)


def ladder_rows(args: LadderArgs, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(table rows in rung order, a failed rung where it stands; the measured rungs' samples)."""
    from vllmtune.bench import report
    from vllmtune.ladder.server_figures import server_ttft, server_ttft_change, spec_decode
    from vllmtune.ladder_figures import compare_figures, ratio_figure, rung_figures

    rows: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    base_cost: float | None = None
    base_samples: list[float] | None = None
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
        base_samples = fig["samples"]["cost_ms"] if base_samples is None else base_samples
        relative = ratio_figure(base_samples, fig["samples"]["cost_ms"], None)
        sttft = server_ttft(results, seed=len(measured))  # a seed per rung: independent resamples
        sttft_change = server_ttft_change(prev["server_ttft"] if prev else None, sttft)
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
            "relative_cost_ci95": relative["ratio_ci95"] if prev else None,
            "relative_cost_ci_verdict": relative["ratio_ci_verdict"] if prev else None,
            "relative_cost_verdict": relative["ratio_verdict"] if prev else None,
            "server_ttft_p50_ms": None if sttft is None else {k: v for k, v in sttft.items() if k != "_replicates"},
            "server_ttft_change": sttft_change,
            "spec_decode": spec_decode(results),
            "goodput": pooled_goodput(results),
            "figures": figures,
            "verdicts": {k: f["verdict"] for k, f in figures.items() if "verdict" in f}
            | ({"server_ttft_p50_ms": sttft_change["verdict"]} if sttft_change else {}),
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
        prev = {"samples": fig["samples"], "config": row["config"], "server_ttft": sttft}
    base_quality = next((r.get("quality") for r in rows if not r.get("failed")), None)
    for r in rows:
        if r.get("quality") is not None and base_quality is not None:
            r["quality_delta"] = r["quality"] - base_quality
            r["quality_regression"] = r["quality_delta"] < -0.01
    return rows, measured


def pooled_goodput(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rounds' goodput (requests meeting every SLO bound per second of measured time, pooled:
    good requests / wall seconds) and whether every round met the SLO; None without --slo."""
    slos = [(res["slo"], res["summary"].get("wall_s") or 0.0) for res in results if res.get("slo")]
    if not slos:
        return None
    good = sum(int(s["good_requests"]) for s, _ in slos)
    wall = sum(w for _, w in slos)
    return {
        "goodput": good / wall if wall > 0 else 0.0,
        "good_requests": good,
        "requests_sent": sum(int(s["requests_sent"]) for s, _ in slos),
        "met": all(bool(s["met"]) for s, _ in slos),
    }


def finish(
    args: LadderArgs, entries: list[dict[str, Any]], out: Path, search: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Table, markdown report, chart and ladder.json from the rungs' results."""
    from vllmtune.bench import report

    if not any(e.get("status") == "done" for e in entries):
        raise LadderError("no rung could be measured; see the reasons above")  # (say() printed them)
    table_rows, measured = ladder_rows(args, entries)
    point = operating_point(args, search)
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


SERVER_TTFT = ("server_ttft_p50_ms", "server TTFT")  # a verdict beside FIGURES', from vLLM's histogram


def verdict_summary(row: dict[str, Any]) -> str:
    """``better: p50, cost; no significant change: p99, TTFT p50`` (the change from the previous rung)."""
    from vllmtune.ladder_figures import BETTER, FIGURES, SAME, WORSE

    verdicts = row.get("verdicts") or {}
    if not verdicts:
        return "-"
    named = [(key, name) for key, name, _, _ in FIGURES] + [SERVER_TTFT]
    parts = []
    for word in (BETTER, WORSE, SAME):
        names = [name for key, name in named if verdicts.get(key) == word]
        if names:
            parts.append(f"{word}: {', '.join(names)}")
    return "; ".join(parts)


def _ratio_text(
    ratio: float | None, ci: list[float] | None, percent: bool = False, judged: list[float] | None = None
) -> str:
    """``0.61x (95% CI 0.55-0.68)``, or as a change ``-39% (95% CI -45% to -32%)``; with ``judged``
    (the CI the verdict reads, at VERDICT_LEVEL) also ``, 99.2% CI -50% to -20%``."""
    from vllmtune.ladder_figures import VERDICT_LEVEL

    if ratio is None:
        return "-"
    level = f"{VERDICT_LEVEL:.1%}"
    if percent:
        head = f"{_signed((ratio - 1) * 100)}%"
        if not ci:
            return head + " (95% CI: too few samples)"
        text = f"95% CI {_signed((ci[0] - 1) * 100)}% to {_signed((ci[1] - 1) * 100)}%"
        if judged:
            text += f", {level} CI {_signed((judged[0] - 1) * 100)}% to {_signed((judged[1] - 1) * 100)}%"
        else:
            text += f", {level} CI: too few samples"
        return f"{head} ({text})"
    text = f" (95% CI {ci[0]:,.2f}-{ci[1]:,.2f}" if ci else ""
    if ci and judged:
        text += f", {level} CI {judged[0]:,.2f}-{judged[1]:,.2f}"
    return f"{ratio:,.2f}x" + (text + ")" if text else "")


def _too_few(q: int | None, row: dict[str, Any]) -> str:
    """Why a change has no CI: ``CI: p99 needs 368 requests a side, 20 here``."""
    from vllmtune.bench.stats import quantile_ci_min_samples

    if q is None:
        return "CI: too few samples"
    return f"CI: p{q} needs {quantile_ci_min_samples(q)} requests a side, {row['requests_ok']} here"


def _server_ttft_cell(r: dict[str, Any]) -> str:
    if r.get("server_ttft_p50_ms"):
        return _with_ci(r["server_ttft_p50_ms"])
    mean = r.get("server_ttft_mean_ms")
    return "-" if mean is None else f"{_num(mean)} (mean)"  # a server without TTFT buckets


def ladder_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table: figures with their 95% CIs, and the verdict against the previous rung."""
    head = [
        "Config",
        "p50 ms",
        "p99 ms",
        "TTFT p50",
        "Server TTFT p50",
        "Tokens/call",
        "Cache hits",
        "Quality",
        "Server ms/req",
        "Relative cost",
    ]
    goodput = any(r.get("goodput") for r in rows)  # --slo given
    if goodput:
        head.append("Goodput req/s")
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
            _server_ttft_cell(r),
            _num(r.get("tokens_per_call"), 1),
            hits,
            q,
            _with_ci(figs.get("cost_ms_per_request")),
            _ratio_text(r.get("relative_cost"), r.get("relative_cost_ci95")),
        ]
        if goodput:
            g = r.get("goodput")
            cells.append("-" if not g else _num(g["goodput"], 2) + ("" if g["met"] else " (SLO missed)"))
        if costs:
            cells += [_num(r.get("usd_per_1k_requests"), 4), _num(r.get("usd_per_1m_output_tokens"), 2)]
        cells.append(verdict_summary(r))
        out.append("| " + " | ".join(cells) + " |")
    return out


def _point_text(point: dict[str, Any]) -> str:
    rounds = point["rounds"]
    how = (
        f"{rounds} interleaved rounds (every rung once per round, in ladder order), pooled"
        if rounds > 1
        else "1 round (the rungs one after another)"
    )
    per = (
        f"{point['requests_per_round']} measured requests per rung per round after {point['warmup_requests']} "
        f"warm-up requests (excluded), workload {point['workload']}, seed {point['seed']}, {how}."
    )
    if point["arrivals"] == "closed loop":
        return f"Operating point: closed loop at concurrency {point['concurrency']}, {per}"
    trials = "; ".join(_trial_text(t) for t in point["trials"])
    return (
        f"Operating point: open loop at {point['rate']:,.2f} requests/s, at most {point['concurrency']} in flight: "
        f"the highest rate at which the baseline met --slo {point['slo']} ({len(point['trials'])} trials: "
        f"{trials}); {per}"
    )


def ladder_notes(rows: list[dict[str, Any]], point: dict[str, Any]) -> list[str]:
    """Under the table: the operating point, the cost model, each change with its CI and verdict."""
    from vllmtune.bench.stats import quantile_ci_min_samples
    from vllmtune.ladder_figures import FIGURES, VERDICT_LEVEL, VERDICTS

    level = f"{VERDICT_LEVEL:.1%}"
    need_p50, need_p99 = (quantile_ci_min_samples(q, VERDICT_LEVEL) for q in (50, 99))
    out = [
        _point_text(point),
        "Relative cost: server-busy seconds per successful request at that point (the union of the requests' "
        "in-server intervals; prompt-cache hits cost 0), relative to the first rung, with Fieller's 95% CI of "
        f"the ratio (its verdict reads the {level} CI). [a, b]: 95% CI. Server TTFT p50: vLLM's TTFT histogram, "
        "interpolated within its bucket "
        "(the CI: a bootstrap over the bucketed counts; no finer than the buckets).",
    ]
    if any(r.get("goodput") for r in rows):
        out.append(
            "Goodput: requests per second completed within every --slo bound (vllm bench serve --goodput), "
            "the rounds pooled; (SLO missed): a round did not meet the SLO at the operating point."
        )
    spec = [r for r in rows if not r.get("failed") and r.get("spec_decode")]
    for r in spec:
        sd = r["spec_decode"]
        rate = "-" if sd["acceptance_rate"] is None else f"{sd['acceptance_rate']:.0%}"
        length = "-" if sd["mean_acceptance_length"] is None else f"{sd['mean_acceptance_length']:.2f}"
        out.append(
            f"Speculative decoding ({r['config']}): {sd['accepted_tokens']:,} of {sd['draft_tokens']:,} draft tokens "
            f"accepted ({rate}), mean acceptance length {length} over {sd['drafts']:,} drafts (vLLM's "
            "vllm:spec_decode_* counters)."
        )
    changes = []
    for r in rows:
        if r.get("failed") or not r.get("vs"):
            continue
        parts = []
        for key, name, _, q in FIGURES:
            fig = r["figures"][key]
            ci = fig.get("delta_ci95")
            delta = "-" if fig.get("delta") is None else f"{_signed(fig['delta'])} ms"
            within = f" [{_signed(ci[0])}, {_signed(ci[1])}]" if ci else f" [{_too_few(q, r)}]"
            ratio = _ratio_text(fig.get("ratio"), fig.get("ratio_ci95"), True, fig.get("ratio_ci_verdict"))
            parts.append(f"{name} {delta}{within}, {ratio} {fig['verdict']}")
        change = r.get("server_ttft_change")
        if change:
            text = _ratio_text(change["ratio"], change["ratio_ci95"], True, change.get("ratio_ci_verdict"))
            parts.append(f"server TTFT p50 {text} {change['verdict']}")
        changes.append(f"- {r['config']} vs {r['vs']}: " + "; ".join(parts))
        if r.get("quality_regression"):
            changes.append(f"- {r['config']}: QUALITY DROP {r['quality_delta']:+.3f} vs {rows[0]['config']}")
    if changes:
        out += [
            "",
            f"Change from the previous rung (95% CI of the difference, then the ratio with its 95% CI and its "
            f"{level} CI; the verdict is the ratio's {level} CI, Bonferroni over a rung's {VERDICTS} comparisons: "
            "one including 1 is no significant change; a percentile's CI needs enough requests a side, "
            f"{need_p50} for p50 and {need_p99} for p99):",
        ]
        out += changes
    return out
