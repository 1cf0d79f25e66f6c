"""The cache proxy against a stub upstream (timing and faults under control) and a real Redis."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.support.upstream import proxy_running
from vllmtune.bench.http import Connection, HttpError
from vllmtune.bench.stub import StubConfig, start_stub
from vllmtune.cache.backends import MemoryBackend, RedisBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig

CHAT = {
    "model": "stub-model",
    "messages": [{"role": "user", "content": "What is prefix caching?"}],
    "temperature": 0,
    "max_tokens": 4,
}


@asynccontextmanager
async def running(
    stub_cfg: StubConfig, backend: Any = None, **cfg: Any
) -> AsyncIterator[tuple[Proxy, int, StubConfig]]:
    """The proxy in front of the bench stub (``vllmtune.bench.stub``) configured by ``stub_cfg``."""
    stub = await start_stub(stub_cfg)
    try:
        async with proxy_running(stub.sockets[0].getsockname()[1], backend, **cfg) as (proxy, port):
            yield proxy, port, stub_cfg
    finally:
        stub.close()


async def call(port: int, body: dict[str, Any], headers: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    conn = Connection("127.0.0.1", port)
    try:
        resp = await conn.send(
            "POST", "/v1/chat/completions", json.dumps(body).encode(), b"Content-Type: application/json\r\n" + headers
        )
        data = await conn.body(resp)
        return resp.status, resp.headers, data
    finally:
        conn.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_hit_miss_bypass_headers_and_body_flag() -> None:
    async def go() -> None:
        async with running(StubConfig()) as (proxy, port, stub):
            s1, h1, b1 = await call(port, CHAT)
            s2, h2, b2 = await call(port, CHAT)
            assert (s1, h1["x-cache"], s2, h2["x-cache"]) == (200, "MISS", 200, "HIT")
            assert "age" in h2 and json.loads(b2)["cached"] is True and "cached" not in json.loads(b1)
            assert json.loads(b2)["choices"] == json.loads(b1)["choices"]
            assert stub.counters["requests"] == 1
            _, h, _ = await call(port, {**CHAT, "temperature": 0.7})
            _, h3, _ = await call(port, {k: v for k, v in CHAT.items() if k != "temperature"})
            _, h4, _ = await call(port, CHAT, b"Cache-Control: no-store\r\n")
            _, h5, _ = await call(port, {**CHAT, "cache": False})
            _, h6, _ = await call(port, CHAT, b"Cache-Control: no-cache\r\n")
            assert [x["x-cache"] for x in (h, h3, h4, h5, h6)] == ["BYPASS", "BYPASS", "BYPASS", "BYPASS", "MISS"]
            assert proxy.stats()["bypass"] == {"temperature": 1, "no_temperature": 1, "no_store": 1, "body_flag": 1}

    run(go())


def test_tenant_isolation() -> None:
    async def go() -> None:
        async with running(StubConfig()) as (_, port, stub):
            await call(port, CHAT, b"Authorization: Bearer tenant-a\r\n")
            _, h, _ = await call(port, CHAT, b"Authorization: Bearer tenant-b\r\n")
            assert h["x-cache"] == "MISS"  # tenant b can neither read nor probe a's entry
            _, h, _ = await call(port, CHAT, b"Authorization: Bearer tenant-a\r\n")
            assert h["x-cache"] == "HIT"
            assert stub.counters["requests"] == 2

    run(go())


def test_pii_never_cached() -> None:
    async def go() -> None:
        async with running(StubConfig()) as (proxy, port, _stub):
            pii = {**CHAT, "messages": [{"role": "user", "content": "Hello Diep, my email is d@example.com"}]}
            _, h1, _ = await call(port, pii)
            _, h2, _ = await call(port, pii)
            assert (h1["x-cache"], h2["x-cache"]) == ("BYPASS", "BYPASS")
            assert proxy.stats()["bypass"] == {"pii_request": 2}
        async with running(StubConfig(text="call 555-123-4567 ")) as (proxy, port, _stub):
            await call(port, CHAT)
            _, h, _ = await call(port, CHAT)
            assert h["x-cache"] == "MISS" and proxy.stats()["bypass"] == {"pii_response": 2}

    run(go())


async def stream(port: int, body: dict[str, Any]) -> tuple[str, list[bytes]]:
    conn = Connection("127.0.0.1", port)
    try:
        resp = await conn.send(
            "POST",
            "/v1/chat/completions",
            json.dumps({**body, "stream": True}).encode(),
            b"Content-Type: application/json\r\n",
        )
        data = b"".join([c async for c in conn.chunks(resp)])
        return resp.headers.get("x-cache", ""), [e for e in data.split(b"\n\n") if e]
    finally:
        conn.close()


def test_streaming_miss_stored_and_replayed_with_the_same_chunk_shape() -> None:
    async def go() -> None:
        async with running(StubConfig(tokens=4)) as (_, port, stub):
            x1, live = await stream(port, CHAT)
            x2, replay = await stream(port, CHAT)
            assert (x1, x2) == ("MISS", "HIT") and stub.counters["requests"] == 1
            assert live[-1] == replay[-1] == b"data: [DONE]"
            assert len(live) == len(replay)
            for a, b in zip(live[:-1], replay[:-1], strict=True):
                ja, jb = json.loads(a[6:]), json.loads(b[6:])
                assert jb.pop("cached") is True and ja == jb
            # a non-streamed request is answered from the streamed entry, and vice versa
            _, h, body = await call(port, CHAT)
            assert h["x-cache"] == "HIT" and json.loads(body)["choices"][0]["message"]["content"] == "okokokok"
            other = {**CHAT, "max_tokens": 3}
            await call(port, other)
            x3, frames = await stream(port, other)
            assert x3 == "HIT" and frames[-1] == b"data: [DONE]"

    run(go())


def test_single_flight_collapses_identical_misses() -> None:
    async def go() -> None:
        # The 8 requests must reach the proxy while the first one's answer is pending: they leave
        # one event loop within milliseconds; an upstream that takes 2 s to answer leaves a 100x
        # margin for a loaded machine (the old 0.2 s did not).
        async with running(StubConfig(ttft=2.0)) as (proxy, port, stub):
            results = await asyncio.gather(*(call(port, CHAT) for _ in range(8)))
            assert stub.counters["requests"] == 1
            assert sorted(h["x-cache"] for _, h, _ in results) == ["HIT"] * 7 + ["MISS"]
            assert proxy.stats()["collapsed"] == 7

    run(go())


def test_upstream_errors_and_disconnects_are_passed_through_never_cached() -> None:
    async def go() -> None:
        async with running(StubConfig(fail_every=1)) as (proxy, port, stub):
            s1, _, b1 = await call(port, CHAT)
            s2, h2, _ = await call(port, CHAT)
            assert (s1, s2, h2["x-cache"]) == (500, 500, "MISS") and b"stub failure" in b1
            assert stub.counters["requests"] == 2
        async with running(StubConfig(cut_every=1, itl=0.001, tokens=6)) as (_, port, stub):
            for _ in range(2):
                with pytest.raises(HttpError):  # the proxy closes the connection: the client knows it is cut
                    await stream(port, CHAT)
            assert stub.counters["requests"] == 2  # the cut stream was not stored: the second went upstream
        async with running(StubConfig(ttft=2.0), upstream_timeout=0.3) as (_, port, _):
            s, h, body = await call(port, CHAT)
            assert (s, h["x-cache"]) == (504, "BYPASS") and b"timed out" in body
        proxy = Proxy(ProxyConfig(upstream="http://127.0.0.1:9"), MemoryBackend())
        written: list[bytes] = []
        await proxy.handle(b"POST", b"/v1/chat/completions", [], json.dumps(CHAT).encode(), written.append)
        assert written[0].startswith(b"HTTP/1.1 502")

    run(go())


def test_pass_through_and_metrics() -> None:
    async def go() -> None:
        async with running(StubConfig()) as (_, port, _):
            conn = Connection("127.0.0.1", port)
            resp = await conn.send("GET", "/v1/models")
            assert json.loads(await conn.body(resp))["data"][0]["id"] == "stub-model"
            await call(port, CHAT)
            await call(port, CHAT)
            resp = await conn.send("GET", "/metrics")
            text = (await conn.body(resp)).decode()
            conn.close()
            assert "vllmtune_cache_hits_total 1\n" in text and "vllmtune_cache_misses_total 1\n" in text
            assert "vllmtune_cache_hit_ratio 0.500000" in text and "vllmtune_cache_upstream_seconds_count 2" in text

    run(go())


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    require(shutil.which("redis-server") is not None, "redis-server")
    out = subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
    yield url
    subprocess.run(
        ["bash", str(ROOT / "scripts/start_redis.sh"), "--stop", url.rsplit(":", 1)[1].split("/")[0]],
        capture_output=True,
        timeout=30,
    )


@pytest.mark.redis
def test_real_redis_backend_and_restart_fails_open(redis_server: str) -> None:
    port = redis_server.rsplit(":", 1)[1].split("/")[0]

    async def go() -> None:
        async with running(StubConfig(), RedisBackend(redis_server, l1_bytes=0)) as (proxy, pport, stub):
            await call(pport, CHAT)
            _, h, _ = await call(pport, CHAT)
            assert h["x-cache"] == "HIT" and stub.counters["requests"] == 1
            subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=10)
            s, h, _ = await call(pport, CHAT)  # redis down: served, not failed
            assert (s, h["x-cache"]) == (200, "MISS") and proxy.stats()["backend_errors"] >= 1
            subprocess.run(
                ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--daemonize", "yes"],
                capture_output=True,
                timeout=10,
            )
            for _ in range(50):
                if (
                    subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True, text=True).stdout.strip()
                    == "PONG"
                ):
                    break
                time.sleep(0.1)
            # back in business after the restart (the backend leaves a failed Redis alone for retry_after s)
            for _ in range(40):
                await call(pport, CHAT)
                _, h, _ = await call(pport, CHAT)
                if h["x-cache"] == "HIT":
                    break
                await asyncio.sleep(0.1)
            assert h["x-cache"] == "HIT"

    run(go())
