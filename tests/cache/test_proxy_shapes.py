"""The proxy against the in-test upstream (tests/support/upstream.py): SSE replay byte shape,
tool calls, streaming single flight, faults (4xx/5xx, silence, cut streams), HTTP details."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.support.require_real import require_module
from tests.support.upstream import Upstream, proxy_running, serving
from vllmtune.bench.http import Connection, HttpError
from vllmtune.cache.backends import MemoryBackend, RedisBackend, entry_bytes
from vllmtune.cache.command import CacheError, main, stats
from vllmtune.cache.proxy import Proxy, ProxyConfig, serve

CHAT = {"model": "m", "messages": [{"role": "user", "content": "What is prefix caching?"}], "temperature": 0}
FRAME = re.compile(rb"data: (\{.*?\}|\[DONE\])\n\n", re.S)


@asynccontextmanager
async def proxied(up: Upstream, backend: Any = None, **cfg: Any) -> AsyncIterator[tuple[Proxy, int]]:
    async with serving(up), proxy_running(up.port, backend, **cfg) as running:
        yield running


async def post(
    port: int,
    body: dict[str, Any],
    path: str = "/v1/chat/completions",
    headers: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    conn = Connection("127.0.0.1", port, timeout=10)
    try:
        resp = await asyncio.wait_for(conn.send("POST", path, json.dumps(body).encode(), headers), 10)
        data = b"".join([c async for c in conn.chunks(resp)]) if resp.chunked else await conn.body(resp)
        return resp.status, resp.headers, data
    finally:
        conn.close()


def events(raw: bytes) -> list[bytes]:
    """The SSE events of a stream body, asserting nothing else is in it."""
    found = FRAME.findall(raw)
    assert b"".join(b"data: " + e + b"\n\n" for e in found) == raw, raw
    return found


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize("usage", [False, True])
def test_streamed_miss_is_replayed_with_vllms_byte_shape(path: str, usage: bool) -> None:
    body: dict[str, Any] = {**CHAT, "stream": True}
    if path == "/v1/completions":
        body = {"model": "m", "prompt": "Prefix caching is", "temperature": 0, "stream": True}
    if usage:
        body["stream_options"] = {"include_usage": True}

    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (proxy, port):
            s1, h1, live = await post(port, body, path)
            s2, h2, replay = await post(port, body, path)
            assert (s1, s2, h1["x-cache"], h2["x-cache"], up.calls) == (200, 200, "MISS", "HIT", 1)
            assert h2["content-type"].startswith("text/event-stream") and int(h2["age"]) >= 0
            a, b = events(live), events(replay)
            assert a[-1] == b[-1] == b"[DONE]" and len(a) == len(b)
            for x, y in zip(a[:-1], b[:-1], strict=True):
                jx, jy = json.loads(x), json.loads(y)
                assert jy.pop("cached") is True and jx == jy
            assert any(json.loads(e).get("usage") for e in b[:-1]) is usage
            # the same entry answers the non-streamed request, assembled from the chunks
            _, h3, full = await post(
                port, {k: v for k, v in body.items() if k not in ("stream", "stream_options")}, path
            )
            obj = json.loads(full)
            assert h3["x-cache"] == "HIT" and obj["cached"] is True and up.calls == 1
            choice = obj["choices"][0]
            text = choice["message"]["content"] if path.endswith("chat/completions") else choice["text"]
            assert text == "Prefix caching reuses KV" and choice["finish_reason"] == "stop"
            if usage:
                assert obj["usage"]["total_tokens"] == 11 and proxy.stats()["tokens_saved"] == 22  # two hits

    run(go())


def test_full_answer_is_replayed_as_a_stream_in_chunk_shape() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_, port):
            await post(port, CHAT)
            _, h, raw = await post(port, {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
            assert h["x-cache"] == "HIT" and up.calls == 1
            evs = events(raw)
            objs = [json.loads(e) for e in evs[:-1]]
            assert evs[-1] == b"[DONE]" and all(o["object"] == "chat.completion.chunk" for o in objs)
            assert objs[0]["choices"][0]["delta"]["role"] == "assistant"
            assert (
                "".join(c["delta"].get("content") or "" for o in objs for c in o["choices"])
                == "Prefix caching reuses KV"
            )
            assert [c["finish_reason"] for o in objs for c in o["choices"]][-1] == "stop"
            assert objs[-1]["choices"] == [] and objs[-1]["usage"]["total_tokens"] == 11

    run(go())


def test_streamed_tool_call_is_assembled_for_a_non_streamed_hit() -> None:
    async def go() -> None:
        up = Upstream(tool_call={"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'})
        body = {**CHAT, "tools": [{"type": "function", "function": {"name": "get_weather"}}]}
        async with proxied(up) as (_, port):
            await post(port, {**body, "stream": True})
            _, h, full = await post(port, body)
            assert h["x-cache"] == "HIT" and up.calls == 1
            msg = json.loads(full)["choices"][0]["message"]
            assert msg["tool_calls"] == [
                {
                    "type": "function",
                    "id": "call-1",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'},
                }
            ]

    run(go())


def test_concurrent_identical_streamed_misses_make_one_upstream_call() -> None:
    async def go() -> None:
        up = Upstream(itl=0.02)
        async with proxied(up) as (proxy, port):
            results = await asyncio.gather(
                *(post(port, {**CHAT, "stream": True}) for _ in range(6)), *(post(port, CHAT) for _ in range(4))
            )
            assert up.calls == 1
            assert sorted(h["x-cache"] for _, h, _ in results) == ["HIT"] * 9 + ["MISS"]
            for _, _, raw in results[:6]:
                assert events(raw)[-1] == b"[DONE]" and len(events(raw)) == 7
            assert proxy.stats()["collapsed"] == 9

    run(go())


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_upstream_errors_pass_through_and_are_never_cached(status: int) -> None:
    async def go() -> None:
        up = Upstream(status=status)
        async with proxied(up) as (proxy, port):
            for _ in range(2):
                s, h, body = await post(port, CHAT)
                assert (s, h["x-cache"]) == (status, "MISS") and b"upstream says no" in body
            assert up.calls == 2 and proxy.stats()["stored"] == 0 and proxy.stats()["upstream_errors"] == 2

    run(go())


def test_silent_upstream_times_out_and_cut_stream_is_not_stored() -> None:
    async def go() -> None:
        up = Upstream(delay=5)
        async with proxied(up, upstream_timeout=0.3) as (_, port):
            s, h, body = await post(port, CHAT)
            assert (s, h["x-cache"]) == (504, "BYPASS") and b"timed out" in body
        for fault in ({"hang_after": 2}, {"cut_after": 2}):
            up = Upstream(**fault)  # type: ignore[arg-type]
            async with proxied(up, upstream_timeout=0.3) as (proxy, port):
                with pytest.raises(HttpError):  # the client sees an incomplete stream, never a fake end
                    await post(port, {**CHAT, "stream": True})
                up.hang_after = up.cut_after = None
                _, h, raw = await post(port, {**CHAT, "stream": True})
                assert h["x-cache"] == "MISS" and events(raw)[-1] == b"[DONE]" and up.calls == 2
                _, h, _ = await post(port, {**CHAT, "stream": True})
                assert h["x-cache"] == "HIT" and proxy.stats()["stored"] == 1

    run(go())


def test_unreachable_upstream_is_a_502_not_a_crash() -> None:
    async def go() -> None:
        proxy = Proxy(ProxyConfig(upstream="http://127.0.0.1:9", port=0), MemoryBackend())
        stop = asyncio.Event()
        ports: list[int] = []
        task = asyncio.ensure_future(serve(proxy, stop, ports.append))
        while not ports:
            await asyncio.sleep(0.005)
        s, _, body = await post(ports[0], CHAT)
        assert s == 502 and b"unreachable" in body
        stop.set()
        await task

    run(go())


def test_cache_flag_is_stripped_and_other_paths_pass_through_unchanged() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_, port):
            _, h, _ = await post(port, {**CHAT, "cache": False}, headers=b"Authorization: Bearer k1\r\n")
            assert h["x-cache"] == "BYPASS" and h["x-request-id"] == "up-1"
            _, _, hdrs, body = up.requests[-1]
            assert "cache" not in json.loads(body) and hdrs[b"authorization"] == b"Bearer k1"
            conn = Connection("127.0.0.1", port)
            resp = await conn.send("GET", "/v1/models?x=1")
            assert json.loads(await conn.body(resp))["data"][0]["id"] == "m" and "x-cache" not in resp.headers
            assert up.requests[-1][1] == b"/v1/models?x=1" and resp.headers["x-request-id"] == "up-1"
            resp = await conn.send("GET", "/nope")
            assert resp.status == 404
            await conn.body(resp)
            conn.close()

    run(go())


def test_http_details_expect_continue_chunked_body_pipelining() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_, port):
            body = json.dumps(CHAT).encode()
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                b"content-length: %d\r\n\r\n" % len(body)
            )
            assert await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
            w.write(body)
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200") and b"x-cache: MISS" in head
            n = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await r.readexactly(n)
            # a chunked request body, then two pipelined requests in one write
            chunked = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
            chunked += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
            plain = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            w.write(chunked + plain + plain)
            for _ in range(3):
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
                assert b"x-cache: HIT" in head
                await r.readexactly(int(re.search(rb"content-length: (\d+)", head).group(1)))  # type: ignore[union-attr]
            w.write(b"GARBAGE\r\n\r\n")
            assert (await asyncio.wait_for(r.read(), 5)).startswith(b"HTTP/1.1 400")
            w.close()
            assert up.calls == 1

    run(go())


def test_metrics_and_stats() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up, usd_per_1k_tokens=2.0) as (_, port):
            for _ in range(3):
                await post(port, CHAT)
            await post(port, {**CHAT, "temperature": 1.0})
            conn = Connection("127.0.0.1", port)
            resp = await conn.send("GET", "/metrics")
            text = (await conn.body(resp)).decode()
            resp = await conn.send("GET", "/cache/stats")
            st = json.loads(await conn.body(resp))
            conn.close()
            assert resp.headers["content-type"] == "application/json"
            for line in (
                "vllmtune_cache_hits_total 2",
                "vllmtune_cache_misses_total 1",
                'vllmtune_cache_bypass_total{reason="temperature"} 1',
                "vllmtune_cache_hit_ratio 0.666667",
                "vllmtune_cache_tokens_saved_total 22",
                "vllmtune_cache_cost_saved_usd_total 0.044000",
                "vllmtune_cache_upstream_seconds_count 2",
                "vllmtune_cache_redis_errors_total 0",
            ):
                assert line in text.splitlines(), line
            assert st["hits"] == 2 and st["bypass"] == {"temperature": 1} and st["usd_saved"] == pytest.approx(0.044)

    run(go())


def test_redis_unreachable_fails_open_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    require_module("redis", "the redis client (pip install -e '.[test]')")

    async def go() -> None:
        up = Upstream()
        backend = RedisBackend("redis://127.0.0.1:9/0", retry_after=0.0, l1_bytes=0)
        async with proxied(up, backend) as (proxy, port):
            for _ in range(3):
                s, h, _ = await post(port, CHAT)
                assert (s, h["x-cache"]) == (200, "MISS")
            assert up.calls == 3 and proxy.stats()["backend_errors"] >= 3 and proxy.stats()["redis_errors"] >= 3

    with caplog.at_level(logging.WARNING, logger="vllmtune.cache"):
        run(go())
    assert sum("redis unavailable" in r.getMessage() for r in caplog.records) == 1


def test_memory_backend_is_an_lru_bounded_by_bytes_with_ttl() -> None:
    async def go() -> None:
        one = entry_bytes("k0", {"body": "x" * 100})  # what an entry holds in memory (~730 bytes)
        mem = MemoryBackend(max_bytes=int(one * 3.5))  # room for 3
        for i in range(10):
            await mem.set(f"k{i}", {"body": "x" * 100}, ttl=60)
            await mem.get("k0")  # k0 stays recently used
        assert mem.size <= one * 3.5 and len(mem._data) == 3
        assert await mem.get("k0") is not None and await mem.get("k1") is None
        assert await mem.get("k9") is not None
        await mem.set("big", {"body": "x" * 5000}, ttl=60)
        assert await mem.get("big") is None and await mem.get("k9") is not None
        await mem.set("short", {"body": ""}, ttl=0)
        assert await mem.get("short") is None

    run(go())


def test_command_errors_are_messages_not_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--upstream", "ftp://nowhere", "--port", "0"]) == 1
    assert main(["--upstream", "http://127.0.0.1:8000", "--backend", "redis"]) == 1
    assert main(["--upstream", "http://127.0.0.1:notaport"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "expected http://HOST:PORT" in err and "--redis-url" in err
    with pytest.raises(CacheError, match="no vllmtune cache proxy answers"):
        stats("http://127.0.0.1:9")


@pytest.fixture
def redis_url() -> Iterator[str]:
    require(shutil.which("redis-server") is not None, "redis-server")
    out = subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1].split("=", 1)[1]
    yield url
    port = url.rsplit(":", 1)[1].split("/")[0]
    subprocess.run(["bash", str(ROOT / "scripts/start_redis.sh"), "--stop", port], capture_output=True, timeout=30)


@pytest.mark.redis
def test_redis_is_shared_between_replicas_streams_included(redis_url: str) -> None:
    require_module("redis", "the redis client (pip install -e '.[test]')")

    async def go() -> None:
        up = Upstream()
        async with (
            proxied(up, RedisBackend(redis_url)) as (_, port_a),
            proxied(up, RedisBackend(redis_url)) as (
                b,
                port_b,
            ),
        ):
            _, h, live = await post(port_a, {**CHAT, "stream": True}, headers=b"Authorization: Bearer t1\r\n")
            assert h["x-cache"] == "MISS"
            # replica b has an empty L1: the hit comes from Redis, then from its L1
            for _ in range(2):
                _, h, replay = await post(port_b, {**CHAT, "stream": True}, headers=b"Authorization: Bearer t1\r\n")
                assert h["x-cache"] == "HIT" and len(events(replay)) == len(events(live))
            _, h, _ = await post(port_b, {**CHAT, "stream": True}, headers=b"Authorization: Bearer t2\r\n")
            assert h["x-cache"] == "MISS" and up.calls == 2 and b.stats()["backend_errors"] == 0
            # nothing of the credential is stored in Redis
            import redis

            client = redis.Redis.from_url(redis_url)
            keys = client.keys("*")
            assert len(keys) == 2 and all(b"Bearer" not in k and b"t1" not in client.get(k) for k in keys)
            assert all(0 < client.ttl(k) <= 86400 for k in keys)
            client.close()

    run(go())
