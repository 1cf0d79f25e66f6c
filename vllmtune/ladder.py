"""``vllmtune ladder``: apply the levers in order, measure after each, keep what pays.

Rungs (cumulative): baseline (every lever off) -> + prompt cache -> + prefix caching ->
+ batching -> + quantization -> + speculative decoding. Each rung is a full profile written
to ``OUT/rungs/<rung>.yaml`` (deployable as is), brought up, benchmarked with the same seeded
workload, and torn down. ``OUT/state.json`` makes a crashed or interrupted ladder resumable.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtune.errors import VllmtuneError
from vllmtune.levers import LEVERS
from vllmtune.profile.loader import LoadedProfile, load_profile, validate_document
from vllmtune.profile.yamlio import dump_yaml, load_yaml

RUNGS = ("baseline", *(lever.key for lever in LEVERS))
ALIASES = {"base": "baseline", **{alias: lever.key for lever in LEVERS for alias in lever.aliases}}
TITLES = {"baseline": "baseline", **{lever.key: lever.rung_title for lever in LEVERS}}


class LadderError(VllmtuneError):
    """The ladder cannot run (bad --rungs, nothing to compare)."""


@dataclass
class LadderArgs:
    """Everything ``vllmtune ladder`` takes."""

    profile: str
    out: str
    workload: str = "shared-prefix"
    requests: int = 100
    concurrency: int = 4
    max_tokens: int | None = None
    duplicate_share: float = 0.3
    seed: int = 0
    gpu_hour_usd: float | None = None
    runtime: str = "docker"
    port: int | None = None
    rungs: list[str] | None = None
    repeat: int = 1
    resume: bool = False
    timeout: float = 1800.0
    warmup: int = 2
    max_error_rate: float = 0.05  # a rung whose requests fail more often than this is a failed rung


def _off(doc: dict[str, Any]) -> dict[str, Any]:
    """The profile with every lever off (the baseline rung)."""
    d = copy.deepcopy(doc)
    d.pop("extends", None)
    d["prompt_cache"] = {**d.get("prompt_cache", {}), "enabled": False}
    d["prefix_caching"] = False
    d.pop("batching", None)
    d.pop("quantization", None)
    d.pop("speculative", None)
    return d


def configured(doc: dict[str, Any]) -> dict[str, bool]:
    """Which levers the profile configures (a rung for an unconfigured lever is skipped)."""
    return {"baseline": True, **{lever.key: lever.configured(doc) for lever in LEVERS}}


def rung_document(
    doc: dict[str, Any],
    rung: str,
    failed: frozenset[str] = frozenset(),
    base_dir: Path | None = None,
    selected: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The full profile of a rung: baseline plus every configured lever up to ``rung``, except
    levers whose own rung failed (keep what pays: a lever that cannot run is not carried on)."""
    d = _off(doc)
    upto = RUNGS.index(rung)
    on = {
        k: v and (k == rung or k not in failed) and (selected is None or k in selected)
        for k, v in configured(doc).items()
    }
    ident = (d.get("model") or {}).get("id", "")
    if base_dir is not None and isinstance(ident, str) and ident.startswith(("./", "../")):
        d["model"]["id"] = str((base_dir / ident).resolve())  # the rung file lives elsewhere
    for lever in LEVERS:  # cumulative: every configured lever up to this rung
        if upto >= lever.number and on[lever.key]:
            d[lever.field] = copy.deepcopy(doc[lever.field])
    d["name"] = f"{doc['name']}-{rung}"[:63].rstrip("-")
    return d


