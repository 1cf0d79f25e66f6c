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
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtune.errors import VllmtuneError
from vllmtune.profile.loader import LoadedProfile, load_profile, validate_document
from vllmtune.profile.yamlio import dump_yaml, load_yaml

RUNGS = ("baseline", "prompt-cache", "prefix-caching", "batching", "quantization", "speculative")
ALIASES = {
    "base": "baseline",
    "cache": "prompt-cache",
    "prompt": "prompt-cache",
    "prefix": "prefix-caching",
    "batch": "batching",
    "quant": "quantization",
    "awq": "quantization",
    "spec": "speculative",
}
TITLES = {
    "baseline": "baseline",
    "prompt-cache": "+ prompt cache",
    "prefix-caching": "+ prefix caching",
    "batching": "+ batching",
    "quantization": "+ quantization",
    "speculative": "+ speculative decoding",
}


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
    q = doc.get("quantization") or {}
    return {
        "baseline": True,
        "prompt-cache": bool((doc.get("prompt_cache") or {}).get("enabled")),
        "prefix-caching": doc.get("prefix_caching") is True,
        "batching": any(v is not None for v in (doc.get("batching") or {}).values()),
        "quantization": bool(q.get("method") or q.get("checkpoint") or q.get("kv_cache_dtype")),
        "speculative": bool(doc.get("speculative")),
    }


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
    if upto >= 1 and on["prompt-cache"]:
        d["prompt_cache"] = copy.deepcopy(doc["prompt_cache"])
    if upto >= 2 and on["prefix-caching"]:
        d["prefix_caching"] = True
    if upto >= 3 and on["batching"]:
        d["batching"] = copy.deepcopy(doc["batching"])
    if upto >= 4 and on["quantization"]:
        d["quantization"] = copy.deepcopy(doc["quantization"])
    if upto >= 5 and on["speculative"]:
        d["speculative"] = copy.deepcopy(doc["speculative"])
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
    from vllmtune.profile.models import parse_duration

    cmd = [
        sys.executable,
        "-m",
        "vllmtune.cache",
        "--upstream",
        upstream,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend",
        "memory",
        "--ttl",
        str(parse_duration(pc.ttl)),
        "--max-temperature",
        str(pc.max_temperature),
    ]
    if not pc.skip_pii:
        cmd.append("--no-skip-pii")
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


def run_ladder(args: LadderArgs, say: Callable[[str], None]) -> dict[str, Any]:
    """Run every rung; returns the ladder summary (also written to OUT/ladder.json)."""
    from vllmtune.bench.command import BenchArgs, error_rate_problem, run_bench, write_result
    from vllmtune.runtime.up import UpOptions, get_backend, up

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
    entries: list[dict[str, Any]] = []
    failed: set[str] = set()
    base_dir = None if args.profile.startswith("preset:") else Path(args.profile).parent
    for rung in RUNGS:
        if rung not in wanted:
            continue
        if not on[rung]:
            say(f"{TITLES[rung]}: skipped (the profile does not configure this lever)")
            entries.append({"rung": rung, "status": "skipped", "reason": "not configured in the profile"})
            continue
        rdoc = rung_document(doc, rung, frozenset(failed), base_dir, frozenset(wanted))
        rung_file = out / "rungs" / f"{rung}.yaml"
        rung_file.write_text(f"# ladder rung {TITLES[rung]} of {args.profile}\n" + dump_yaml(rdoc))
        lp = validate_document(load_yaml(rung_file.read_text(), str(rung_file)), str(rung_file))
        prev = state.get(rung)
        if prev and prev.get("status") == "failed" and prev.get("profile_hash") == lp.digest:
            say(f"{TITLES[rung]}: failed earlier (resume): {prev.get('reason')}")
            entries.append(prev)
            failed.add(rung)
            continue
        if prev and prev.get("status") == "done" and prev.get("profile_hash") == lp.digest:
            say(f"{TITLES[rung]}: done earlier (resume), {prev['results']}")
            entries.append(prev)
            continue
        say(f"{TITLES[rung]}: starting ({args.runtime})")
        port = args.port or (_free_port() if args.runtime == "local" else None)
        opts = UpOptions(runtime=args.runtime, port=port, timeout=args.timeout, replace=True)
        entry: dict[str, Any] = {"rung": rung, "profile": str(rung_file), "profile_hash": lp.digest}
        backend = get_backend(args.runtime)
        try:
            started = up(str(rung_file), opts, lambda phase, t: None)
            entry["start_s"] = started.timings.get("server_start_s")
            endpoint = started.endpoint.removesuffix("/v1")
            results = []
            problems = []
            with contextlib.ExitStack() as stack:
                target = endpoint
                if rdoc.get("prompt_cache", {}).get("enabled"):
                    target = stack.enter_context(prompt_cache_proxy(endpoint, lp))
                for i in range(args.repeat):
                    label = TITLES[rung] + (f" #{i + 1}" if args.repeat > 1 else "")
                    bench = BenchArgs(
                        target=target,
                        workload=args.workload,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        max_tokens=args.max_tokens,
                        seed=args.seed,
                        model=lp.profile.model.served_name or None,
                        label=label,
                        duplicate_share=args.duplicate_share,
                        warmup=args.warmup,
                        metrics_url=endpoint,
                    )
                    result = run_bench(bench)
                    result["config"].update(
                        {
                            "profile": lp.profile.name,
                            "profile_hash": lp.digest,
                            "rung": rung,
                            "vllm_version": lp.profile.vllm.version,
                        }
                    )
                    if target != endpoint:
                        result["prompt_cache"] = _proxy_stats(target)
                    path = out / f"{rung}{'' if args.repeat == 1 else f'-{i + 1}'}.json"
                    write_result(result, str(path))
                    results.append(str(path))
                    problem = error_rate_problem(result, args.max_error_rate)
                    if problem:
                        problems.append((problem, result.get("error_samples", [])))
            if problems:  # measured, but too many requests failed: its figures are not the lever's
                problem, samples = problems[0]
                entry.update(
                    {
                        "status": "failed",
                        "reason": problem.splitlines()[0].removesuffix("; first distinct errors:"),
                        "detail": problem,
                        "error_samples": samples,
                        "results": results,
                        "error_rate": True,
                    }
                )
                failed.add(rung)
                say(f"{TITLES[rung]}: FAILED: {problem}")
            else:
                entry.update({"status": "done", "results": results})
                say(f"{TITLES[rung]}: measured -> {', '.join(results)}")
        except KeyboardInterrupt:
            backend.stop(lp.profile.name)
            raise
        except VllmtuneError as exc:
            reason = str(exc).splitlines()
            short = next((line for line in reason if line.startswith("reason:")), reason[0])
            entry.update({"status": "failed", "reason": short, "detail": "\n".join(reason[-8:])})
            failed.add(rung)
            say(f"{TITLES[rung]}: FAILED to run ({short}); the ladder goes on")
        finally:
            with contextlib.suppress(VllmtuneError):
                backend.stop(lp.profile.name)
        entries.append(entry)
        state[rung] = entry
        _state_path(out).write_text(json.dumps(state, indent=2))
    return finish(args, entries, out)


