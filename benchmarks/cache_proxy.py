"""Prompt-cache proxy speed on loopback. Goals: memory hits >= 10,000 req/s and p50 <= 0.1 ms at
concurrency 1; a miss adds <= 0.5 ms p50 over calling the upstream directly; Redis hits within
2x of memory hits. Bounded: fixed request counts, every wait has a deadline.

The proxy's hit rate is compared with the ~90-line aiohttp prototype's twice: in separate runs,
and interleaved (both running, alternating rounds), which a shared machine's load drift cannot skew.

The stub upstream (``python -m vllmtune.bench.stub``) and the proxy (``python -m
vllmtune.cache``) each run in their own process, as deployed; this process is the client. At
concurrency 1 the client is a blocking socket (cheaper per request than any asyncio client, so
it measures the proxy, not itself); at concurrency 16 an asyncio.Protocol client.

    python benchmarks/cache_proxy.py [--requests 20000] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, free_port, proxy_cmd, stop, stub_cmd, wait_port

PATH = b"/v1/chat/completions"


def request(body: bytes) -> bytes:
    return (
        b"POST " + PATH + b" HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer bench\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


def chat(content: str) -> bytes:
    body = {
        "model": "stub-model",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": 16,
    }
    return json.dumps(body).encode()


def blocking_calls(port: int, reqs: list[bytes], deadline: float = 120.0) -> list[float]:
    """Latency (s) of each request over one keep-alive connection (Content-Length answers)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out: list[float] = []
    buf = b""
    stop = time.monotonic() + deadline
    try:
        for r in reqs:
            t = time.perf_counter()
            s.sendall(r)
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    i = buf[:end].lower().find(b"content-length:")
                    n = int(buf[i + 15 : buf.find(b"\r\n", i)])
                    if len(buf) >= end + 4 + n:
                        if not buf.startswith(b"HTTP/1.1 200"):
                            raise SystemExit(f"unexpected answer: {buf[:200]!r}")
                        buf = buf[end + 4 + n :]
                        break
                data = s.recv(65536)
                if not data:
                    raise SystemExit("connection closed")
                buf += data
            out.append(time.perf_counter() - t)
            if time.monotonic() > stop:
                raise SystemExit("deadline exceeded")
    finally:
        s.close()
    return out


class _Client(asyncio.Protocol):
    def __init__(self, reqs: list[bytes], done: asyncio.Future[None], lat: list[float]) -> None:
        self.reqs, self.done, self.lat = reqs, done, lat
        self.buf = b""
        self.t = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if not self.reqs:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.t = time.perf_counter()
        self.transport.write(self.reqs.pop())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        i = self.buf[:end].lower().find(b"content-length:")
        n = int(self.buf[i + 15 : self.buf.find(b"\r\n", i)])
        if len(self.buf) >= end + 4 + n:
            self.buf = self.buf[end + 4 + n :]
            self.lat.append(time.perf_counter() - self.t)
            self._send()


async def concurrent_calls(port: int, req: bytes, n: int, concurrency: int) -> tuple[float, list[float]]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    futs = []
    t = time.perf_counter()
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        futs.append(done)
        await loop.create_connection(lambda d=done: _Client([req] * (n // concurrency), d, lat), "127.0.0.1", port)
    await asyncio.wait_for(asyncio.gather(*futs), 120)
    return time.perf_counter() - t, lat


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q / 100))] * 1000


def measure(
    backend: str, n: int, redis_url: str | None = None, extra: tuple[str, ...] = (), prototype: bool = False
) -> dict[str, float]:
    up, port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        stub = subprocess.Popen(stub_cmd(up), stdout=subprocess.DEVNULL)
        procs.append(stub)
        cmd = proxy_cmd(up, port, "--backend", backend, *extra, *(["--redis-url", redis_url] if redis_url else []))
        if prototype:  # the ~90-line aiohttp prototype, same stub, same client
            cmd = [sys.executable, str(ROOT / "benchmarks/aiohttp_prototype.py"), "--upstream"]
            cmd += [f"http://127.0.0.1:{up}", "--port", str(port)]
        proxy = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        procs.append(proxy)
        wait_port(up, stub, "the stub")
        wait_port(port, proxy, "the proxy")
        hit = request(chat("same question"))
        blocking_calls(port, [hit] * 2000)  # warm up (and store the entry)
        t = time.perf_counter()
        lat = blocking_calls(port, [hit] * n)
        wall = time.perf_counter() - t
        wall16, lat16 = concurrent_calls_sync(port, hit, n, 16)
        m = n // 4
        direct = blocking_calls(up, [request(chat(f"direct question {i}")) for i in range(m)])
        proxied = blocking_calls(port, [request(chat(f"proxied question {i}")) for i in range(m)])
        return {
            "hits_rps_c1": n / wall,
            "hit_p50_ms": pct(lat, 50),
            "hit_p99_ms": pct(lat, 99),
            "hits_rps_c16": len(lat16) / wall16,
            "hit16_p50_ms": pct(lat16, 50),
            "hit16_p99_ms": pct(lat16, 99),
            "direct_p50_ms": pct(direct, 50),
            "miss_p50_ms": pct(proxied, 50),
        }
    finally:
        stop(procs)


