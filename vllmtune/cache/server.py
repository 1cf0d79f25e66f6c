"""The server side of the cache proxy: HTTP/1.1 framing by h11 (RFC 9112), what one client may
hold (head/body/idle timeouts, a connection limit, write back-pressure, bounded read-ahead), and
``serve``. A complete request goes to :meth:`Proxy.dispatch` (the cache policy) with the
connection's bound ``write``; nothing here knows about caching.

Imports neither the proxy nor the policy nor the upstream pool: it drives a
:class:`~vllmtune.cache.wire.Dispatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable

import h11

from vllmtune.cache.wire import MAX_HEAD, ClientAbort, ClientSide, Dispatcher, error

log = logging.getLogger("vllmtune.cache")

LINGER = 2.0  # seconds a connection refused with an error is still read (and dropped) before it closes
TINY_CHUNKS, TINY_CHUNK_BYTES = 256, 256  # beyond 256 chunks, chunks must average >= 256 bytes
WRITE_HIGH = 256 << 10  # bytes buffered for a client before its connection stops being read
BACKLOG_MAX = 1 << 20  # pipelined bytes read ahead while an answer is in flight


def default_max_connections() -> int:
    """Half the open-file limit (the other half: upstream and Redis connections), 16..4096."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, (soft - 32) // 2))


