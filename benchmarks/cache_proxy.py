"""Prompt-cache proxy speed on loopback (issue 5 goals: memory hits >= 10,000 req/s and p50 <=
0.1 ms at concurrency 1; a miss adds <= 0.5 ms p50 over calling the upstream directly; Redis
hits within 2x of memory hits). Bounded: fixed request counts.

    python benchmarks/cache_proxy.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

from vllmtune.bench.http import Connection

ROOT = Path(__file__).resolve().parent.parent


async def timed_calls(port: int, bodies: list[bytes], concurrency: int) -> list[float]:
    """Latency (ms) of each request, `concurrency` keep-alive connections."""
    it = iter(bodies)
    out: list[float] = []

    async def worker() -> None:
        conn = Connection("127.0.0.1", port)
        for body in it:
            t = time.perf_counter()
            resp = await conn.send("POST", "/v1/chat/completions", body, b"Content-Type: application/json\r\n")
            await conn.body(resp)
            out.append((time.perf_counter() - t) * 1000)
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q / 100))]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait(port: int) -> None:
    from vllmtune.bench.http import get

    for _ in range(100):
        if (await get(f"http://127.0.0.1:{port}/health"))[0] or (await get(f"http://127.0.0.1:{port}/cache/stats"))[0]:
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


async def run_with(backend: str, n: int, redis_url: str | None = None) -> dict[str, float]:
    """Stub and proxy each in their own process (as deployed); this process is the client."""
    import sys

    up, port = _free_port(), _free_port()
    stub = subprocess.Popen([sys.executable, "-m", "vllmtune.bench.stub", "--port", str(up), "--seconds", "300"],
                            stdout=subprocess.DEVNULL)
    cmd = [sys.executable, "-m", "vllmtune.cache", "--upstream", f"http://127.0.0.1:{up}", "--port", str(port),
           "--backend", backend]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    proxy = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        await _wait(up)
        await _wait(port)
        hit = json.dumps({"model": "stub-model", "messages": [{"role": "user", "content": "same question"}],
                          "temperature": 0, "max_tokens": 16}).encode()
        misses = [json.dumps({"model": "stub-model", "messages": [{"role": "user", "content": f"question {i}"}],
                              "temperature": 0, "max_tokens": 16}).encode() for i in range(n // 4)]
        await timed_calls(port, [hit] * 500, 1)  # warm up, and store the hit entry
        t = time.perf_counter()
        lat = await timed_calls(port, [hit] * n, 1)
        hits_rps = n / (time.perf_counter() - t)
        t = time.perf_counter()
        await timed_calls(port, [hit] * n, 16)
        hits16_rps = n / (time.perf_counter() - t)
        direct = await timed_calls(up, misses, 1)
        proxied = await timed_calls(port, [m.replace(b"question", b"fresh question") for m in misses], 1)
    finally:
        proxy.terminate()
        stub.terminate()
        proxy.wait(10)
        stub.wait(10)
    return {"hits_rps_c1": hits_rps, "hit_p50_ms": pct(lat, 50), "hit_p99_ms": pct(lat, 99),
            "hits_rps_c16": hits16_rps, "direct_p50_ms": pct(direct, 50), "miss_p50_ms": pct(proxied, 50)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    a = ap.parse_args()
    mem = asyncio.run(run_with("memory", a.requests))
    print(f"memory hits  c=1 : {mem['hits_rps_c1']:8,.0f} req/s  p50 {mem['hit_p50_ms']:.3f} ms  p99 "
          f"{mem['hit_p99_ms']:.3f} ms  (goal >= 10,000 req/s, p50 <= 0.1 ms)")
    print(f"memory hits  c=16: {mem['hits_rps_c16']:8,.0f} req/s")
    print(f"miss overhead    : proxied p50 {mem['miss_p50_ms']:.3f} ms vs direct {mem['direct_p50_ms']:.3f} ms = "
          f"+{mem['miss_p50_ms'] - mem['direct_p50_ms']:.3f} ms (goal <= 0.5 ms)")
    if shutil.which("redis-server"):
        out = subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh")], capture_output=True, text=True)
        url = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
        try:
            red = asyncio.run(run_with("redis", a.requests // 2, url))
            print(f"redis hits   c=1 : {red['hits_rps_c1']:8,.0f} req/s  p50 {red['hit_p50_ms']:.3f} ms  "
                  f"= {mem['hits_rps_c1'] / red['hits_rps_c1']:.2f}x slower than memory (goal <= 2x)")
        finally:
            subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh"), "--stop",
                            url.rsplit(":", 1)[1].split("/")[0]], capture_output=True)
    else:
        print("redis hits       : skipped (no redis-server)")


if __name__ == "__main__":
    main()
