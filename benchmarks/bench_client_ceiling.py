"""How fast can `vllmtune bench`'s client go? Starts the instant stub server in another process and
compares, for 1k and 4k streamed 16-token requests at c=16 (issue 17 goal: both >= 0.85x):

- the request rate `vllmtune bench` itself reports, vs a lean aiohttp client's;
- the whole `vllmtune bench` process (start to exit, statistics included) vs the whole lean client's.

    python benchmarks/bench_client_ceiling.py [--requests 1000,4000] [--issue4]

``--issue4`` also runs the in-process ceilings of issue 4 (>= 4,000 req/s non-streaming at c=16 and
>= 2,500 req/s streaming 16-token answers at c=64 on a 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = {
    "model": "stub-model",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 16,
    "stream": True,
    "stream_options": {"include_usage": True, "continuous_usage_stats": True},
}


async def lean(url: str, n: int, c: int) -> tuple[int, float]:
    """The lean client: aiohttp, c workers, one streamed request at a time each; (ok, seconds)."""
    import aiohttp

    left = iter(range(n))
    ok = 0
    body = json.dumps(BODY).encode()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for _ in left:
            async with session.post(
                url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                done = False
                async for line in r.content:
                    if line.startswith(b"data: [DONE]"):
                        done = True
                ok += r.status == 200 and done

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        t = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(c)))
        return ok, time.perf_counter() - t


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": "/nonexistent-cache"}
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=ROOT).stdout
    return time.perf_counter() - t, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def issue4(port: int, requests: int) -> None:
    from vllmtune.bench import runner
    from vllmtune.bench.workloads import Case

    case = Case(messages=(("user", "hi"),), max_tokens=16)
    for label, c, stream, goal in (
        ("non-streaming", 16, False, 4000),
        ("non-streaming", 64, False, None),
        ("streaming 16 tok", 16, True, None),
        ("streaming 16 tok", 64, True, 2500),
    ):
        n = requests if not stream else requests // 2
        opts = runner.Options(
            url=f"http://127.0.0.1:{port}/v1", model="stub-model", cases=[case] * n, concurrency=c, stream=stream
        )
        records, wall = asyncio.run(runner.run(opts))
        ok = sum(r.error is None for r in records)
        verdict = "" if goal is None else (f"  goal >= {goal:,}: " + ("met" if ok / wall >= goal else "MISSED"))
        print(f"{label:<17} c={c:<3} {ok:>6} ok in {wall:5.2f} s: {ok / wall:7,.0f} req/s{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", default="1000,4000", help="comma-separated request counts")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--issue4", action="store_true", help="also the in-process ceilings of issue 4")
    ap.add_argument("--lean", nargs=3, metavar=("URL", "N", "C"), help=argparse.SUPPRESS)  # the lean client
    a = ap.parse_args()
    if a.lean:
        ok, secs = asyncio.run(lean(a.lean[0], int(a.lean[1]), int(a.lean[2])))
        print(json.dumps({"ok": ok, "seconds": secs}))
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stub = subprocess.Popen(
        [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--tokens", "16", "--seconds", "900"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert stub.stdout is not None
        stub.stdout.readline()
        c = a.concurrency
        print(f"streamed 16-token requests at c={c} against the instant stub (higher ratio = vllmtune better)")
        print(f"{'requests':>8}  {'lean req/s':>10}  {'bench req/s':>11}  {'rate':>5}  {'lean proc s':>11}  "
              f"{'bench proc s':>12}  {'proc':>5}")  # fmt: skip
        worst = 1e9
        # the same request as the lean client's, as a user's JSONL workload (one case, cycled)
        cases = Path(tempfile.mkdtemp()) / "hi.jsonl"
        cases.write_text(json.dumps({"input": "hi", "max_tokens": 16}) + "\n")
        for n in (int(x) for x in a.requests.split(",")):
            lean_s, lean_out = timed([sys.executable, __file__, "--lean", url, str(n), str(c)])
            lean_fig = json.loads(lean_out)
            argv = ["bench", url, "-w", str(cases), "-n", str(n), "-c", str(c), "--output", "json"]
            bench_s, bench_out = timed([sys.executable, "-m", "vllmtune.cli", *argv])
            summary = json.loads(bench_out)["summary"]
            assert lean_fig["ok"] == n and summary["requests_ok"] == n, (lean_fig, summary["requests_ok"])
            lean_rate = n / lean_fig["seconds"]
            rate_x = summary["request_throughput"] / lean_rate
            proc_x = lean_s / bench_s
            worst = min(worst, rate_x, proc_x)
            print(f"{n:>8}  {lean_rate:>10,.0f}  {summary['request_throughput']:>11,.0f}  {rate_x:>4.2f}x  "
                  f"{lean_s:>11.2f}  {bench_s:>12.2f}  {proc_x:>4.2f}x")  # fmt: skip
        print("goal: both >= 0.85x: " + ("met" if worst >= 0.85 else "MISSED"))
        if a.issue4:
            issue4(port, 20000)
    finally:
        stub.terminate()
        stub.wait(5)


if __name__ == "__main__":
    main()
