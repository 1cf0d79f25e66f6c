"""The proxy's upstream client against hostile or sloppy upstreams over raw sockets (interim 1xx,
extra responses, malformed framing) and against a real uvicorn with a short keep-alive."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from vllmtune.bench.http import Connection
from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig, serve


def answer(content: str) -> bytes:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    return json.dumps(body).encode()


def response(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n" % (extra, len(body)) + body
    )


def chat(content: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0}


Script = Callable[[str], list[tuple[float, bytes]]]  # the prompt -> (delay s, bytes) to send


@asynccontextmanager
async def raw_upstream(script: Script) -> AsyncIterator[tuple[int, dict[str, int]]]:
    """An upstream that answers each request with the bytes ``script`` gives for its prompt."""
    counts = {"connections": 0, "requests": 0}

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        counts["connections"] += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = next(
                    int(ln.split(b":")[1]) for ln in head.lower().split(b"\r\n") if ln.startswith(b"content-length:")
                )
                req = json.loads(await r.readexactly(n))
                counts["requests"] += 1
                for delay, data in script(req["messages"][-1]["content"]):
                    if delay:
                        await asyncio.sleep(delay)
                    w.write(data)
        except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counts
    finally:
        server.close()


@asynccontextmanager
async def proxy_for(up_port: int, **cfg: Any) -> AsyncIterator[int]:
    proxy = Proxy(ProxyConfig(upstream=f"http://127.0.0.1:{up_port}", port=0, **cfg), MemoryBackend())
    stop = asyncio.Event()
    ports: list[int] = []
    task = asyncio.ensure_future(serve(proxy, stop, ports.append))
    while not ports:
        await asyncio.sleep(0.01)
    try:
        yield ports[0]
    finally:
        stop.set()
        await task


async def ask(conn: Connection, content: str) -> tuple[int, dict[str, str], bytes]:
    resp = await conn.send(
        "POST", "/v1/chat/completions", json.dumps(chat(content)).encode(), b"content-type: application/json\r\n"
    )
    return resp.status, resp.headers, await conn.body(resp)


def content_of(body: bytes) -> str:
    return str(json.loads(body)["choices"][0]["message"]["content"])


def test_interim_103_is_skipped() -> None:
    def script(prompt: str) -> list[tuple[float, bytes]]:
        return [
            (0, b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"),
            (0.02, response(answer("re: " + prompt))),
        ]

    async def go() -> None:
        async with raw_upstream(script) as (up, counts), proxy_for(up) as port:
            conn = Connection("127.0.0.1", port)
            try:
                got = [await ask(conn, p) for p in ("one", "two", "one", "three")]
            finally:
                conn.close()
            assert [(s, h["x-cache"], content_of(b)) for s, h, b in got] == [
                (200, "MISS", "re: one"),
                (200, "MISS", "re: two"),
                (200, "HIT", "re: one"),
                (200, "MISS", "re: three"),
            ]
            assert counts == {"connections": 1, "requests": 3}  # the connection stayed in use

    asyncio.run(go())


def test_extra_response_closes_the_connection() -> None:
    """An upstream that sends a second, unasked response (at once, or a moment later): the
    connection is closed, never reused, so no later request gets the forged answer."""
    for delay in (0.0, 0.1):

        def script(prompt: str, delay: float = delay) -> list[tuple[float, bytes]]:
            return [(0, response(answer("re: " + prompt))), (delay, response(answer("FORGED")))]

        async def go() -> None:
            async with raw_upstream(script) as (up, counts), proxy_for(up) as port:
                conn = Connection("127.0.0.1", port)
                try:
                    got = []
                    for p in ("one", "two", "three"):
                        got.append(await ask(conn, p))
                        await asyncio.sleep(0.2)  # the late extra response arrives while the connection is idle
                finally:
                    conn.close()
                assert [(s, content_of(b)) for s, _, b in got] == [
                    (200, "re: one"),
                    (200, "re: two"),
                    (200, "re: three"),
                ]
                assert counts == {"connections": 3, "requests": 3}

        asyncio.run(go())


def test_malformed_upstream_content_length_is_502_naming_it() -> None:
    def script(prompt: str) -> list[tuple[float, bytes]]:
        return [(0, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}")]

    async def go() -> None:
        async with raw_upstream(script) as (up, _), proxy_for(up) as port:
            conn = Connection("127.0.0.1", port)
            try:
                status, headers, body = await ask(conn, "one")
            finally:
                conn.close()
            assert status == 502 and headers["x-cache"] == "BYPASS"
            msg = json.loads(body)["error"]["message"]
            assert msg.startswith(f"http://127.0.0.1:{up} sent an invalid HTTP/1.1 answer"), msg

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_upstream(timeout_keep_alive: int = 5) -> Iterator[tuple[int, list[str]]]:
    """A real uvicorn (h11, which accepts a bare LF) answering "re: <last message>"; yields its port
    and the prompts it answered."""
    import uvicorn

    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        prompt = json.loads(body)["messages"][-1]["content"]
        seen.append(prompt)
        data = answer("re: " + prompt)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http="h11",
            timeout_keep_alive=timeout_keep_alive,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield port, seen
    finally:
        server.should_exit = True
        thread.join(10)


def test_smuggling_through_to_a_real_h11_upstream_is_impossible() -> None:
    """Issue 13 item 1 end to end: the attacker's bare-LF head would make uvicorn (h11) read a
    second, attacker-written request; the proxy refuses it, and the victim's request gets its
    own answer, not a cached forged one."""
    forged = json.dumps(chat("victim question")).encode()
    inner = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(forged) + forged
    outer_body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    attack = (
        b"POST /v1/models HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: %d\r\n\r\n" % len(outer_body) + outer_body
    )

    async def go(up: int, seen: list[str]) -> None:
        async with proxy_for(up) as port:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(attack)
            got = await asyncio.wait_for(r.read(), 5)
            w.close()
            assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n") and got.count(b"HTTP/1.1") == 1
            conn = Connection("127.0.0.1", port)
            try:
                status, headers, body = await ask(conn, "victim question")
            finally:
                conn.close()
            assert (status, headers["x-cache"], content_of(body)) == (200, "MISS", "re: victim question")
            assert seen == ["victim question"]  # the attacker's request never reached the upstream

    with uvicorn_upstream() as (up, seen):
        asyncio.run(go(up, seen))


def test_stale_pooled_connections_after_uvicorn_keepalive() -> None:
    """A real uvicorn (h11) closes idle connections after timeout_keep_alive; after a longer gap the
    next burst must not meet a dead pooled connection (issue 13 item 9: 0 errors expected)."""

    async def burst(port: int, tag: str) -> list[int]:
        async def one(i: int) -> int:
            conn = Connection("127.0.0.1", port)
            try:
                status, _, body = await ask(conn, f"{tag} {i}")
                assert content_of(body) == f"re: {tag} {i}"
                return status
            finally:
                conn.close()

        return list(await asyncio.gather(*(one(i) for i in range(16))))

    async def go(up: int) -> None:
        async with proxy_for(up) as pport:
            first = await burst(pport, "a")
            await asyncio.sleep(1.6)  # longer than the upstream's keep-alive: it closed the pooled connections
            second = await burst(pport, "b")
            assert first == second == [200] * 16

    with uvicorn_upstream(timeout_keep_alive=1) as (up, _):
        asyncio.run(go(up))
