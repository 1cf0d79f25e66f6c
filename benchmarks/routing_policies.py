"""Router policy round_robin vs cache_aware on two real vLLM CPU replicas (issue 21).

Two ``vllm serve`` processes of the tiny local model (~/.cache/vllmtune/tiny-llama) and the
pinned vllm-router in front of them; a multi-tenant workload: several long system prompts
(tenants), each request one tenant's prompt plus a unique question, the tenants interleaved.
For each policy (a fresh router, the same two servers, their prefix caches reset between runs):
server-reported prefix-cache hit tokens (the sum over both replicas of the
``vllm:prefix_cache_hits_total`` delta), which replica served how many requests
(``vllm:request_success_total`` deltas), and client TTFT p50 with a 95% bootstrap CI, plus the
CI of the p50 difference (vllmtune.bench.stats).

    python benchmarks/routing_policies.py [--tenants 8] [--requests 64] [--concurrency 4]
        [--order cyclic|shuffled] [--kv-blocks N] [--router-arg=--cache-threshold=0.3 ...]
        [--session-header x-tenant-id] [--dry-run]

``--no-users`` leaves out the OpenAI ``user`` field (by default each request names its tenant
there, as multi-tenant applications do). vllm-router 0.1.17's consistent_hash does not read that
field: it keys on a session header (x-session-id, x-user-id, x-tenant-id, x-correlation-id,
x-request-id, x-trace-id), else on a hash of the prompt. So when consistent_hash is among the
policies, every request also carries ``--session-header`` (default ``x-tenant-id``) with its
tenant's name, as ``vllmtune bench --session-header`` sends it: under every policy, so that each
policy gets the same requests (round_robin and cache_aware ignore it); ``--session-header ''``
sends none (consistent_hash then hashes prompts). ``--dry-run`` starts nothing and prints what
would be sent: the policies, the header and each tenant's value, the first requests' order. ``--order shuffled``
draws the tenants in a seeded random order (each tenant the same number of times); ``cyclic``
(tenant i % T) is the easy case in which round_robin with an even number of tenants happens to
partition them between two replicas. ``--kv-blocks N`` caps each replica's KV cache at N blocks
(vLLM's ``--num-gpu-blocks-override``), so that one replica cannot hold every tenant's prefix:
the situation production is in, where a replica's KV cache holds a share
of the tenants and round-robin makes every replica hold (and evict) all of them.

Needs the vLLM CPU venv (scripts/setup_vllm_cpu.sh), the tiny model
(scripts/make_tiny_model.py) and ``pip install vllm-router``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import free_port, stop
from vllmtune.bench import stats
from vllmtune.bench.headers import header_line, name_problem
from vllmtune.bench.runner import Options, run, scrape_metrics
from vllmtune.bench.workloads import shared_prefix
from vllmtune.profile.models import ROUTER_VERSION

HOME = Path(os.environ.get("VLLMTUNE_REAL_HOME", str(Path.home())))
VENV = Path(os.environ.get("VLLMTUNE_VLLM_VENV", str(HOME / ".cache/vllmtune/vllm-cpu-venv")))
MODEL = Path(os.environ.get("VLLMTUNE_TINY_MODEL", str(HOME / ".cache/vllmtune/tiny-llama")))
SERVED = "tiny-llama"


def wait_http(url: str, procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"{p.args!r} exited with {p.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:g} s")


# vLLM's CPU build allocates KV blocks of 128 tokens: the block size the router hashes KV events by
CPU_BLOCK_SIZE = 128


def kv_events_config(zmq_port: int) -> str:
    """vLLM's --kv-events-config: each stored/evicted block published on a ZMQ PUB socket bound
    to ``zmq_port`` (what vllm-router's kv_aware subscribes to with --kv-event-source). vLLM
    binds only a wildcard endpoint (``tcp://*:PORT``); to any other it connects, and then
    nothing listens where the router looks (vllm/distributed/kv_events.py _is_bind_endpoint)."""
    return json.dumps(
        {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": f"tcp://*:{zmq_port}",
         "topic": ""},
        separators=(",", ":"),
    )  # fmt: skip


def start_server(
    port: int, logdir: Path, kv_blocks: int | None, core: int | None, zmq_port: int | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env["VLLM_SERVER_DEV_MODE"] = "1"  # /reset_prefix_cache between the policies
    argv = [str(VENV / "bin" / "vllm"), "serve", str(MODEL), "--served-model-name", SERVED, "--port", str(port)]
    if core is not None:  # one core per replica, as one GPU each: unpinned, two CPU engines fight for every core
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(core)
        argv = ["taskset", "-c", str(core), *argv]
    argv += ["--host", "127.0.0.1", "--max-model-len", "4096", "--enable-prefix-caching"]
    if kv_blocks is not None:
        argv += ["--num-gpu-blocks-override", str(kv_blocks)]
    if zmq_port is not None:
        argv += ["--kv-events-config", kv_events_config(zmq_port)]
    log = open(logdir / f"vllm-{port}.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def kv_aware_args(workers: list[str], zmq_ports: list[int]) -> list[str]:
    """vllm-router's kv_aware inputs: each worker's KV event socket, the block size, the model."""
    out: list[str] = []
    for w, z in zip(workers, zmq_ports, strict=True):
        out += ["--kv-event-source", f"{w}=tcp://127.0.0.1:{z}"]
    return [*out, "--kv-event-block-size", str(CPU_BLOCK_SIZE), "--kv-event-model", SERVED]


def start_router(
    port: int, policy: str, workers: list[str], logdir: Path, extra: list[str], zmq_ports: list[int] | None = None
) -> subprocess.Popen[bytes]:
    router = shutil.which("vllm-router")
    if router is None:
        raise SystemExit(f"vllm-router is not installed: pip install vllm-router=={ROUTER_VERSION}")
    argv = [router, "--host", "127.0.0.1", "--port", str(port), "--policy", policy, "--worker-urls", *workers, *extra]
    env = dict(os.environ)
    if policy == "kv_aware" and zmq_ports is not None:
        # it tokenizes each prompt itself to find the blocks the events named: the model's tokenizer
        argv += kv_aware_args(workers, zmq_ports)
        env["VLLM_ROUTER_TOKENIZER"] = str(MODEL)
    log = open(logdir / f"router-{policy}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def reset_prefix_cache(base: str) -> None:
    req = urllib.request.Request(base + "/reset_prefix_cache", method="POST")
    with urllib.request.urlopen(req, timeout=30):
        pass


async def warm_up(workers: list[str], cases: list, api: str, header: str | None) -> None:  # type: ignore[type-arg]
    """A few requests straight to each server first: the first policy measured must not pay
    for the servers' first requests (the caches are reset afterwards)."""
    for w in workers:
        await run(Options(url=w, model=SERVED, cases=cases[:8], concurrency=4, api=api, session_header=header))


async def measure(
    router_base: str,
    workers: list[str],
    cases: list,  # type: ignore[type-arg]
    concurrency: int,
    api: str,
    header: str | None,
) -> dict:  # type: ignore[type-arg]
    before = [await scrape_metrics(w) for w in workers]
    opts = Options(url=router_base, model=SERVED, cases=cases, concurrency=concurrency, api=api, session_header=header)
    records, wall = await run(opts)
    after = [await scrape_metrics(w) for w in workers]

    def delta(name: str) -> list[float]:
        return [a.values.get(name, 0.0) - b.values.get(name, 0.0) for a, b in zip(after, before, strict=True)]

    ttft = [r.first_token - r.start for r in records if not r.error]
    return {
        "errors": sum(1 for r in records if r.error),
        "wall_s": round(wall, 2),
        "prefix_cache_hit_tokens": sum(delta("vllm:prefix_cache_hits_total")),
        "prefix_cache_query_tokens": sum(delta("vllm:prefix_cache_queries_total")),
        "requests_per_replica": delta("vllm:request_success_total"),
        "preemptions": sum(delta("vllm:num_preemptions_total")),  # a KV cache too small for the load
        "ttft_ms": {
            k: v for k, v in stats.summarize([t * 1000 for t in ttft]).items() if k in ("count", "p50", "p50_ci95")
        },
        "_ttft": ttft,
    }


def plan(args: argparse.Namespace, header: str | None, cases: list) -> dict:  # type: ignore[type-arg]
    """What a run would send (--dry-run): the header line of each tenant, the first requests' tenants."""
    tenants = sorted({c.user for c in cases if c.user is not None}, key=lambda u: int(u.rpartition("-")[2]))
    return {
        "policies": args.policies,
        "api": args.api,
        "requests": len(cases),
        "session_header": header,
        "header_lines": [header_line(header, t).decode("ascii").rstrip("\r\n") for t in tenants] if header else [],
        "first_tenants": [c.user for c in cases[:12]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenants", type=int, default=8, help="long system prompts, interleaved")
    ap.add_argument("--prefix-words", type=int, default=600)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--policies", nargs="+", default=["round_robin", "cache_aware", "consistent_hash"])
    ap.add_argument(
        "--no-users", dest="users", action="store_false", help="no OpenAI user field (consistent_hash hashes bodies)"
    )
    ap.add_argument("--order", choices=["cyclic", "shuffled"], default="shuffled")
    ap.add_argument("--kv-blocks", type=int, default=None, help="each replica's KV cache, in blocks")
    ap.add_argument("--router-arg", action="append", default=[], help="passed to vllm-router (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin each replica to its own core")
    ap.add_argument(
        "--api",
        choices=["chat", "completions"],
        default="completions",
        help="the router routes by prompt text on /v1/completions; on chat it sees no text (0.1.17)",
    )
    ap.add_argument(
        "--session-header",
        default="x-tenant-id",
        metavar="NAME",
        help="with consistent_hash among the policies, each request carries NAME: its tenant, under every "
        "policy (vllm-router's consistent_hash keys on it; '' sends none)",
    )
    ap.add_argument("--dry-run", action="store_true", help="start nothing: print what would be sent")
    ap.add_argument("--logs", default="/tmp/vllmtune-routing-bench")
    args = ap.parse_args()
    if args.session_header and (problem := name_problem(args.session_header)):
        raise SystemExit(f"error: {problem}")
    # the header only where a policy reads it; without users there is nothing to put in it
    header = args.session_header or None
    if "consistent_hash" not in args.policies or not args.users:
        header = None
    cases = shared_prefix(
        args.requests, seed=args.seed, prefixes=args.tenants, prefix_words=args.prefix_words, users=args.users
    )
    if args.order == "shuffled":
        random.Random(args.seed).shuffle(cases)
    if args.dry_run:
        print(json.dumps(plan(args, header, cases), indent=2))
        return
    logdir = Path(args.logs)
    logdir.mkdir(parents=True, exist_ok=True)
    ports = [free_port(), free_port()]
    workers = [f"http://127.0.0.1:{p}" for p in ports]
    cores = [i % (os.cpu_count() or 1) for i in range(len(ports))] if args.pin else [None] * len(ports)
    # kv_aware among the policies: every server publishes its KV events (the others ignore them)
    zmq_ports = [free_port() for _ in ports] if "kv_aware" in args.policies else None
    servers = [
        start_server(p, logdir, args.kv_blocks, c, zmq_ports[i] if zmq_ports else None)
        for i, (p, c) in enumerate(zip(ports, cores, strict=True))
    ]
    procs = list(servers)
    out: dict = {"router": f"vllm-router {ROUTER_VERSION}", "tenants": args.tenants, "requests": args.requests}  # type: ignore[type-arg]
    out.update(
        api=args.api,
        concurrency=args.concurrency,
        order=args.order,
        kv_blocks=args.kv_blocks,
        pinned=args.pin,
        router_args=args.router_arg,
        session_header=header,
    )
    try:
        for w in workers:
            wait_http(w + "/health", servers, 900)
        results = {}
        asyncio.run(warm_up(workers, cases, args.api, header))
        for policy in args.policies:
            for w in workers:
                reset_prefix_cache(w)
            port = free_port()
            router = start_router(port, policy, workers, logdir, args.router_arg, zmq_ports)
            procs.append(router)
            wait_http(f"http://127.0.0.1:{port}/v1/models", [router], 120)
            results[policy] = asyncio.run(
                measure(f"http://127.0.0.1:{port}", workers, cases, args.concurrency, args.api, header)
            )
            stop([router])
        rr = results.get("round_robin")
        for policy, r in results.items():
            if rr is None or policy == "round_robin":
                continue
            hits = rr["prefix_cache_hit_tokens"]
            r["hit_tokens_over_round_robin"] = r["prefix_cache_hit_tokens"] / hits if hits else None
            # this policy minus round_robin, ms: below 0 is this policy faster
            r["ttft_p50_diff_ms_ci95"] = [x * 1000 for x in stats.diff_ci(rr["_ttft"], r["_ttft"], q=50)]
        for r in results.values():
            r.pop("_ttft")
        out["results"] = results
    finally:
        stop(procs)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
