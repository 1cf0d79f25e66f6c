"""The proxy's upstream client against hostile or sloppy upstreams over raw sockets (interim 1xx,
extra responses -- at once, late, or before the request was sent in full -- malformed framing)
and against a real uvicorn, with each of its HTTP/1.1 parsers (h11, and httptools = llhttp,
uvicorn's default), with a short keep-alive."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from tests.support.upstream import (
    PARSERS,
    answer,
    ask,
    chat,
    connection,
    content_length,
    content_of,
    listening,
    proxy_for,
    raw_upstream,
    read_prompt,
    response,
    uvicorn_upstream,
)
from vllmtune.cache import upstream as upstream_mod
from vllmtune.cache.upstream import REUSE_AFTER, Upstream


def test_interim_103_is_skipped() -> None:
    def script(prompt: str) -> list[tuple[float, bytes]]:
        return [
            (0, b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"),
            (0.02, response(answer("re: " + prompt))),
        ]

    async def go() -> None:
        async with raw_upstream(script) as (up, counts), proxy_for(up) as port:
            got = []
            async with connection(port) as conn:
                for p in ("one", "two", "one", "three"):
                    got.append(await ask(conn, p))
                    await asyncio.sleep(REUSE_AFTER)  # the pooled connection may carry the next one
            assert [(s, h["x-cache"], content_of(b)) for s, h, b in got] == [
                (200, "MISS", "re: one"),
                (200, "MISS", "re: two"),
                (200, "HIT", "re: one"),
                (200, "MISS", "re: three"),
            ]
            assert counts == {"connections": 1, "requests": 3}  # the connection stayed in use

    asyncio.run(go())


def test_extra_response_closes_the_connection() -> None:
    """An upstream that sends a second, unasked response in the same write as the answer: the
    connection is closed, never reused, so no later request gets the forged answer."""

    def script(prompt: str) -> list[tuple[float, bytes]]:
        return [(0, response(answer("re: " + prompt)) + response(answer("FORGED")))]

    async def go() -> None:
        async with raw_upstream(script) as (up, counts), proxy_for(up) as port:
            async with connection(port) as conn:
                got = [await ask(conn, p) for p in ("one", "two", "three")]
            assert [(s, content_of(b)) for s, _, b in got] == [(200, "re: one"), (200, "re: two"), (200, "re: three")]
            assert counts == {"connections": 3, "requests": 3}

    asyncio.run(go())


def test_late_extra_response_on_an_idle_connection_is_never_relayed() -> None:
    """Issue 13: the unasked response comes later than the answer, once the client has it and
    before its next request (synchronised by events, not by sleeping): the pooled connection is
    dropped before reuse, and the next request gets its own answer on a fresh connection."""
    answered, extra_sent = asyncio.Event(), asyncio.Event()
    connections = []

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        connections.append(w)
        try:
            while True:
                prompt = await read_prompt(r)
                w.write(response(answer("re: " + prompt)))
                if prompt == "one":
                    await answered.wait()  # the client has read its answer
                    w.write(response(answer("FORGED")))
                    await w.drain()
                    extra_sent.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def go() -> None:
        async with listening(client) as up, proxy_for(up) as port, connection(port) as conn:
            first = await ask(conn, "one")
            answered.set()
            await extra_sent.wait()
            second = await ask(conn, "two")
            third = await ask(conn, "one")
        assert [(s, h["x-cache"], content_of(b)) for s, h, b in (first, second, third)] == [
            (200, "MISS", "re: one"),
            (200, "MISS", "re: two"),
            (200, "HIT", "re: one"),
        ]
        assert len(connections) == 2  # the connection that sent the extra one was not reused

    asyncio.run(go())


def test_unasked_response_after_the_next_request_cannot_answer_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hole HTTP/1.1 leaves: an unasked response that arrives once the next request is on the
    connection reads as its answer. Here the upstream sends it exactly then -- when the next
    request arrives -- so it would be taken for that answer on a reused connection: the pool
    does not reuse a connection within its quiet period (long here, so that the test does not
    depend on the machine's speed), and the next request goes on another one."""
    monkeypatch.setattr(upstream_mod, "REUSE_AFTER", 5.0)
    two_received, extra_sent = asyncio.Event(), asyncio.Event()
    first_conn: list[asyncio.StreamWriter] = []

    async def late_extra(w: asyncio.StreamWriter) -> None:
        await two_received.wait()
        w.write(response(answer("FORGED")))
        await w.drain()
        extra_sent.set()

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tasks = []
        try:
            while True:
                prompt = await read_prompt(r)
                if prompt == "two":
                    two_received.set()
                    if first_conn and first_conn[0] is w:  # reused: the unasked one comes first
                        w.write(response(answer("FORGED")))
                w.write(response(answer("re: " + prompt)))
                if prompt == "one" and not first_conn:
                    first_conn.append(w)
                    tasks.append(asyncio.ensure_future(late_extra(w)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def go() -> None:
        async with listening(client) as up, proxy_for(up) as port, connection(port) as conn:
            got = [await ask(conn, "one"), await ask(conn, "two")]
            await extra_sent.wait()
            got += [await ask(conn, "three"), await ask(conn, "one")]
        assert [(s, h["x-cache"], content_of(b)) for s, h, b in got] == [
            (200, "MISS", "re: one"),
            (200, "MISS", "re: two"),
            (200, "MISS", "re: three"),
            (200, "HIT", "re: one"),
        ]

    asyncio.run(go())


def test_unasked_bytes_still_in_the_kernel_are_seen_before_reuse() -> None:
    """The late extra response has reached the proxy's socket but the event loop has not read it
    yet (no await between its arrival and the next request taking the connection): the pool's
    non-blocking peek finds it, and the connection is closed instead of reused."""
    lsock = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve_one() -> None:
        s, _ = lsock.accept()
        accepted.append(s)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        s.sendall(response(answer("re: one")))

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()

    async def go() -> None:
        pool = Upstream(f"http://127.0.0.1:{lsock.getsockname()[1]}", 5)
        pool.reuse_after = 0  # no quiet period: only the peek can find the late bytes
        resp = await pool.request(b"GET", b"/v1/models", b"", b"")
        assert (resp.status, content_of(await resp.read_all())) == (200, "re: one")
        assert len(pool._idle) == 1  # complete and clean: pooled
        thread.join(5)
        accepted[0].sendall(response(answer("FORGED")))  # on loopback: in the proxy's receive queue now
        assert pool.take() is None  # ... and seen there, with no await in between
        assert not pool._idle  # and closed
        pool.close()

    try:
        asyncio.run(go())
    finally:
        for s in accepted:
            s.close()
        lsock.close()


def test_answer_before_the_request_was_sent_in_full_is_502_and_never_cached() -> None:
    """An upstream that answers a request it has not read (here: as soon as it has the head of an
    8 MB request, its receive buffer pinned small so the rest cannot be in flight) sends an
    answer that cannot be this request's: a 502, the connection closed, nothing cached; the same
    request later gets its own answer."""
    release = asyncio.Event()
    early = {"sent": 0}

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
            n = content_length(head)
            if early["sent"] == 0:
                early["sent"] += 1
                w.write(response(answer("FORGED")))
                await release.wait()  # and reads nothing more until the client has its answer
                return
            prompt = json.loads(await r.readexactly(n))["messages"][-1]["content"]
            w.write(response(answer("re: " + prompt[:3])))
            await r.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def go() -> None:
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # fixed: no autotuning
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        big = "big" + "a" * (8 << 20)
        try:
            async with (
                listening(client, sock=lsock) as up,
                proxy_for(up, skip_pii=False) as port,
                connection(port) as conn,
            ):
                first = await ask(conn, big)
                release.set()
                second = await ask(conn, big)
                third = await ask(conn, big)
        finally:
            release.set()  # the early answerer waits for it
        status, headers, body = first
        assert (status, headers["x-cache"]) == (502, "BYPASS")
        assert json.loads(body)["error"]["message"] == (
            f"http://127.0.0.1:{up} answered before the request was sent in full"
        )
        assert [(s, h["x-cache"], content_of(b)) for s, h, b in (second, third)] == [
            (200, "MISS", "re: big"),
            (200, "HIT", "re: big"),
        ]

    asyncio.run(go())


def test_malformed_upstream_content_length_is_502_naming_it() -> None:
    def script(prompt: str) -> list[tuple[float, bytes]]:
        return [(0, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}")]

    async def go() -> None:
        async with raw_upstream(script) as (up, _), proxy_for(up) as port:
            async with connection(port) as conn:
                status, headers, body = await ask(conn, "one")
            assert status == 502 and headers["x-cache"] == "BYPASS"
            msg = json.loads(body)["error"]["message"]
            assert msg.startswith(f"http://127.0.0.1:{up} sent an invalid HTTP/1.1 answer"), msg

    asyncio.run(go())


@pytest.mark.parametrize("http", PARSERS)
def test_smuggling_through_to_a_real_uvicorn_upstream_is_impossible(http: str) -> None:
    """Issue 13 item 1 end to end: the attacker's bare-LF head would make uvicorn (h11) read a
    second, attacker-written request; the proxy refuses it, and the victim's request gets its
    own answer, not a cached forged one -- whichever parser the upstream runs."""
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
            async with connection(port) as conn:
                status, headers, body = await ask(conn, "victim question")
            assert (status, headers["x-cache"], content_of(body)) == (200, "MISS", "re: victim question")
            assert seen == ["victim question"]  # the attacker's request never reached the upstream

    with uvicorn_upstream(http) as (up, seen):
        asyncio.run(go(up, seen))


@pytest.mark.parametrize("http", PARSERS)
def test_stale_pooled_connections_after_uvicorn_keepalive(http: str) -> None:
    """A real uvicorn (h11) closes idle connections after timeout_keep_alive; after a longer gap the
    next burst must not meet a dead pooled connection (issue 13 item 9: 0 errors expected)."""

    async def burst(port: int, tag: str) -> list[int]:
        async def one(i: int) -> int:
            async with connection(port) as conn:
                status, _, body = await ask(conn, f"{tag} {i}")
                assert content_of(body) == f"re: {tag} {i}"
                return status

        return list(await asyncio.gather(*(one(i) for i in range(16))))

    async def go(up: int) -> None:
        async with proxy_for(up) as pport:
            first = await burst(pport, "a")
            await asyncio.sleep(1.6)  # longer than the upstream's keep-alive: it closed the pooled connections
            second = await burst(pport, "b")
            assert first == second == [200] * 16

    with uvicorn_upstream(http, timeout_keep_alive=1) as (up, _):
        asyncio.run(go(up))