def _proxy_stats(url: str) -> dict[str, Any]:
    from vllmtune.cache.command import stats

    try:
        return stats(url)
    except VllmtuneError:
        return {}


def finish(args: LadderArgs, entries: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Table, markdown report, chart and ladder.json from the rungs' results."""
    from vllmtune.bench import report

    done = [e for e in entries if e.get("status") == "done"]
    if not done:
        raise LadderError("no rung could be measured; see the reasons above")  # (say() printed them)
    results = []
    for e in done:
        runs = [report.load_result(p) for p in e["results"]]
        merged = runs[0]
        if len(runs) > 1:  # --repeat: keep the median run, record the spread
            runs.sort(key=lambda r: r["summary"]["e2e_ms"].get("p50", 0))
            merged = runs[len(runs) // 2]
            p50s = [r["summary"]["e2e_ms"].get("p50", 0) for r in runs]
            merged["spread"] = {"p50_ms_min": min(p50s), "p50_ms_max": max(p50s), "repeats": len(runs)}
        merged["label"] = TITLES[e["rung"]]
        results.append(merged)
    rows = report.compare_rows(results, args.gpu_hour_usd)
    for row, res in zip(rows, results, strict=True):
        sm = res.get("server_metrics", {})
        n = sm.get("vllm:time_to_first_token_seconds_count")
        row["server_ttft_mean_ms"] = (sm["vllm:time_to_first_token_seconds_sum"] / n * 1000) if n else None
        pc = res.get("prompt_cache") or {}
        row["prompt_cache_hit_ratio"] = pc.get("hit_ratio")
        if "spread" in res:
            row["spread"] = res["spread"]
    measured = iter(rows)
    table_rows = [  # in rung order: a failed rung where it stands
        next(measured)
        if e.get("status") == "done"
        else {"config": TITLES[e["rung"]], "failed": True, "reason": e.get("reason", "")}
        for e in entries
        if e.get("status") in ("done", "failed")
    ]
    lines = ladder_table(table_rows)
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
        report.plot(results, rows, str(out / "ladder.png"))
    summary = {
        "profile": args.profile,
        "rows": table_rows,
        "rungs": entries,
        "table_markdown": lines,
        "failed_rungs": [e["rung"] for e in entries if e.get("status") == "failed"],
        "error_rate_failures": [e["rung"] for e in entries if e.get("error_rate")],
    }
    (out / "ladder.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def ladder_table(rows: list[dict[str, Any]]) -> list[str]:
    """| Config | p50 ms | p99 ms | TTFT p50 | Tokens/call | Quality | Relative cost | (+ cache hits, server TTFT)"""
    head = [
        "Config",
        "p50 ms",
        "p99 ms",
        "TTFT p50",
        "Server TTFT",
        "Tokens/call",
        "Cache hits",
        "Quality",
        "Relative cost",
    ]
    costs = any("usd_per_1k_requests" in r for r in rows)  # --gpu-hour-usd given
    if costs:
        head += ["$/1k req", "$/1M out tok"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]

    def f(v: Any, d: int = 0, suffix: str = "") -> str:
        return "-" if v is None else f"{v:,.{d}f}{suffix}"

    for r in rows:
        if r.get("failed"):  # a rung that did not start or whose requests failed: no figures to show
            cells = [f"{r['config']} (FAILED)", *("-" for _ in head[1:])]
            out.append("| " + " | ".join(cells) + " |")
            continue
        q = "-" if r.get("quality") is None else f"{r['quality']:.3f}" + (" (!)" if r.get("quality_regression") else "")
        hits = "-" if r.get("prompt_cache_hit_ratio") is None else f"{r['prompt_cache_hit_ratio']:.0%}"
        out.append(
            "| "
            + " | ".join(
                [
                    r["config"],
                    f(r["p50_ms"]),
                    f(r["p99_ms"]),
                    f(r["ttft_p50_ms"]),
                    f(r.get("server_ttft_mean_ms")),
                    f(r["tokens_per_call"], 1),
                    hits,
                    q,
                    f(r["relative_cost"], 2, "x"),
                ]
                + ([f(r.get("usd_per_1k_requests"), 4), f(r.get("usd_per_1m_output_tokens"), 2)] if costs else [])
            )
            + " |"
        )
    return out
