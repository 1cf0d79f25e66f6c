"""``vllmtune ladder``: apply the levers in order, measure after each, keep what pays.

Rungs (cumulative): baseline (every lever off) -> + prompt cache -> + prefix caching ->
+ batching -> + quantization -> + speculative decoding. Each rung is a full profile written
to ``OUT/rungs/<rung>.yaml`` (deployable as is), brought up, benchmarked with the same seeded
workload, and torn down. ``OUT/state.json`` makes a crashed or interrupted ladder resumable.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllmtune.errors import VllmtuneError
from vllmtune.ladder.args import LadderArgs
from vllmtune.ladder.rungs import (
    RUNGS,
    TITLES,
    LadderError,
    configured,
    free_port,
    parse_rungs,
    prompt_cache_proxy,
    rung_document,
)
from vllmtune.ladder.table import finish, operating_rate
from vllmtune.profile.loader import load_profile, validate_document
from vllmtune.profile.yamlio import dump_yaml, load_yaml

__all__ = ["LadderArgs", "LadderError", "run_ladder"]


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
    if args.slo is not None:  # the user's own input first: a bad --slo should not wait on a server
        from vllmtune.bench.slo import parse_slo

        parse_slo(args.slo)
        if args.max_trials < 2:
            raise LadderError(f"--max-trials must be at least 2 (a closed-loop run, then rates), not {args.max_trials}")
    source = load_profile(args.profile)
    doc = source.located.value
    on = configured(doc)
    picked = parse_rungs(args.rungs) if args.rungs else None
    wanted = ["baseline", *(picked if picked is not None else RUNGS[1:])]
    out = Path(args.out)
    (out / "rungs").mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    if args.resume and _state_path(out).exists():
        state = json.loads(_state_path(out).read_text())
    entries: dict[str, dict[str, Any]] = {}
    search: dict[str, Any] | None = state.get("_rate_search")
    if (search or {}).get("slo") != args.slo and any(k in state for k in RUNGS):
        raise LadderError(
            f"--resume: this ladder was measured with --slo {(search or {}).get('slo')}, not {args.slo}",
            hint="resume with the same --slo, or start again without --resume (or with another -o)",
        )
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
            port = args.port or (free_port() if args.runtime == "local" else None)
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
                if args.slo and search is None:  # the operating point: found on the baseline, first
                    search = find_operating_point(args, endpoint, model, say)
                    state["_rate_search"] = search
                rate = operating_rate(search) if search is not None else None
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
                        rate=rate,
                        slo=args.slo,
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
                if args.slo and search is None:  # no operating point: nothing the other rungs can run at
                    raise
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
    return finish(args, ordered, out, search)


def find_operating_point(
    args: LadderArgs, endpoint: str, model: str | None, say: Callable[[str], None]
) -> dict[str, Any]:
    """bench --find-max-rate against the baseline's server (its own endpoint: the prompt cache is
    off there): the trials and the highest rate meeting --slo, which every rung then runs at."""
    from vllmtune.bench.command import BenchArgs, find_max_rate

    bench = BenchArgs(
        target=endpoint,
        workload=args.workload,
        requests=args.requests,
        concurrency=args.concurrency,
        slo=args.slo,
        max_tokens=args.max_tokens,
        seed=args.seed,
        model=model,
        duplicate_share=args.duplicate_share,
    )
    say(f"baseline: finding the highest request rate meeting --slo {args.slo} (at most {args.max_trials} runs)")
    found = find_max_rate(bench, args.max_trials, say=lambda msg: say(f"baseline: {msg}"))
    search = {"find_max_rate": found["find_max_rate"], "slo": args.slo}
    rate = operating_rate(search)  # raises when no rate met the SLO
    say(f"baseline: operating point {rate:,.2f} requests/s")
    return search


def _proxy_stats(url: str) -> dict[str, Any]:
    from vllmtune.cache.command import stats

    try:
        return stats(url)
    except VllmtuneError:
        return {}