def interleaved_hits(n: int, rounds: int = 5) -> list[tuple[float, float]]:
    """Memory-hit rates at c=1 of the proxy and of the prototype, (proxy, prototype) per round,
    measured in alternating rounds with both running in front of one stub: a change of load on a
    shared machine between two separate runs would otherwise show up as a ratio."""
    up, px, pt = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(stub_cmd(up), stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(proxy_cmd(up, px, "--backend", "memory"), stderr=subprocess.DEVNULL))
        proto = [sys.executable, str(ROOT / "benchmarks/aiohttp_prototype.py"), "--upstream", f"http://127.0.0.1:{up}"]
        procs.append(subprocess.Popen([*proto, "--port", str(pt)], stderr=subprocess.DEVNULL))
        for port, proc, what in zip((up, px, pt), procs, ("the stub", "the proxy", "the prototype"), strict=True):
            wait_port(port, proc, what)
        hit = request(chat("same question"))
        each = max(1, n // rounds)
        for port in (px, pt):
            blocking_calls(port, [hit] * 1000)  # warm up (and store the entry)
        out = []
        for _ in range(rounds):
            rates = []
            for port in (px, pt):
                t = time.perf_counter()
                blocking_calls(port, [hit] * each)
                rates.append(each / (time.perf_counter() - t))
            out.append((rates[0], rates[1]))
        return out
    finally:
        stop(procs)


def concurrent_calls_sync(port: int, req: bytes, n: int, concurrency: int) -> tuple[float, list[float]]:
    return asyncio.run(concurrent_calls(port, req, n, concurrency))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--no-redis", action="store_true")
    a = ap.parse_args()
    mem = measure("memory", a.requests)
    ok = "met" if mem["hits_rps_c1"] >= 10000 and mem["hit_p50_ms"] <= 0.1 else "MISSED"
    print(
        f"memory hits      c=1 : {mem['hits_rps_c1']:8,.0f} req/s  p50 {mem['hit_p50_ms']:.3f} ms  "
        f"p99 {mem['hit_p99_ms']:.3f} ms   goal >= 10,000 req/s, p50 <= 0.1 ms: {ok}"
    )
    print(
        f"memory hits      c=16: {mem['hits_rps_c16']:8,.0f} req/s  p50 {mem['hit16_p50_ms']:.3f} ms  "
        f"p99 {mem['hit16_p99_ms']:.3f} ms"
    )
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp prototype    : skipped (pip install aiohttp)")
    else:
        pro = measure("memory", a.requests, prototype=True)
        ratio = mem["hits_rps_c1"] / pro["hits_rps_c1"]
        print(
            f"aiohttp prototype c=1: {pro['hits_rps_c1']:8,.0f} req/s  p50 {pro['hit_p50_ms']:.3f} ms  "
            f"-> proxy = {ratio:.2f}x the prototype   goal >= 0.8x: {'met' if ratio >= 0.8 else 'MISSED'}"
        )
        print(
            f"aiohttp prototype c=16: {pro['hits_rps_c16']:8,.0f} req/s  p50 {pro['hit16_p50_ms']:.3f} ms; "
            f"miss p50 {pro['miss_p50_ms']:.3f} ms"
        )
        pairs = interleaved_hits(a.requests)
        ratios = sorted(p / q for p, q in pairs)
        median = ratios[len(ratios) // 2]
        verdict = "met" if median >= 0.8 else "MISSED"
        print(
            f"interleaved c=1     : proxy {statistics.median(p for p, _ in pairs):8,.0f} req/s, prototype "
            f"{statistics.median(q for _, q in pairs):,.0f} req/s; proxy/prototype per round "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}, median {median:.2f}x   goal >= 0.8x: {verdict}"
        )
    extra = mem["miss_p50_ms"] - mem["direct_p50_ms"]
    print(
        f"miss overhead        : p50 via proxy {mem['miss_p50_ms']:.3f} ms vs direct {mem['direct_p50_ms']:.3f} ms = "
        f"+{extra:.3f} ms   goal <= 0.5 ms: {'met' if extra <= 0.5 else 'MISSED'}"
    )
    if a.no_redis or not shutil.which("redis-server"):
        print("redis hits           : skipped (no redis-server)")
        return
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/start_redis.sh")], capture_output=True, text=True, timeout=30, check=False
    )
    if out.returncode != 0:
        print(f"redis hits      : skipped (start_redis.sh: {out.stderr.strip()[-200:]})")
        return
    url = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        red = measure("redis", a.requests // 2, url)
        raw = measure("redis", a.requests // 4, url, ("--redis-l1-bytes", "0"))
    finally:
        port = url.rsplit(":", 1)[1].split("/")[0]
        subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh"), "--stop", port], capture_output=True, timeout=30)
    for label, r in (("redis hits     ", red), ("redis, no L1   ", raw)):
        ratio = r["hit_p50_ms"] / mem["hit_p50_ms"]
        print(
            f"{label} c=1 : {r['hits_rps_c1']:8,.0f} req/s  p50 {r['hit_p50_ms']:.3f} ms  p99 {r['hit_p99_ms']:.3f} ms"
            f"  = {ratio:.2f}x memory's p50   goal <= 2x: {'met' if ratio <= 2 else 'MISSED'}"
        )
        print(f"{label} c=16: {r['hits_rps_c16']:8,.0f} req/s  p50 {r['hit16_p50_ms']:.3f} ms")


if __name__ == "__main__":
    main()
