"""``vllmtune bench`` and ``vllmtune compare``: glue between the CLI and the load generator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtune.bench import report, runner, slo, workloads
from vllmtune.bench.headers import name_problem
from vllmtune.bench.http import Endpoint, get
from vllmtune.bench.metrics import Scrape
from vllmtune.errors import BenchError as BenchError
from vllmtune.util.argspec import arg, opt


@dataclass
class BenchArgs:
    """Everything ``vllmtune bench`` takes (the one declaration of its options)."""

    target: str = arg(
        default="", help="http://HOST:PORT[/v1] of any OpenAI-compatible server, or a profile.", metavar="URL|PROFILE"
    )
    workload: str = opt(
        "--workload",
        "-w",
        default="shared-prefix",
        help=workloads.help_text(),
    )
    requests: int = opt("--requests", "-n", default=100, help="Measured requests (after warm-up).")
    concurrency: int = opt("--concurrency", "-c", default=16, help="Requests in flight at most.")
    rate: float | None = opt(
        "--rate", default=None, help="Open loop: requests per second (default: closed loop at --concurrency)."
    )
    poisson: bool = opt("--poisson", default=False, help="Poisson arrivals at --rate (default constant).")
    duration: float | None = opt("--duration", default=None, help="Stop sending after this many seconds.")
    warmup: int = opt("--warmup", default=0, help="Requests sent first and left out of the figures.")
    stream: bool = opt(
        "--stream",
        default=True,
        negative="--no-stream",
        help="Streaming (measures TTFT and inter-token latency) or not.",
    )
    api: str = opt(
        "--api",
        default="chat",
        choices=("chat", "completions"),
        help="chat (/v1/chat/completions) or completions (/v1/completions).",
    )
    max_tokens: int | None = opt(
        "--max-tokens", default=None, help="Output budget per request (default: the workload's)."
    )
    seed: int = opt("--seed", default=0, help="Workload and arrival seed: same seed, same requests.")
    model: str | None = opt(
        "--model", default=None, help="Model name (default: the profile's served name, or the server's first)."
    )
    label: str | None = opt("--label", "-l", default=None, help="Name of this config in compare tables.")
    duplicate_share: float = opt(
        "--duplicate-share", default=0.5, help="duplicates workload: share of repeated requests."
    )
    out: str | None = opt("--out", "-o", default=None, help="Write the result JSON here (for vllmtune compare).")
    max_error_rate: float = opt(
        "--max-error-rate", default=0.05, help="Exit 1 when more than this share of requests fails (0.05 = 5%)."
    )
    calibrate: bool = opt(
        "--calibrate", default=False, help="Measure this client's own ceiling against an instant stub, and remember it."
    )
    burstiness: float | None = opt(
        "--burstiness",
        default=None,
        help="Gamma arrivals at --rate with this shape (vllm bench serve's): 1 = Poisson, below 1 burstier.",
    )
    save_requests: str | None = opt(
        "--save-requests",
        default=None,
        help="Write one JSON line per measured request here (times, tokens, errors).",
    )
    find_max_rate: bool = opt(
        "--find-max-rate",
        default=False,
        help="Search the highest request rate meeting --slo: a closed-loop run, then bisection (--max-trials).",
    )
    max_trials: int = opt("--max-trials", default=6, help="--find-max-rate: runs at most.")
    slo: str | None = opt(
        "--slo",
        default=None,
        help="Service-level objectives, e.g. ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s (also tpot): reports "
        "goodput, the requests/s meeting every bound (vllm bench serve --goodput), and whether the run meets them.",
    )
    ignore_eos: bool = opt(
        "--ignore-eos",
        default=False,
        help="Ask vLLM to ignore end-of-sequence: every answer runs to its max_tokens.",
    )
    session_header: str | None = opt(
        "--session-header",
        default=None,
        metavar="NAME",
        help="Send each request's user (a chat JSONL record's \"user\") as this HTTP header too, e.g. "
        "x-tenant-id: what vllm-router's consistent_hash keys on. The name is an RFC 9110 token; each value "
        "must be printable ASCII (spaces or tabs inside only): a workload whose user is not is refused before "
        "any request (non-ASCII too: RFC 9110 allows it only as obs-text, which servers read as Latin-1, so a "
        "UTF-8 user would not arrive as written).",
    )
    # set by callers, not on the command line
    timeout: float = 600.0
    metrics_url: str | None = None  # scrape vLLM's /metrics here (when the target is a proxy in front of it)


@dataclass(frozen=True)
class CompareArgs:
    """Everything ``vllmtune compare`` takes."""

    results: list[str] = arg(  # noqa: RUF009
        help="Result files from vllmtune bench -o; the first is the reference.", metavar="RESULT...", many=True
    )
    gpu_hour_usd: float | None = opt(
        "--gpu-hour-usd", default=None, help="GPU price per hour: adds $ per 1k requests and per 1M output tokens."
    )
    output: str = opt(
        "--output", default="text", choices=("text", "markdown", "csv", "json"), help="text, markdown, csv or json."
    )
    plot: str | None = opt("--plot", default=None, help="Write latency CDFs and the cost chart to this PNG.")
    quality_drop: float = opt(
        "--quality-drop", default=0.01, help="Flag a quality drop larger than this (0.01 = 1 point)."
    )
    strict: bool = opt(
        "--strict", default=False, help="Refuse (exit 1) results that ran different workloads, instead of warning."
    )


SESSION_HEADER_HINT = (
    "name the header the router reads, e.g. --session-header x-tenant-id (vllm-router's consistent_hash reads "
    "x-session-id, x-user-id, x-tenant-id, x-correlation-id, x-request-id or x-trace-id)"
)


def _ceiling_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vllmtune" / "bench-ceiling.json"


def known_ceiling() -> float | None:
    """The client ceiling measured by ``--calibrate`` on this machine, if any."""
    try:
        return float(json.loads(_ceiling_file().read_text())["non_streaming_c16_req_s"])
    except (OSError, ValueError, KeyError):
        return None


def _resolve_target(args: BenchArgs) -> tuple[str, str | None, dict[str, Any]]:
    """(endpoint URL, model, meta) from a URL or a profile."""
    t = args.target
    if t.startswith(("http://", "https://")):
        if t.startswith("https://"):
            raise BenchError(
                "https endpoints are not supported by the benchmark client yet; use http:// (or a local port-forward)"
            )
        url = t.rstrip("/")
        return (url if url.endswith("/v1") else url + "/v1"), args.model, {}
    from vllmtune.plan import load_plan
    from vllmtune.runtime.manage import running_port

    plan = load_plan(t)
    meta = {"profile": plan.name, "profile_hash": plan.profile_hash, "vllm_version": plan.vllm_version}
    port = running_port(plan.name) or plan.port  # `up --port N` may have moved it
    return f"http://127.0.0.1:{port}/v1", args.model or plan.served_name, meta


def run_bench(args: BenchArgs, progress: Any = None) -> dict[str, Any]:
    """Run one benchmark and return the result JSON (partial on Ctrl-C)."""
    # the user's own input first: a bad --slo or workload file should not wait on a server
    objectives = slo.parse_slo(args.slo) if args.slo is not None else ()
    slo.check_streaming(objectives, args.stream)
    if args.burstiness is not None:
        if not args.rate:
            raise BenchError("--burstiness shapes the arrivals at --rate: give --rate too")
        if not (args.burstiness > 0 and args.burstiness != float("inf")):
            raise BenchError(f"--burstiness must be a positive number (1 = Poisson), not {args.burstiness:g}")
    if args.session_header is not None and (problem := name_problem(args.session_header)):
        raise BenchError(problem, hint=SESSION_HEADER_HINT)
    url, model, meta = _resolve_target(args)
    cases, identity = workloads.build_with_meta(
        args.workload, args.requests, args.seed, args.max_tokens, args.duplicate_share, args.session_header
    )
    if args.session_header and not any(c.user is not None for c in cases):
        raise BenchError(
            f"--session-header {args.session_header} sends each request's user, but no request of workload "
            f"{args.workload} names a user",
            hint='give a chat JSONL workload whose records carry "user" (OpenAI\'s end-user id)',
        )
    meta.update(identity)
    ep = Endpoint(url)
    info = asyncio.run(runner.server_info(ep.base, ep.prefix))
    if not info.get("reachable"):
        raise BenchError(f"nothing answers at {ep.base}: start the server (vllmtune up PROFILE -d) or check the URL")
    served = info.get("models") or []
    if model is None:
        if not served:
            raise BenchError(f"{ep.base}{ep.prefix}/models lists no model; give --model")
        model = served[0]
    elif served and model not in served:
        raise BenchError(f"the server serves {', '.join(served)}, not {model!r}; use --model {served[0]}")
    if info.get("vllm_version") and "vllm_version" not in meta:
        meta["vllm_version"] = info["vllm_version"]
    opts = runner.Options(
        url=url,
        model=model,
        cases=cases,
        concurrency=args.concurrency,
        rate=args.rate,
        poisson=args.poisson,
        burstiness=args.burstiness,
        duration=args.duration,
        warmup=args.warmup,
        stream=args.stream,
        api=args.api,
        api_key=os.environ.get("VLLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        seed=args.seed,
        timeout=args.timeout,
        ignore_eos=args.ignore_eos,
        session_header=args.session_header,
    )

    metrics_base = (args.metrics_url or ep.base).rstrip("/")

    async def main() -> tuple[list[runner.Record], float, Scrape, Scrape, bool]:
        scraped = [await runner.scrape_metrics(metrics_base)] if not opts.warmup else []

        async def after_warmup() -> None:  # the deltas start after the warm-up requests
            scraped.append(await runner.scrape_metrics(metrics_base))

        task = asyncio.ensure_future(runner.run(opts, progress, after_warmup=after_warmup))
        partial = False
        try:
            records, wall = await asyncio.shield(task)
        except (KeyboardInterrupt, asyncio.CancelledError):
            task.cancel()
            records, wall = await task
            partial = True
        after = await runner.scrape_metrics(metrics_base)
        before = scraped[0] if scraped else after  # stopped in the warm-up: nothing measured
        return records, wall, before, after, partial

    records, wall, before, after, partial = asyncio.run(main())
    if args.save_requests:
        from vllmtune.render import write_files

        lines = "".join(json.dumps(line) + "\n" for line in report.request_lines(records))
        write_files({Path(args.save_requests): lines})
    label = args.label or meta.get("profile") or model
    return report.build_result(
        opts,
        records,
        wall,
        label=str(label),
        workload=args.workload,
        before=before,
        after=after,
        meta=meta,
        partial=partial,
        ceiling=known_ceiling(),
        slo=objectives,
    )


def find_max_rate(args: BenchArgs, max_trials: int = 6, say: Any = None) -> dict[str, Any]:
    """The highest request rate whose run meets the SLO, by bounded bisection: a closed-loop run
    first (its throughput is the top of the range: no rate above what the server completes can be
    held), then runs at the middle of [highest met, lowest not met]. A trial meets when its SLO is
    met and the client held the rate (median send lag <= 50 ms). Returns the best trial's result
    (or the last one's) with ``find_max_rate``: every trial, and ``max_rate`` (None: none met)."""
    if not args.slo:
        raise BenchError("--find-max-rate searches the highest rate meeting an SLO: give --slo too")
    if max_trials < 2:
        raise BenchError("--max-trials must be at least 2 (a closed-loop run, then rates)")
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    last: dict[str, Any] = {}

    def trial(rate: float | None) -> bool:
        nonlocal best, last
        scratch = f"{args.save_requests}.trial" if args.save_requests else None
        one = BenchArgs(**{**args.__dict__, "rate": rate, "save_requests": scratch})
        res = run_bench(one)
        held = rate is None or res["summary"].get("schedule_lag_p50_ms", 0.0) <= 50
        met = bool(res["slo"]["met"]) and held
        trials.append(
            {
                "rate": rate,
                "request_throughput": res["summary"]["request_throughput"],
                "goodput": res["slo"]["goodput"],
                "slo_met": res["slo"]["met"],
                "rate_held": held,
                "met": met,
            }
        )
        if say:
            what = "closed loop" if rate is None else f"rate {rate:,.2f}/s"
            say(
                f"trial {len(trials)}: {what}: {res['summary']['request_throughput']:,.2f} req/s, goodput "
                f"{res['slo']['goodput']:,.2f} req/s, "
                + ("meets the SLO" if met else "misses the SLO")
                + ("" if held else " (the client could not hold the rate)")
            )
        last = res
        if met and (best is None or (rate or res["summary"]["request_throughput"]) >= best["_rate"]):
            best = {**res, "_rate": rate or res["summary"]["request_throughput"]}
            if scratch:  # --save-requests keeps the best trial's requests
                os.replace(scratch, str(args.save_requests))
        elif scratch and best is None:
            os.replace(scratch, str(args.save_requests))  # until one meets: the latest
        return met

    if trial(None):  # the server meets the SLO at full concurrency: its throughput is the answer
        lo, hi = trials[0]["request_throughput"], trials[0]["request_throughput"]
    else:
        lo, hi = 0.0, trials[0]["request_throughput"]
        while len(trials) < max_trials and hi > 0:
            mid = (lo + hi) / 2
            if trial(mid):
                lo = mid
            else:
                hi = mid
    if args.save_requests:
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{args.save_requests}.trial")
    out = dict(best or last)
    out.pop("_rate", None)
    out["find_max_rate"] = {
        "max_rate": lo if best is not None else None,
        "trials": trials,
        "rule": "closed loop first (its throughput bounds the range), then bisection; a trial meets when "
        "its SLO is met and the client held the rate (median send lag <= 50 ms)",
    }
    return out


CONTEXT_LENGTH = re.compile(r"maximum context length is (\d+) tokens")


def error_rate_problem(result: dict[str, Any], max_error_rate: float) -> str | None:
    """Why the run failed (too many errors, with what the server said), or None."""
    sent = result["summary"]["requests_sent"]
    failed = sum(result["errors"].values())
    if not sent or failed / sent <= max_error_rate:
        return None
    lines = [
        f"{failed} of {sent} requests failed ({failed / sent:.1%}, above --max-error-rate {max_error_rate:.1%}); "
        "first distinct errors:"
    ]
    for sample in result.get("error_samples", []):
        said = f": {sample['message']}" if sample["message"] else ""
        lines.append(f"  {sample['error']} ({sample['count']}x){said}")
    for sample in result.get("error_samples", []):
        m = CONTEXT_LENGTH.search(sample["message"])
        if m:
            lines.append(
                f"  (the server's max_model_len is {m.group(1)} tokens: shorten the workload's prompts and "
                "--max-tokens, or raise model.max_model_len)"
            )
            break
    return "\n".join(lines)


def calibrate(requests: int = 20000, concurrency: int = 16, stream_requests: int = 10000) -> dict[str, float]:
    """Measure this client's ceiling against an instant stub server in another process."""
    from vllmtune.util.net import free_port

    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--tokens", "16", "--seconds", "300"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stub.stdout is not None
        stub.stdout.readline()  # "stub listening on ..."
        deadline = time.monotonic() + 10
        while asyncio.run(get(f"http://127.0.0.1:{port}/health"))[0] != 200:
            if time.monotonic() > deadline:
                raise BenchError("the calibration stub did not start")
            time.sleep(0.05)
        out = {}
        for name, n, c, stream in (
            ("non_streaming_c16_req_s", requests, concurrency, False),
            ("streaming_c64_req_s", stream_requests, 64, True),
        ):
            cases = [workloads.Case(messages=(("user", "hi"),), max_tokens=16)]
            opts = runner.Options(
                url=f"http://127.0.0.1:{port}/v1",
                model="stub-model",
                cases=cases * n,
                concurrency=c,
                stream=stream,
                warmup=min(500, n // 10),
            )
            records, wall = asyncio.run(runner.run(opts))
            ok = sum(1 for r in records if r.error is None)
            out[name] = ok / wall
        out["measured_at"] = time.time()
    finally:
        stub.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            stub.wait(5)
    path = _ceiling_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return out


def write_result(result: dict[str, Any], path: str) -> None:
    """Write the result JSON (atomically)."""
    from vllmtune.render import write_files

    write_files({Path(path): json.dumps(result, indent=2, default=str) + "\n"})


def compare(
    paths: list[str],
    gpu_hour_usd: float | None,
    output: str,
    plot_path: str | None,
    quality_drop: float,
    strict: bool = False,
) -> tuple[str, list[str]]:
    """The comparison in the requested format, and warnings (results of different workloads;
    with ``strict`` that is an error)."""
    if not paths:
        raise BenchError("give at least one result file (vllmtune bench ... -o FILE)")
    results = [report.load_result(p) for p in paths]
    warnings = report.workload_warnings(results)
    if strict and warnings:
        raise report.CompareError(
            f"--strict: these results ran different workloads: {report.workload_mismatch(results)}\n"
            "  hint: run each config on the same --workload (file), --seed, -n and --session-header, or drop --strict"
        )
    rows = report.compare_rows(results, gpu_hour_usd, quality_drop)
    if plot_path:
        report.plot(results, rows, plot_path)
    if output == "json":
        data = {"rows": rows, "warnings": warnings, "definitions": report.DEFINITIONS}
        return json.dumps(data, indent=2, default=str), warnings
    if output == "csv":
        return report.rows_csv(rows), warnings
    return "\n".join(report.table_lines(rows, markdown=output == "markdown")), warnings
