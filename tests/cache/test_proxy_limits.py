"""A client cannot stall or starve the proxy (issue 13 item 4): idle, half-sent-head and
half-sent-body connections are closed, connections are limited, a client that does not read
stops being read; the parsed-request memo is an LRU (item 10)."""

from __future__ import annotations

import asyncio
import json
import time

from tests.cache.test_proxy_shapes import CHAT, proxied, run
from tests.support.upstream import Upstream
from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import MEMO_ENTRIES, Proxy, ProxyConfig

FAST = {"idle_timeout": 0.3, "header_timeout": 0.3, "body_timeout": 0.3}
BODY = json.dumps(CHAT).encode()
REQ = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY


async def until_closed(r: asyncio.StreamReader, limit: float = 5.0) -> tuple[bytes, float]:
    t = time.monotonic()
    data = await asyncio.wait_for(r.read(), limit)
    return data, time.monotonic() - t


def test_idle_connections_are_closed() -> None:
    async def go() -> None:
        async with proxied(Upstream(), **FAST) as (_proxy, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            data, _ = await until_closed(r)
            assert data == b""  # closed without a word: nothing was asked
            w.close()
            r, w = await asyncio.open_connection("127.0.0.1", port)  # idle after an answer (keep-alive)
            w.write(REQ)
            data, _ = await until_closed(r)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.count(b"HTTP/1.1 ") == 1
            w.close()

    run(go())


def test_half_sent_head_and_body_get_408() -> None:
    async def go() -> None:
        async with proxied(Upstream(), **FAST) as (_proxy, port):
            for partial in (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
                b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"mo',
                b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mod',
            ):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(partial)
                data, _ = await until_closed(r)
                assert data.startswith(b"HTTP/1.1 408 "), data[:100]
                w.close()

    run(go())


def test_trickled_head_is_not_extended() -> None:
    """Slowloris: a byte of head every 0.1 s does not keep the connection beyond header_timeout."""

    async def go() -> None:
        async with proxied(Upstream(), **FAST) as (_proxy, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            closed = asyncio.ensure_future(until_closed(r))
            sent = 0
            for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                if closed.done():
                    break
                try:
                    w.write(bytes([byte]))
                except ConnectionError:
                    break
                sent += 1
                await asyncio.sleep(0.1)
            data, _ = await closed
            assert data.startswith(b"HTTP/1.1 408 ") and sent < 60, (sent, data[:80])
            w.close()

    run(go())


def test_connection_limit() -> None:
    async def go() -> None:
        async with proxied(Upstream(), max_connections=3) as (proxy, port):
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            await asyncio.sleep(0.05)
            r, w = await asyncio.open_connection("127.0.0.1", port)
            data, _ = await until_closed(r)
            assert data.startswith(b"HTTP/1.1 503 "), data[:100]
            w.close()
            held[0][1].close()
            await asyncio.sleep(0.1)
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(REQ)
            assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200 OK\r\n")
            w.close()
            for _, hw in held[1:]:
                hw.close()
            await asyncio.sleep(0.1)
            assert proxy.connections == 0

    run(go())


def test_client_that_does_not_read_is_not_read() -> None:
    """2,000 pipelined requests for a 20 KB answer from a client that does not read: the proxy
    answers only as far as the socket buffers take, then waits; reading resumes it (all answered)."""

    async def go() -> None:
        up = Upstream(tokens=["x" * 20000])
        async with proxied(up) as (proxy, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(REQ)
            first = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await r.readexactly(length)  # stored: the rest are hits
            w.write(REQ * 2000)
            await asyncio.sleep(1.0)
            stalled = proxy.metrics.hits
            assert stalled < 1500, stalled  # 40 MB of answers do not fit in the socket buffers
            got = 0
            deadline = time.monotonic() + 60
            while got < 2000 and time.monotonic() < deadline:
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
                assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-cache: HIT" in head
                await r.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
                got += 1
            assert got == 2000 and proxy.metrics.hits == 2000
            w.close()

    run(go())


def test_memo_is_an_lru() -> None:
    proxy = Proxy(ProxyConfig(upstream="http://127.0.0.1:1"), MemoryBackend())
    route = b"/v1/chat/completions"
    hot = proxy.policy.parse(route, BODY)
    for i in range(MEMO_ENTRIES + 500):
        proxy.policy.parse(route, json.dumps({**CHAT, "seed": i}).encode())
        assert proxy.policy.parse(route, BODY) is hot  # a hot body stays parsed however many cold ones pass
    assert len(proxy.policy.memo) == MEMO_ENTRIES
    assert proxy.policy.memo_bytes == sum(len(b) for _, b in proxy.policy.memo)


def test_tiny_chunks_are_refused_quickly() -> None:
    """8 MB in 1-byte chunks: refused after a few hundred chunks, not parsed for seconds; a body
    in ordinary chunks (1 KiB) of the same count is accepted."""

    async def go() -> None:
        async with proxied(Upstream()) as (_proxy, port):
            head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            r, w = await asyncio.open_connection("127.0.0.1", port)
            t = time.monotonic()
            w.write(head + b"1\r\n \r\n" * 100_000)
            data, _ = await until_closed(r)
            assert data.startswith(b"HTTP/1.1 400 ") and b"chunks of under 256 bytes" in data, data[:200]
            assert time.monotonic() - t < 3
            w.close()
            padded = BODY + b" " * (1024 * 400 - len(BODY))  # JSON with trailing spaces, 400 chunks of 1 KiB
            chunks = b"".join(b"400\r\n" + padded[i : i + 1024] + b"\r\n" for i in range(0, len(padded), 1024))
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(head + chunks + b"0\r\n\r\n")
            assert (await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200 OK\r\n")
            w.close()

    run(go())
