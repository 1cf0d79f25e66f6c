"""A scripted stand-in for the benchmark's HTTP transport, on an event loop with virtual time.

``VirtualTimeLoop``: an asyncio event loop whose clock (``loop.time()``) stands still while any
task can run and, when every task waits, jumps straight to the next timer instead of sleeping.
``asyncio.sleep``, ``asyncio.wait_for`` and the runner's own rate delays then take no real time,
and every timestamp taken with ``clock=loop.time`` is exact: with delays that are binary
fractions (0.25, 0.125, ...) the arithmetic has no rounding either, so tests assert whole values.

``ScriptedServer``: the replies the runner gets, in the order its requests are sent, each a
head after a delay, then body pieces each after its own delay (what a real server's network
reads would deliver), or a failure. Its ``connect`` is the runner's ``connect`` seam.
"""

from __future__ import annotations

import asyncio
import json
import selectors
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vllmtune.bench.http import HttpError, Response

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("every task waits and no timer is due: the script never answers")
        self._loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """See the module docstring."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(make: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    """``make(loop)`` -> a coroutine, run to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(make(loop))
    finally:
        loop.close()


def sse(*objs: dict[str, Any] | str) -> bytes:
    """Server-sent events as vLLM frames them: ``data: {json}`` (or ``data: [DONE]``), a blank line each."""
    return b"".join(b"data: " + (o.encode() if isinstance(o, str) else json.dumps(o).encode()) + b"\n\n" for o in objs)


@dataclass
class Reply:
    """One scripted answer. ``head_after``: seconds from the request to the status line;
    ``pieces``: (seconds after the previous event, bytes) delivered by ``chunks`` one per read,
    or joined by ``body``; ``fail``: raised instead of the head (``ConnectionRefusedError()``)
    or, with ``fail_after_pieces``, after the pieces (a stream cut short)."""

    status: int = 200
    head_after: float = 0.0
    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    fail: BaseException | None = None
    fail_after_pieces: bool = False


@dataclass
class Sent:
    """A request the runner sent: when (virtual seconds), method, path, JSON body, header block."""

    at: float
    method: str
    path: str
    body: Any
    headers: bytes


class ScriptedServer:
    """Hands out the replies in request order; records every request and connection."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = deque(replies)
        self.sent: list[Sent] = []
        self.connections: list[FakeTransport] = []

    def connect(self, host: str, port: int, timeout: float) -> FakeTransport:
        conn = FakeTransport(self, (host, port, timeout))
        self.connections.append(conn)
        return conn


class FakeTransport:
    """A :class:`vllmtune.bench.http.Transport` that plays the server's script."""

    def __init__(self, server: ScriptedServer, where: tuple[str, int, float]) -> None:
        self.server = server
        self.where = where
        self.closed = 0
        self._reply: Reply | None = None

    async def send(self, method: str, path: str, body: bytes = b"", headers: bytes = b"") -> Response:
        loop = asyncio.get_running_loop()
        self.server.sent.append(Sent(loop.time(), method, path, json.loads(body) if body else None, headers))
        reply = self._reply = self.server.replies.popleft()
        await asyncio.sleep(reply.head_after)
        if reply.fail is not None and not reply.fail_after_pieces:
            raise reply.fail
        headers_ = {"transfer-encoding": "chunked", **reply.headers} if reply.status == 200 else dict(reply.headers)
        return Response(reply.status, headers_)

    async def _pieces(self) -> AsyncIterator[bytes]:
        reply = self._reply
        assert reply is not None
        for delay, data in reply.pieces:
            await asyncio.sleep(delay)
            yield data
        if reply.fail is not None:
            raise reply.fail

    async def body(self, resp: Response) -> bytes:
        return b"".join([piece async for piece in self._pieces()])

    def chunks(self, resp: Response) -> AsyncIterator[bytes]:
        return self._pieces()

    def close(self) -> None:
        self.closed += 1


def cut_short() -> HttpError:
    """What the real transport raises when a stream breaks off."""
    return HttpError("stream cut short (ConnectionResetError)")
