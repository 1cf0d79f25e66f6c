"""Each command's result as text for people or JSON for scripts; the exit code it implies.

No typer here (the fast paths print with these too)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

# the printers' own option, on every command that prints a result
OUTPUT_FLAG = "--output"
OUTPUT_CHOICES = ("text", "json")
OUTPUT_HELP = "text for people, json for scripts."


def echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def warn(lines: Iterable[str]) -> None:
    for line in lines:
        sys.stderr.write(f"warning: {line}\n")


def note(text: str) -> None:
    sys.stderr.write(text + "\n")


def _as_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str))


def render(result: Any) -> int:
    """:class:`vllmtune.commands.render.RenderResult`: warnings, then the text or what was written."""
    warn(result.warnings)
    if result.text is not None:
        sys.stdout.write(result.text)
    for path in result.wrote:
        note(f"wrote {path}")
    return 0


def validate(result: Any, output: str) -> int:
    """:class:`vllmtune.commands.validate.ValidateResult`; exit 1 when a file is not ok."""
    if output == "json":
        echo(json.dumps(result.files, indent=2))
    else:
        for r in result.files:
            warn(r["warnings"])
            if r["ok"]:
                echo(f"ok: {r['file']} ({r['name']}, vLLM {r['vllm_version']}, {r['served_name']})")
            else:
                sys.stderr.write("\n".join(r["errors"]) + "\n")
    return 0 if result.ok else 1


def explain(plan: Any, output: str) -> int:
    from vllmtune.explain import explain_data, explain_table

    if output == "json":
        echo(json.dumps(explain_data(plan), indent=2))
        return 0
    from rich.console import Console

    console = Console()
    # the title as a plain line: rich's table title would restyle it (it capitalised "my-llm")
    console.print(f"{plan.name}: vLLM {plan.vllm_version}, {plan.served_name}", markup=False, highlight=False)
    console.print(explain_table(plan))
    console.print(f"image {plan.image}; entrypoint {' '.join(plan.entrypoint)}")
    for w in plan.warnings:
        console.print(f"warning: {w}", style="yellow", markup=False, highlight=False)
    return 0


def columns(table: list[tuple[str, ...]], width_of: int) -> list[str]:
    """Rows left-aligned in columns (the first ``width_of`` padded), trailing blanks dropped."""
    widths = [max(len(row[i]) for row in table) for i in range(width_of)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), *row[width_of:]]).rstrip() for row in table
    ]


def presets(rows: list[dict[str, Any]], output: str) -> int:
    if output == "json":
        echo(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "LEVERS ON", "DESCRIPTION")] + [
        (r["name"], ",".join(r["levers_on"]) or "-", r["description"]) for r in rows
    ]
    for line in columns(table, 2):
        echo(line)
    return 0


def flags(data: Any, args: Any, output: str) -> int:
    if output == "json":
        echo(json.dumps(data, indent=2))
        return 0
    if args.diff:
        echo(f"vLLM {args.diff} -> {args.vllm} ({args.entrypoint})")
        for n in data["added"]:
            echo(f"+ {n}")
        for n in data["removed"]:
            echo(f"- {n}")
        for c in data["changed"]:
            echo(f"~ {c['flag']}: {c['change']}")
        for v in data["values"]:
            echo(f"~ {v['set']}: +{','.join(v['added']) or '-'} -{','.join(v['removed']) or '-'}")
        return 0
    for r in data:
        spell = "/".join(r.get("spellings", [r["flag"]]))
        choices = f" {{{','.join(r['choices'])}}}" if r.get("choices") else ""
        echo(f"{spell}{choices}  [{r['kind']}]  {r['help'][:100]}")
    return 0


def up(up_result: Any, output: str) -> int:
    """:class:`vllmtune.commands.up.UpResult`."""
    result, estimate = up_result.result, up_result.kv_estimate
    if output == "json":
        echo(json.dumps({**result.to_json(), "kv_cache_estimate_tokens": estimate}, indent=2))
        return 0
    what = {"unchanged": "already running, unchanged", "replaced": "replaced and ready", "started": "ready"}[
        result.status
    ]
    t = result.timings
    extra = f" in {t['total_s']:.1f} s (server {t['server_start_s']:.1f} s)" if t else ""
    echo(f"{result.name}: {what}{extra}: {result.endpoint} (model {result.model}, {result.backend} {result.ident})")
    if result.vllm_endpoint and result.vllm_endpoint != result.endpoint:
        echo(f"  through the prompt-cache proxy; vLLM itself: {result.vllm_endpoint}")
    if result.kv_cache:
        kv = result.kv_cache
        est = f" (vllmtune fit estimated {estimate:,})" if estimate is not None else ""
        echo(
            f"  vLLM reports KV cache {int(kv.get('kv_cache_tokens', 0)):,} tokens{est}, max "
            f"concurrency {kv.get('max_concurrency', 0):.2f}x at "
            f"{int(kv.get('max_concurrency_tokens_per_request', 0)):,} tokens/request"
        )
    return 0


def ps(rows: list[dict[str, Any]], output: str) -> int:
    if output == "json":
        echo(json.dumps(rows, indent=2))
        return 0
    if not rows:
        echo("no servers started by vllmtune")
        return 0
    # MODELS: every name the server answers to (base model, then LoRA adapters).
    header = ("NAME", "BACKEND", "PORT", "STATE", "HEALTH", "UPTIME", "ID", "MODELS")
    table = [header] + [
        (
            r["name"],
            r["backend"],
            str(r["port"]),
            r["state"],
            r["health"],
            r["uptime"],
            r["ident"],
            ",".join(r["served_models"]) or "-",
        )
        for r in rows
    ]
    lines = columns(table, len(header))
    echo(lines[0])
    for line, r in zip(lines[1:], rows, strict=True):
        echo(line)
        parts = r.get("parts") or []
        if len(parts) > 1:  # a stack: vLLM and its sidecars, one line each (role, container/pid, state)
            width = max(len(str(p["name"])) for p in parts)
            for p in parts:
                port = f"port {p['port']}" if p.get("port") else ""
                echo(f"  {p['role']:<7} {p['name']!s:<{width}}  {p['state']:<8} {port}".rstrip())
    return 0


def bench(outcome: Any, output: str) -> int:
    """:class:`vllmtune.commands.bench.BenchResult`; 130 when interrupted (partial), 1 when too
    many requests failed (the caller raises it as an error)."""
    result = outcome.result
    if outcome.calibrated:
        if output == "json":
            echo(json.dumps(result, indent=2))
        else:
            echo(
                "client ceiling on this machine: "
                f"{result['non_streaming_c16_req_s']:,.0f} req/s non-streaming (c=16), "
                f"{result['streaming_c64_req_s']:,.0f} req/s streaming 16 tokens (c=64)"
            )
        return 0
    for path in outcome.wrote:
        note(f"wrote {path}")
    warn(result["warnings"])
    if result["partial"]:
        warn(["interrupted: the result is partial"])
    if output == "json":
        _as_json({k: v for k, v in result.items() if k != "samples"})
    else:
        echo(_bench_text(result))
    return 130 if result["partial"] else 0


def _bench_text(r: dict[str, Any]) -> str:
    s = r["summary"]
    c = r["config"]

    def pct(key: str) -> str:
        m = s[key]
        if not m.get("count"):
            return "-"
        return f"p50 {m['p50']:,.1f}  p90 {m['p90']:,.1f}  p99 {m['p99']:,.1f}  mean {m['mean']:,.1f}"

    lines = [
        f"{r['label']}: {c['workload']} x {s['requests_sent']} requests, c={c['concurrency']}"
        + (f", rate {c['rate']:g}/s {c['arrivals']}" if c["rate"] else "")
        + (", streaming" if c["stream"] else ""),
        f"  ok {s['requests_ok']}/{s['requests_sent']}  errors "
        + (", ".join(f"{kind} {n}" for kind, n in sorted(r["errors"].items())) or "0"),
        f"  throughput   {s['request_throughput']:,.2f} req/s, {s['output_token_throughput']:,.1f} output tok/s, "
        f"{s['tokens_per_call']:.1f} tokens/call",
        f"  e2e ms       {pct('e2e_ms')}",
        f"  TTFT ms      {pct('ttft_ms')}",
        f"  ITL ms/token {pct('itl_token_ms')}",
        f"  tokens/chunk {s['tokens_per_chunk'].get('mean', 0) or 0:.2f}",
    ]
    sm = r["server_metrics"]
    # vLLM >= 0.8 names them prefix_cache_*, older ones gpu_prefix_cache_*; 0 hits is a value, not "absent"
    prefix = "vllm:prefix_cache_" if "vllm:prefix_cache_queries_total" in sm else "vllm:gpu_prefix_cache_"
    q = sm.get(prefix + "queries_total")
    h = sm.get(prefix + "hits_total", 0.0)
    if q:
        lines.append(f"  server prefix cache: {h:,.0f} of {q:,.0f} prompt tokens hit ({h / q:.1%})")
    sd = r.get("spec_decode")
    if sd:
        rate = "-" if sd["acceptance_rate"] is None else f"{sd['acceptance_rate']:.1%}"
        length = "-" if sd["mean_acceptance_length"] is None else f"{sd['mean_acceptance_length']:.2f}"
        lines.append(
            f"  speculative: {sd['accepted_tokens']:,} of {sd['draft_tokens']:,} draft tokens accepted ({rate}), "
            f"mean acceptance length {length} over {sd['drafts']:,} drafts"
        )
    if r.get("slo"):
        g = r["slo"]
        lines.append(
            f"  goodput      {g['goodput']:,.2f} req/s: {g['good_requests']} of {g['requests_sent']} requests "
            f"({g['good_share']:.1%}) within every bound; SLO " + ("met" if g["met"] else "NOT met")
        )
        for o in g["objectives"]:
            lines.append(
                f"    {o['objective']:<10} {o['observed_ms']:,.1f} ms (limit {o['limit_ms']:,.1f}): "
                + ("ok" if o["met"] else "over")
                + f", {o['requests_within']} requests within"
            )
    if r.get("find_max_rate"):
        f = r["find_max_rate"]
        best, tried = f["max_rate"], len(f["trials"])
        lines.append(
            f"  max rate     {best:,.2f} req/s meets the SLO ({tried} trials; the figures above are that run's)"
            if best is not None
            else f"  max rate     none of {tried} trials met the SLO (the figures above are the last run's)"
        )
    if r["quality"]:
        lines.append(
            f"  quality      {r['quality']['normalized']:.3f} normalized match over {r['quality']['cases']} cases "
            f"(exact {r['quality']['exact']:.3f})"
        )
    return "\n".join(lines)


def diff(result: dict[str, Any], output: str) -> int:
    """Exit 1 when they differ (like diff)."""
    if output == "json":
        echo(json.dumps(result, indent=2))
    else:
        for change in result["changes"]:
            echo(f"* {change}")
        if result["diff"]:
            sys.stdout.write(result["diff"] if result["diff"].endswith("\n") else result["diff"] + "\n")
        elif not result["changes"]:
            echo("no differences")
    return 1 if result["changes"] or result["diff"] else 0


def render_check(results: list[dict[str, Any]], fix: bool, output: str) -> int:
    stale = [r for r in results if r["stale"]]
    if output == "json":
        echo(json.dumps(results, indent=2))
    else:
        for r in results:
            state = "stale" if r["stale"] else "up to date"
            if r["fixed"]:
                state = "re-rendered"
            echo(f"{r['output']}: {state} ({r['profile']}, {r['target']})")
    if stale and not fix:
        note("rendered files are stale: run vllmtune render-check --fix (or vllmtune render) and commit them")
        return 1
    return 0


def drift(result: dict[str, Any], output: str) -> int:
    if output == "json":
        echo(json.dumps(result, indent=2))
    else:
        echo(f"{result['source']}: " + ("no drift" if not result["drift"] else "DRIFT"))
        for d in result["drift"]:
            echo(f"  {d}")
    return 1 if result["drift"] else 0


def fit(result: Any, output: str) -> int:
    """:class:`vllmtune.commands.fit.FitResult`; exit 1 when it does not fit."""
    if output == "json":
        echo(json.dumps(result.report, indent=2))
    else:
        from rich.console import Console

        if result.from_log:
            from vllmtune.fit.fromlog import from_log_table

            Console().print(from_log_table(result.report))
        else:
            from vllmtune.fit import fit_table

            Console().print(fit_table(result.report))
    return 0 if result.fits else 1


def ladder(summary: dict[str, Any], out: str, output: str) -> None:
    if output == "json":
        _as_json(summary)
    else:
        echo("\n".join(summary["table_markdown"]))
        note(ladder_wrote(out))


def ladder_wrote(out: str) -> str:
    """What ``ladder`` wrote, with the paths as the user's shell spells them (``-o ladder/`` too)."""
    base = out.rstrip("/") or "/"
    return "wrote " + ", ".join(
        f"{base}/{name}".replace("//", "/") for name in ("report.md", "ladder.json", "ladder.png", "rungs/*.yaml")
    )


def tune(result: Any, output: str) -> None:
    """:class:`vllmtune.commands.tune.TuneResult`: the lines (or the data), then what it wrote."""
    if output == "json":
        _as_json(result.data)
    else:
        echo("\n".join(result.lines))
    for line in result.notes:
        note(line)


def cache_stats(data: dict[str, Any], output: str) -> int:
    if output == "json":
        echo(json.dumps(data, indent=2))
        return 0
    echo(
        f"hits {data['hits']:,}  misses {data['misses']:,}  bypasses {data['bypasses']:,}  "
        f"hit ratio {data['hit_ratio']:.1%}"
    )
    echo(
        f"tokens saved {data['tokens_saved']:,}  (${data['usd_saved']:.2f})  "
        f"upstream errors {data['upstream_errors']}  "
        f"{data['backend']} errors {data['backend_errors']}"
    )
    for reason, n in sorted(data["bypass"].items()):
        echo(f"  bypass {reason}: {n:,}")
    return 0