def parse_rungs(spec: str | None) -> list[str] | None:
    """``--rungs prefix,spec`` -> ["prefix-caching", "speculative"] (the baseline is always run)."""
    if not spec:
        return None
    out = []
    for part in spec.split(","):
        name = ALIASES.get(part.strip(), part.strip())
        if name not in RUNGS:
            raise LadderError(
                f"unknown rung {part!r}; choose from {', '.join(RUNGS)} (or prefix, cache, batch, quant, spec)"
            )
        out.append(name)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float) -> bool:
    from vllmtune.runtime.health import http_get

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_get(url, timeout=1.0)[0] == 200:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def prompt_cache_proxy(upstream: str, lp: LoadedProfile) -> Any:
    """The prompt-result cache proxy in front of ``upstream`` for the duration of a rung."""
    pc = lp.profile.prompt_cache
    port = _free_port()
    from vllmtune.cache.config import ServeConfig, sidecar_argv
    from vllmtune.profile.models import parse_duration

    cfg = ServeConfig(
        upstream=upstream,
        port=port,
        ttl=parse_duration(pc.ttl),
        max_temperature=pc.max_temperature,
        skip_pii=pc.skip_pii,
    )
    cmd = [sys.executable, "-m", "vllmtune.cache", *sidecar_argv(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not _wait_http(f"http://127.0.0.1:{port}/cache/stats", 30):
            proc.terminate()
            err = proc.communicate(timeout=5)[1] if proc.stderr else ""
            raise LadderError(f"the prompt-cache proxy did not start: {err.strip()[-500:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _state_path(out: Path) -> Path:
    return out / "state.json"


def _round_name(rung: str, rnd: int, suffix: str) -> str:
    return f"{rung}{'' if rnd == 1 else f'-{rnd}'}{suffix}"


def run_ladder(args: LadderArgs, say: Callable[[str], None]) -> dict[str, Any]:
    """Run every rung (``--repeats N``: N interleaved rounds, every rung once per round, so drift
    on the machine hits every rung alike); returns the ladder summary (also OUT/ladder.json)."""
    from vllmtune.bench.command import BenchArgs, error_rate_problem, run_bench, write_result
    from vllmtune.runtime.up import UpOptions, get_backend, up

    if args.repeat < 1:
        raise LadderError(f"--repeats must be at least 1, not {args.repeat}")
    source = load_profile(args.profile)
    doc = source.located.value
    on = configured(doc)
    picked = parse_rungs(",".join(args.rungs)) if args.rungs else None
    wanted = ["baseline", *(picked if picked is not None else RUNGS[1:])]
    out = Path(args.out)
    (out / "rungs").mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    if args.resume and _state_path(out).exists():
        state = json.loads(_state_path(out).read_text())
    entries: dict[str, dict[str, Any]] = {}
    failed: set[str] = set()
    base_dir = None if args.profile.startswith("preset:") else Path(args.profile).parent
    for rung in RUNGS:
        if rung in wanted and not on[rung]:
            say(f"{TITLES[rung]}: skipped (the profile does not configure this lever)")
            entries[rung] = {"rung": rung, "status": "skipped", "reason": "not configured in the profile"}
    for rnd in range(1, args.repeat + 1):
        for rung in RUNGS:
            if rung not in wanted or not on[rung] or rung in failed:
                continue
            title = TITLES[rung] + (f" (round {rnd}/{args.repeat})" if args.repeat > 1 else "")
            rdoc = rung_document(doc, rung, frozenset(failed), base_dir, frozenset(wanted))
            rung_file = out / "rungs" / f"{rung}.yaml"
            rung_file.write_text(f"# ladder rung {TITLES[rung]} of {args.profile}\n" + dump_yaml(rdoc))
            lp = validate_document(load_yaml(rung_file.read_text(), str(rung_file)), str(rung_file))
            prev = state.get(rung)
            if prev and prev.get("profile_hash") == lp.digest:
                if prev.get("status") == "failed":
                    say(f"{title}: failed earlier (resume): {prev.get('reason')}")
                    entries[rung] = prev
                    failed.add(rung)
                    continue
                if len(prev.get("requests", ())) >= rnd:
                    say(f"{title}: done earlier (resume), {prev['results'][rnd - 1]}")
                    entries[rung] = prev
                    continue
            entry = entries.get(rung) or {"rung": rung, "profile": str(rung_file), "results": [], "requests": []}
            if entry.get("profile_hash") not in (None, lp.digest):  # an earlier lever failed in this round
                entry = {"rung": rung, "profile": str(rung_file), "results": [], "requests": []}
            entry["profile_hash"] = lp.digest
            entries[rung] = entry
            say(f"{title}: starting ({args.runtime})")
            port = args.port or (_free_port() if args.runtime == "local" else None)
            opts = UpOptions(runtime=args.runtime, port=port, timeout=args.timeout, replace=True)
            backend = get_backend(args.runtime)
            try:
                started = up(str(rung_file), opts, lambda phase, t: None)
                entry.setdefault("start_s", []).append(started.timings.get("server_start_s"))
                # vLLM's own endpoint (warm-up, /metrics) and the clients' one: `up` starts the
                # prompt-cache proxy of the stack itself when the rung enables it
                endpoint = (started.vllm_endpoint or started.endpoint).removesuffix("/v1")
                client = started.endpoint.removesuffix("/v1")
                model = lp.profile.model.served_name or None
                if args.warmup > 0:  # to the server itself: warms the engine, never fills the prompt cache
                    run_bench(
                        BenchArgs(
                            target=endpoint,
                            workload=args.workload,
                            requests=args.warmup,
                            concurrency=min(args.concurrency, args.warmup),
                            max_tokens=args.max_tokens,
                            seed=args.seed + 1,
                            model=model,
                            duplicate_share=args.duplicate_share,
                        )
                    )
                with contextlib.ExitStack() as stack:
                    target = client
                    if rdoc.get("prompt_cache", {}).get("enabled") and client == endpoint:  # no proxy from up
                        target = stack.enter_context(prompt_cache_proxy(endpoint, lp))
                    requests_path = out / _round_name(rung, rnd, ".requests.jsonl")
                    bench = BenchArgs(
                        target=target,
                        workload=args.workload,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        max_tokens=args.max_tokens,
                        seed=args.seed,
                        model=model,
                        label=title,
                        duplicate_share=args.duplicate_share,
                        metrics_url=endpoint,
                        save_requests=str(requests_path),
                    )
                    result = run_bench(bench)
                    result["config"].update(
                        {
                            "profile": lp.profile.name,
                            "profile_hash": lp.digest,
                            "rung": rung,
                            "round": rnd,
                            "ladder_warmup": args.warmup,
                            "vllm_version": lp.profile.vllm.version,
                        }
                    )
                    if target != endpoint:
                        result["prompt_cache"] = _proxy_stats(target)
                path = out / _round_name(rung, rnd, ".json")
                write_result(result, str(path))
                entry["results"].append(str(path))
                entry["requests"].append(str(requests_path))
                problem = error_rate_problem(result, args.max_error_rate)
                if problem:  # measured, but too many requests failed: its figures are not the lever's
                    entry.update(
                        {
                            "status": "failed",
                            "reason": problem.splitlines()[0].removesuffix("; first distinct errors:"),
                            "detail": problem,
                            "error_samples": result.get("error_samples", []),
                            "error_rate": True,
                        }
                    )
                    failed.add(rung)
                    say(f"{title}: FAILED: {problem}")
                else:
                    entry["status"] = "done"
                    say(f"{title}: measured -> {path}")
            except KeyboardInterrupt:
                backend.stop(lp.profile.name)
                raise
            except VllmtuneError as exc:
                reason = str(exc).splitlines()
                short = next((line for line in reason if line.startswith("reason:")), reason[0])
                entry.update({"status": "failed", "reason": short, "detail": "\n".join(reason[-8:])})
                failed.add(rung)
                say(f"{title}: FAILED to run ({short}); the ladder goes on")
            finally:
                with contextlib.suppress(VllmtuneError):
                    backend.stop(lp.profile.name)
            state[rung] = entry
            _state_path(out).write_text(json.dumps(state, indent=2))
    ordered = [entries[r] for r in RUNGS if r in entries]
    return finish(args, ordered, out)


def _proxy_stats(url: str) -> dict[str, Any]:
    from vllmtune.cache.command import stats

    try:
        return stats(url)
    except VllmtuneError:
        return {}


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
