"""Hostile HTTP/1.1 framing from a client, over raw sockets. The expected behaviour is RFC 9112's:
a request whose framing is ambiguous or invalid gets 400 and the connection is closed (the
request is never forwarded, and nothing after it on the connection is read as a request).

Every case runs with the proxy in front of three upstreams: the raw-asyncio stub, and a real
uvicorn on each of its HTTP/1.1 parsers -- h11 (which accepts a bare LF) and httptools (llhttp,
uvicorn's default) -- so that "never forwarded" is checked where a lenient parser would act on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from tests.cache.test_proxy import CHAT, running
from tests.support.upstream import PARSERS, proxy_for, uvicorn_upstream
from vllmtune.bench.stub import StubConfig

UPSTREAMS = ("stub", *PARSERS)
Uvicorns = dict[str, tuple[int, list[str]]]

POST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
OK_BODY = b'{"model":"stub-model","messages":[{"role":"user","content":"hi"}],"temperature":0}'
N = len(OK_BODY)
NEXT = b"GET /cache/stats HTTP/1.1\r\nHost: x\r\n\r\n"  # pipelined after the bad one: must not be answered

CASES = {
    # RFC 9112 2.2: a bare CR is invalid; a bare LF a recipient MAY accept -- a proxy that does,
    # while its upstream reads it differently, is the smuggling in issue 13 item 1: refused.
    "bare LF in a header value": POST
    + b"X-A: a\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % N
    + OK_BODY,
    "bare CR in a header value": POST + b"X-A: a\rb\r\nContent-Length: %d\r\n\r\n" % N + OK_BODY,
    "bare LF in the target": b"GET /v1/models\nX: y HTTP/1.1\r\nHost: x\r\n\r\n",
    # RFC 9112 6.1 / 6.3 item 3: CL with TE -- reject (and close)
    "content-length and transfer-encoding": POST
    + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % N
    + b"%x\r\n" % N
    + OK_BODY
    + b"\r\n0\r\n\r\n",
    # RFC 9110 8.6 / RFC 9112 6.3 item 5: differing Content-Length values are unrecoverable
    "two different content-lengths": POST + b"Content-Length: 5\r\nContent-Length: %d\r\n\r\n" % N + OK_BODY,
    # RFC 9110 8.6: Content-Length = 1*DIGIT
    "content-length with a sign": POST + b"Content-Length: +%d\r\n\r\n" % N + OK_BODY,
    "content-length with an underscore": POST + b"Content-Length: 8_3\r\n\r\n" + OK_BODY,
    "content-length not a number": POST + b"Content-Length: abc\r\n\r\n" + OK_BODY,
    # RFC 9112 6.3 item 4: TE in a request whose final coding is not chunked -> 400
    "transfer-encoding xchunkedx": POST
    + b"Transfer-Encoding: xchunkedx\r\n\r\n"
    + b"%x\r\n" % N
    + OK_BODY
    + b"\r\n0\r\n\r\n",
    "transfer-encoding gzip": POST + b"Transfer-Encoding: gzip\r\n\r\n" + OK_BODY,
    # RFC 9112 5.1: whitespace between field name and colon MUST be rejected with 400
    "space before the colon": POST
    + b"Transfer-Encoding : chunked\r\n\r\n"
    + b"%x\r\n" % N
    + OK_BODY
    + b"\r\n0\r\n\r\n",
    # RFC 9112 5.2: obs-fold: reject with 400 (or replace by SP: this proxy rejects)
    "obs-fold line": POST + b"X-A: a\r\n b\r\nContent-Length: %d\r\n\r\n" % N + OK_BODY,
    # RFC 9112 5: field-line = field-name ":" OWS field-value OWS
    "header line without a colon": POST + b"X-A a\r\nContent-Length: %d\r\n\r\n" % N + OK_BODY,
    # RFC 9112 7.1: chunk-size = 1*HEXDIG
    "chunk size 0x": POST + b"Transfer-Encoding: chunked\r\n\r\n0x%x\r\n" % N + OK_BODY + b"\r\n0\r\n\r\n",
    "chunk size with a sign": POST + b"Transfer-Encoding: chunked\r\n\r\n+%x\r\n" % N + OK_BODY + b"\r\n0\r\n\r\n",
    "chunk size with an underscore": POST + b"Transfer-Encoding: chunked\r\n\r\n5_3\r\n" + OK_BODY + b"\r\n0\r\n\r\n",
    # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    "chunk data without its CRLF": POST + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % N + OK_BODY + b"XX0\r\n\r\n",
    # RFC 9112 3.2: more than one Host -> 400; issue 13 item 6: two Authorization headers
    "two host headers": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "two authorization headers": POST
    + b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\nContent-Length: %d\r\n\r\n" % N
    + OK_BODY,
    # RFC 9112 3.2: HTTP/1.1 without Host -> 400
    "no host": b"GET /v1/models HTTP/1.1\r\n\r\n",
    "not HTTP": b"HELLO\r\n\r\n",
}


@pytest.fixture(scope="module")
def uvicorns() -> Iterator[Uvicorns]:
    """One uvicorn per parser for the whole module: port, and what it was asked ("re:" prompts)."""
    with contextlib.ExitStack() as stack:
        yield {http: stack.enter_context(uvicorn_upstream(http)) for http in PARSERS}


@asynccontextmanager
async def in_front_of(kind: str, uvicorns: Uvicorns) -> AsyncIterator[tuple[int, Callable[[], int]]]:
    """The proxy in front of the upstream ``kind``: its port, and how many requests that upstream
    has received since."""
    if kind == "stub":
        async with running(StubConfig()) as (_proxy, port, stub):
            yield port, lambda: int(stub.counters.get("requests", 0))
        return
    up, seen = uvicorns[kind]
    before = len(seen)
    async with proxy_for(up) as port:
        yield port, lambda: len(seen) - before


async def exchange(port: int, data: bytes) -> bytes:
    """Everything the proxy sends until it closes the connection (5 s at most)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(data)
        await w.drain()
        return await asyncio.wait_for(r.read(), 5)  # read() returns at EOF: the proxy closed
    finally:
        w.close()


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("case", list(CASES))
def test_malformed_request_is_400_and_closes(case: str, upstream: str, uvicorns: Uvicorns) -> None:
    async def go() -> None:
        async with in_front_of(upstream, uvicorns) as (port, forwarded):
            got = await exchange(port, CASES[case] + NEXT)
            assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got[:200]
            assert got.count(b"HTTP/1.1 ") == 1  # nothing after it was taken as a request
            assert b'"invalid_request_error"' in got
            assert forwarded() == 0  # never forwarded

    asyncio.run(go())


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_control_valid_framings_are_answered(upstream: str, uvicorns: Uvicorns) -> None:
    """The same shapes, well-formed: answered (so the tests above cannot pass on a dead proxy)."""

    async def go() -> None:
        async with in_front_of(upstream, uvicorns) as (port, forwarded):
            chunked = POST + b"Transfer-Encoding: chunked\r\n\r\n%x;ext=1\r\n" % N + OK_BODY + b"\r\n0\r\n\r\n"
            plain = POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % N + OK_BODY
            got = await exchange(port, chunked + plain)
            assert got.count(b"HTTP/1.1 200 OK\r\n") == 2, got[:300]
            assert forwarded() == 1  # the second one is a hit
            assert CHAT  # same module as the proxy tests

    asyncio.run(go())


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_head_over_64k_is_431(upstream: str, uvicorns: Uvicorns) -> None:
    async def go() -> None:
        async with in_front_of(upstream, uvicorns) as (port, forwarded):
            got = await exchange(port, POST + b"X-Big: " + b"a" * (66 << 10) + b"\r\n\r\n")
            assert got.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), got[:200]
            assert forwarded() == 0

    asyncio.run(go())
