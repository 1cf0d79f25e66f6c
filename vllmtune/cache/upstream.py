"""The upstream side of the cache proxy: a keep-alive connection pool to one vLLM, its answers
framed by h11 (the one HTTP/1.1 parser and chunk decoder of the package, as on the server side).

A pooled connection is reused only when nothing is pending on it: not closed by the upstream
while idle (its keep-alive timeout), and not one byte the proxy did not ask for -- in the
StreamReader's buffer or still in the kernel (a non-blocking ``MSG_PEEK`` before each reuse).
An answer that starts before the request was fully written, a second response, or anything
after the end of an answer closes the connection: it is never reused, so no later request can
be answered with bytes meant for another. HTTP/1.1 cannot tell an unasked response that arrives
*after* the next request was sent from that request's answer; so a connection is reused only
once it has been quiet for ``REUSE_AFTER`` since its last answer (the pool is FIFO: the
connection idle longest goes first; a burst opens more connections instead of waiting). An
unasked response later than that is indistinguishable from an answer. A pooled connection that
closes before a byte of answer is retried once on a fresh one.

Knows nothing of caching: imports only :mod:`vllmtune.cache.wire` (and the URL redaction).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import h11

from vllmtune.cache.backends import redact
from vllmtune.cache.wire import HOP_BY_HOP, MAX_HEAD, REASONS

POOL_MAX = 256  # idle connections kept
# seconds a connection must be quiet after an answer before it carries another request: an
# upstream that sends an unasked response within this is caught (vLLM takes longer than this
# to answer anyway, so the pool stays a few connections wide)
REUSE_AFTER = 0.05
_END = h11.EndOfMessage()


class UpstreamError(Exception):
    """The upstream broke off, spoke something that is not HTTP, or timed out (``timeout``)."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class _Watchdog:
    """Aborts a connection after ``timeout`` seconds without progress (one timer per response;
    cheaper than wrapping each read in ``asyncio.wait_for``)."""

    __slots__ = ("fired", "handle", "loop", "timeout", "transport", "until")

    def __init__(self, transport: asyncio.BaseTransport, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport = transport
        self.timeout = timeout
        self.until = self.loop.time() + timeout
        self.fired = False
        self.handle = self.loop.call_at(self.until, self._check)

    def poke(self) -> None:
        self.until = self.loop.time() + self.timeout

    def _check(self) -> None:
        if self.loop.time() >= self.until:
            self.fired = True
            self.transport.abort()  # type: ignore[attr-defined]
        else:
            self.handle = self.loop.call_at(self.until, self._check)

    def cancel(self) -> None:
        self.handle.cancel()


class _Conn:
    """One upstream connection: its socket, the stream pair over it, and the h11 client state
    that frames its answers."""

    __slots__ = ("h11", "idle_since", "reader", "received", "sock", "writer")

    def __init__(self, sock: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sock, self.reader, self.writer = sock, reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.received = 0  # bytes of the current answer
        self.idle_since = 0.0  # time.monotonic() of its last answer's end

    def stale(self) -> bool:
        """Closed by the upstream while idle (its keep-alive timeout), or it sent something unasked
        -- already read by asyncio, or still in the kernel (a late extra response)."""
        r = self.reader
        if self.writer.is_closing() or r.at_eof() or r.exception() is not None or bool(getattr(r, "_buffer", b"")):
            return True
        try:
            self.sock.recv(1, socket.MSG_PEEK)  # non-blocking socket: b"" is EOF, a byte is unasked
        except BlockingIOError:
            return False  # nothing pending: usable
        except OSError:
            return True
        return True

    def close(self) -> None:
        self.writer.close()

    async def next_event(self, dog: _Watchdog) -> Any:
        conn = self.h11
        while True:
            ev = conn.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            data = await self.reader.read(65536)
            self.received += len(data)
            dog.poke()
            conn.receive_data(data)


class _UpstreamResponse:
    """Status line and headers of an upstream response; the body is read with :meth:`pieces`."""

    def __init__(self, up: Upstream, c: _Conn, dog: _Watchdog, ev: h11.Response, head_only: bool) -> None:
        self.up, self.c, self.dog = up, c, dog
        self.status, self.reason = ev.status_code, ev.reason or REASONS.get(ev.status_code, b"Status")
        self.headers: list[tuple[bytes, bytes]] = list(ev.headers)
        self.ctype = b"application/json"
        self.length: int | None = None
        self.chunked = False
        for k, v in self.headers:
            if k == b"content-type":
                self.ctype = v
            elif k == b"content-length":
                self.length = int(v)  # h11 checked it: 1*DIGIT, one value
            elif k == b"transfer-encoding":
                self.chunked = True  # h11 accepts only chunked
        if head_only or self.status in (204, 304):
            self.length, self.chunked = 0, False
        self.complete = False

    def relay_headers(self) -> bytes:
        """The upstream's own headers, minus hop-by-hop ones and content-type (set by the caller)."""
        return b"".join(
            k + b": " + v + b"\r\n" for k, v in self.headers if k not in HOP_BY_HOP and k != b"content-type"
        )

    async def read_all(self) -> bytes:
        return b"".join([p async for p in self.pieces()])

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives (de-chunked by h11), one piece per network read."""
        c, dog = self.c, self.dog
        conn = c.h11
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    data = await c.reader.read(65536)
                    c.received += len(data)
                    dog.poke()
                    conn.receive_data(data)
                    continue
                out: list[bytes] = []
                while isinstance(ev, h11.Data):
                    out.append(bytes(ev.data))
                    ev = conn.next_event()
                if out:
                    yield b"".join(out)
                if isinstance(ev, h11.EndOfMessage):
                    self.complete = True
                    return
                if ev is not h11.NEED_DATA:
                    raise UpstreamError(f"{self.up.url} sent an unexpected {type(ev).__name__} mid-answer")
                data = await c.reader.read(65536)
                c.received += len(data)
                dog.poke()
                conn.receive_data(data)
        except (h11.RemoteProtocolError, ConnectionError) as exc:
            if dog.fired:
                raise UpstreamError(f"{self.up.url} timed out mid-answer", timeout=True) from None
            if isinstance(exc, h11.RemoteProtocolError) and c.reader.at_eof():
                raise UpstreamError(f"{self.up.url} closed the stream before its end") from None
            raise UpstreamError(f"{self.up.url} broke off mid-answer ({exc})") from None
        finally:
            self.finish()

    def finish(self) -> None:
        """Give the connection back to the pool (complete response, nothing more sent) or close it."""
        self.dog.cancel()
        c = self.c
        conn = c.h11
        if (
            self.complete
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not conn.trailing_data[0]
            and not c.stale()
        ):
            conn.start_next_cycle()
            self.up.release(c)
        else:
            c.close()
        self.complete = False  # finish() is idempotent


class Upstream:
    """A keep-alive connection pool to one ``http://host:port[/prefix]``; answers framed by h11."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        shown = redact(url)  # what messages name: never a credential
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"upstream {shown!r}: the port is not a number 1-65535") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {shown!r}: expected http://HOST:PORT (https: put TLS in front of the proxy)")
        self.url = shown
        self.host, self.port = parts.hostname, port
        self.prefix = parts.path.rstrip("/").encode()
        self.timeout = timeout
        self.host_header = f"{self.host}:{self.port}".encode()
        self.reuse_after = REUSE_AFTER
        self._idle: deque[_Conn] = deque()  # oldest first

    def release(self, c: _Conn) -> None:
        if len(self._idle) < POOL_MAX:
            c.idle_since = time.monotonic()
            self._idle.append(c)
        else:
            c.close()

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()

    def take(self) -> _Conn | None:
        """The pooled connection idle longest, if it has been quiet for ``reuse_after`` and is still
        usable; else None (the unusable ones are closed on the way)."""
        idle = self._idle
        if not idle:
            return None
        ready = time.monotonic() - self.reuse_after
        while idle and idle[0].idle_since <= ready:
            c = idle.popleft()
            if not c.stale():
                return c
            c.close()
        return None

    async def _open(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        infos = _numeric(self.host, self.port) or await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        last: OSError = OSError(f"no address for {self.host}")
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last

    async def connect(self) -> _Conn:
        """A fresh connection (the proxy keeps its socket, to peek at it before a reuse)."""
        try:
            sock = await asyncio.wait_for(self._open(), self.timeout)
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        except asyncio.TimeoutError:
            raise UpstreamError(f"connecting to {self.url} timed out", timeout=True) from None
        except OSError as exc:
            raise UpstreamError(f"{self.url} is unreachable ({exc.strerror or exc})") from None
        return _Conn(sock, reader, writer)

    async def request(self, method: bytes, target: bytes, headers: bytes, body: bytes) -> _UpstreamResponse:
        """Send one request and read the final status line and headers (1xx interim answers are
        skipped). A pooled connection that closes before a byte of answer (the server's keep-alive
        timeout, seen too late) is retried once on a fresh connection."""
        if self.prefix and not target.startswith(self.prefix + b"/"):
            target = self.prefix + target
        head = (
            method
            + b" "
            + target
            + b" HTTP/1.1\r\nhost: "
            + self.host_header
            + b"\r\n"
            + headers
            + (b"content-length: %d\r\n\r\n" % len(body) if body or method not in (b"GET", b"HEAD") else b"\r\n")
        )
        # the head is written as is (its headers were validated by the server side); h11 only
        # needs to know a request of this method went out, to frame the answer
        placeholder = h11.Request(method=method, target=b"/", headers=[(b"host", b"x"), (b"content-length", b"0")])
        for attempt in (0, 1):
            c = self.take() if attempt == 0 else None
            reused = c is not None
            if c is None:
                c = await self.connect()
            c.h11.send(placeholder)
            c.h11.send(_END)
            c.received = 0
            transport = c.writer.transport
            dog = _Watchdog(transport, self.timeout)
            try:
                c.writer.write(head + body)
                while True:
                    ev = await c.next_event(dog)
                    if isinstance(ev, h11.InformationalResponse):
                        continue  # 100 Continue, 103 Early Hints...: not the answer
                    break
                if not isinstance(ev, h11.Response):
                    raise ConnectionResetError("closed")
                if transport.get_write_buffer_size():
                    # an answer to a request it has not read: an unasked response, never this answer
                    dog.cancel()
                    c.close()
                    raise UpstreamError(f"{self.url} answered before the request was sent in full")
            except (h11.RemoteProtocolError, ConnectionError) as exc:
                dog.cancel()
                c.close()
                if dog.fired:
                    raise UpstreamError(
                        f"{self.url} timed out: no answer in {self.timeout:g} s", timeout=True
                    ) from None
                if reused and attempt == 0 and c.received == 0:
                    continue
                if c.received == 0:
                    raise UpstreamError(f"{self.url} closed the connection without an answer") from None
                raise UpstreamError(f"{self.url} sent an invalid HTTP/1.1 answer ({exc})") from None
            return _UpstreamResponse(self, c, dog, ev, method == b"HEAD")
        raise AssertionError("unreachable")  # pragma: no cover


def _numeric(host: str, port: int) -> list[tuple[Any, Any, int, str, Any]]:
    """The address of a numeric host without a resolver round trip (the thread pool), else []."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    return []