class ProxyProtocol(asyncio.Protocol, ClientSide):
    """HTTP/1.1 server side, framed by h11 (RFC 9112): keep-alive, pipelining (answered in order),
    ``Expect: 100-continue``, Content-Length and chunked request bodies, write flow control.

    Stricter than h11 where a proxy must be (RFC 9112 5.2, 6.1, 6.3; RFC 9110 8.6): a bare LF or CR
    in the head, an obs-fold line, Content-Length with Transfer-Encoding, and a repeated
    Content-Length, Transfer-Encoding, Host or Authorization are a 400 and a closed connection --
    whatever an upstream would make of them, it never sees them.
    """

    def __init__(self, proxy: Dispatcher) -> None:
        self.proxy = proxy
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.responded = False
        self.close_after = False
        self.continued = False
        self.http10 = False  # the current request's client speaks HTTP/1.0: close-delimited bodies
        self.backlog = 0  # bytes received while an answer is in flight
        self.paused = False  # the client does not read: its answers wait, its requests are not read
        self._backlog_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._req: h11.Request | None = None
        self._headers: list[tuple[bytes, bytes]] = []  # the request's, listed once (h11's are slow to iterate)
        self._body: list[bytes] = []
        self._size = 0
        self._pieces = 0
        self._chunked = False
        self.lingering = False  # answered an error: reading only to drop what the client still sends
        self._counted = False
        # one timer per connection (re-armed by moving its deadline; nothing is scheduled per request)
        self._kind: str | None = None  # idle / head / body: what the client is late with
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = t
        p = self.proxy
        p.connections += 1
        self._counted = True
        if p.connections > p.max_connections:
            self.write(error(503, "too many connections", "server_busy", b""))
            t.close()
            return
        t.set_write_buffer_limits(high=WRITE_HIGH)
        self._arm("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._body = []
        if self._counted:
            self._counted = False
            self.proxy.connections -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    # -- flow control: a client that does not read gets no more answers written --------------------------

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()
        if self.transport is not None:
            self.transport.resume_reading()
            if self.task is None:
                self._next()

    def _wake(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drained(self) -> None:
        """Until the client has read what was written (or is gone)."""
        if self.paused and self.transport is not None:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    # -- timeouts -------------------------------------------------------------------------------------------

    def _arm(self, kind: str | None) -> None:
        """Expect ``kind`` (idle: the next request; head: the rest of a head, not extended by
        trickled bytes; body: more body); None: the proxy is answering, no client timeout."""
        if kind == self._kind and kind != "body":
            return
        self._kind = kind
        if kind is None:
            return
        cfg = self.proxy.cfg
        seconds = cfg.idle_timeout if kind == "idle" else cfg.header_timeout if kind == "head" else cfg.body_timeout
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check_timer)

    def _check_timer(self) -> None:
        self._timer = None
        if self.transport is None or self._kind is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._check_timer)
            return
        if self._kind == "idle":
            self.transport.close()
        else:
            self._fail(408, f"request {self._kind} not received in time")

    def eof_received(self) -> bool | None:
        if self.lingering:
            return False  # the client has read the answer and closed: close
        self.conn.receive_data(b"")
        if self.task is None:
            self._next()
        return True  # half-close: answer what was asked, then close

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.lingering:
            return
        try:
            self.conn.receive_data(data)
        except h11.RemoteProtocolError:  # data after the client's EOF
            self.transport.close()
            return
        if self.task is None:
            self._next()
        else:
            self.backlog += len(data)
            if self.backlog > BACKLOG_MAX and not self._backlog_paused:
                self._backlog_paused = True  # pipelined requests wait in the kernel, not here
                self.transport.pause_reading()

    def write(self, data: bytes) -> None:
        self.responded = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` and close -- lingering (RFC 9112 9.6): the rest of what the client
        sent is read and dropped for up to LINGER seconds, so that closing with unread input
        does not reset the connection before the client has read the answer."""
        self.write(error(status, message, "invalid_request_error", b""))
        self._body = []
        self._kind = None
        t = self.transport
        if t is None or self.lingering:
            return
        self.lingering = True
        if t.can_write_eof():
            t.write_eof()
            if self.paused:
                t.resume_reading()
            asyncio.get_running_loop().call_later(LINGER, t.close)
        else:
            t.close()

    def _next(self) -> None:
        self.backlog = 0
        if self._backlog_paused:
            self._backlog_paused = False
            if self.transport is not None and not self.paused:
                self.transport.resume_reading()
        while self._step():
            pass

    def _head_check(self) -> str | None:
        """What RFC 9112 lets a server reject and h11 tolerates, in the head about to be parsed."""
        raw = self.conn.trailing_data[0]
        end = raw.find(b"\r\n\r\n")
        head = raw if end < 0 else raw[: end + 2]
        if len(head) > MAX_HEAD:
            return "request head too large"
        if _BARE_EOL.search(head):
            return "bare LF or CR in the request head"
        if _OBS_FOLD.search(head):
            return "obsolete line folding in the request head"
        return None

    def _step(self) -> bool:
        """Start answering the next complete request; True if it was answered synchronously and
        another one may follow."""
        conn = self.conn
        if self.transport is None or self.paused or self.lingering:
            return False
        if self._req is None and conn.their_state is h11.IDLE:
            bad = self._head_check()
            if bad is not None:
                self._fail(431 if "too large" in bad else 400, bad)
                return False
        limit = self.proxy.cfg.max_body_bytes
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = 431 if exc.error_status_hint == 431 else 400
                self._fail(status, "request head too large" if status == 431 else f"malformed request: {exc}")
                return False
            if ev is h11.NEED_DATA:
                if self._req is not None:
                    self._arm("body")
                else:
                    self._arm("head" if conn.trailing_data[0] else "idle")
                if conn.they_are_waiting_for_100_continue and not self.continued and self._req is not None:
                    self.continued = True
                    self.write(conn.send(_CONTINUE) or b"")
                return False
            if isinstance(ev, h11.ConnectionClosed):
                self.transport.close()
                return False
            if ev is h11.PAUSED:
                return False
            if isinstance(ev, h11.Request):
                headers = list(ev.headers)
                problem = _request_head_problem(headers)
                if problem is not None:
                    self._fail(400, problem)
                    return False
                self._req, self._headers, self._body, self._size, self._pieces = ev, headers, [], 0, 0
                self._chunked = any(k == b"transfer-encoding" for k, _ in headers)
            elif isinstance(ev, h11.Data):
                self._size += len(ev.data)
                self._pieces += 1
                if self._size > limit:
                    self._fail(413, "request body too large")
                    return False
                if self._chunked and self._pieces > TINY_CHUNKS and self._size < self._pieces * TINY_CHUNK_BYTES:
                    # parsing costs per chunk: a body in 1-byte chunks would hold the event loop
                    self._fail(400, f"chunked body in too many chunks of under {TINY_CHUNK_BYTES} bytes")
                    return False
                self._body.append(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                break
        req = self._req
        assert req is not None
        self._arm(None)
        body = b"".join(self._body) if len(self._body) != 1 else bytes(self._body[0])
        self._req, self._body = None, []
        # keep-alive as h11 decides it (RFC 9112 9.3): HTTP/1.1 without "Connection: close"
        headers, self._headers = self._headers, []
        self.close_after = req.http_version != b"1.1" or _wants_close(headers)
        self.http10 = req.http_version == b"1.0"
        if not self.close_after:
            # the next request is parsed by a fresh h11 state machine fed what followed this one
            # (a third of the cost of walking this one through a placeholder response)
            data, closed = conn.trailing_data
            self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            if data:
                self.conn.receive_data(bytes(data))
            if closed:
                self.conn.receive_data(b"")
        self.continued = False
        self.responded = False
        try:
            pending = self.proxy.dispatch(req.method, req.target, headers, body, self.write)
        except Exception as exc:  # a bug: answer, log, keep serving
            log.error("proxy error (a bug): %s", type(exc).__name__, exc_info=exc)
            if not self.responded:
                self.write(error(502, "proxy error", "proxy_error", b""))
            pending = None
        if pending is None:  # answered synchronously (a memory hit, /metrics...)
            if self.close_after:
                if self.transport is not None:
                    self.transport.close()
                return False
            return self.transport is not None
        self.task = asyncio.ensure_future(pending)
        self.task.add_done_callback(self._done)
        return False

    def _done(self, task: asyncio.Task[None]) -> None:
        self.task = None
        if task.cancelled():
            if self.transport is not None:
                self.transport.close()
            return
        self._after(task.exception())

    def _after(self, exc: BaseException | None) -> None:
        """One response is over: next pipelined request, or close."""
        if exc is not None:
            if not isinstance(exc, ClientAbort):
                log.error("proxy error: %r", exc, exc_info=exc)
                if not self.responded:
                    self.write(error(502, "proxy error", "proxy_error", b""))
            if self.responded and self.transport is not None:
                self.transport.close()  # a half-sent response: the connection cannot be reused
                return
        if self.close_after:
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is not None:
            self._next()


_BARE_EOL = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_OBS_FOLD = re.compile(rb"\n[ \t]")
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
_ONCE = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"authorization",
        b"api-key",
        b"x-api-key",
        b"openai-organization",
        b"openai-project",
    }
)


def _wants_close(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A ``Connection`` header with the ``close`` option (names come lower-cased from h11)."""
    return any(k == b"connection" and b"close" in (t.strip().lower() for t in v.split(b",")) for k, v in headers)


def _request_head_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a head h11 accepts must be refused by a proxy (a 400), else None."""
    seen: set[bytes] = set()
    for k, _ in headers:
        if k in _ONCE:
            if k in seen:
                return f"more than one {k.decode()} header"
            seen.add(k)
    if b"content-length" in seen and b"transfer-encoding" in seen:
        return "both content-length and transfer-encoding"
    return None


async def serve(proxy: Dispatcher, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
    """Run the proxy until ``stop`` is set; ``ready(port)`` is called once it listens."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ProxyProtocol(proxy), proxy.cfg.host, proxy.cfg.port, backlog=1024, reuse_address=True
    )
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        await proxy.close()
