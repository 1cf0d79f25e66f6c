"""A minimal asyncio HTTP/1.1 client: one keep-alive connection per concurrent worker.

Why not httpx/aiohttp: a benchmark client must not be the bottleneck. On a 2-core machine a
general-purpose client tops out well below the server it measures; this one does only what
an OpenAI-compatible endpoint needs (Content-Length and chunked bodies, keep-alive).

The seam for tests: the runner and :func:`get` talk to a :class:`Transport` (send a request,
get its head, then its body whole or as pieces) made by a :data:`Connect` function;
:class:`Connection` is the real one, over a socket. A test passes a scripted transport and
drives the runner without sockets (``tests/support/fake_transport.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection broke or the peer spoke something that is not HTTP/1.1."""


def authority(host: str, port: int) -> str:
    """``host:port`` as a URL and a Host header write it: an IPv6 literal in brackets
    (RFC 3986 3.2.2, RFC 9110 7.2)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Endpoint:
    """Where requests go: ``http://host:port`` plus a path prefix (``/v1``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: expected http://HOST:PORT[/v1]")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.base = "http://" + authority(self.host, self.port)


class Response:
    """Status line and headers of a response whose body is read separately."""

    __slots__ = ("chunked", "headers", "length", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        length = headers.get("content-length")
        self.length = int(length) if length is not None else None


class Transport(Protocol):
    """One client connection as the runner uses it: a request out, then the response's events
    (its head from :meth:`send`, its body from :meth:`body` or, piece by piece as they arrive,
    from :meth:`chunks`). Raises :class:`HttpError` (broken or not HTTP) or ``OSError`` (refused)."""

    async def send(self, method: str, path: str, body: bytes = b"", headers: bytes = b"") -> Response:
        """Send a request and read the status line and headers."""

    async def body(self, resp: Response) -> bytes:
        """The whole body of ``resp``."""

    def chunks(self, resp: Response) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (de-chunked)."""

    def close(self) -> None:
        """Drop the connection (the next :meth:`send` opens a new one)."""


# Opens a transport to (host, port) with a read timeout in seconds: Connection, or a test's fake.
Connect = Callable[[str, int, float], Transport]


class Connection:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, host: str, port: int, timeout: float = 600.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._host_header = authority(host, port).encode()

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, method: str, path: str, body: bytes = b"", headers: bytes = b"") -> Response:
        """Send a request and read the status line and headers."""
        if self.writer is None or self.writer.is_closing():
            await self._open()
        assert self.writer is not None and self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\n".encode()
            + b"Host: "
            + self._host_header
            + b"\r\n"
            + headers
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        self.writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.writer.write(body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HttpError(f"connection closed before a response ({type(exc).__name__})") from None
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self.close()
            raise HttpError(f"not an HTTP response: {lines[0][:80]!r}") from None
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return Response(status, hdrs)

    async def body(self, resp: Response) -> bytes:
        """The whole body of ``resp``."""
        if resp.chunked:
            return b"".join([c async for c in self.chunks(resp)])
        assert self.reader is not None
        try:
            if resp.length is None:  # no length: read to close
                data = await self.reader.read()
                self.close()
                return data
            data = await self.reader.readexactly(resp.length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HttpError(f"body cut short ({type(exc).__name__})") from None
        if resp.headers.get("connection", "").lower() == "close":
            self.close()
        return data

    async def chunks(self, resp: Response) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, de-chunked: one piece per network read (so pieces that
        arrived together share one timestamp, as they should)."""
        reader = self.reader
        assert reader is not None
        if not resp.chunked:
            yield await self.body(resp)
            return
        buf = b""
        pos = 0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise HttpError("stream ended without its last chunk")
                buf = buf[pos:] + data if pos < len(buf) else data
                pos = 0
                out: list[bytes] = []
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        break
                    size = int(buf[pos:eol].split(b";", 1)[0], 16)
                    if size == 0:
                        if len(buf) < eol + 4:
                            break  # wait for the final CRLF
                        if out:
                            yield b"".join(out)
                        if len(buf) > eol + 4:  # bytes past the response: do not trust the connection
                            self.close()
                        return
                    if len(buf) < eol + 2 + size + 2:
                        break
                    out.append(buf[eol + 2 : eol + 2 + size])
                    pos = eol + 2 + size + 2
                if out:
                    yield b"".join(out)
        except (ConnectionError, ValueError) as exc:
            self.close()
            raise HttpError(f"stream cut short ({type(exc).__name__})") from None


async def get(url: str, timeout: float = 5.0, connect: Connect | None = None) -> tuple[int, bytes]:
    """One-off GET (for /health, /v1/models, /metrics); (0, b'') when unreachable."""
    ep = Endpoint(url)
    conn = (connect or Connection)(ep.host, ep.port, 600.0)
    path = urlsplit(url).path or "/"
    try:
        resp = await asyncio.wait_for(conn.send("GET", path), timeout)
        return resp.status, await asyncio.wait_for(conn.body(resp), timeout)
    except (OSError, HttpError, asyncio.TimeoutError):
        return 0, b""
    finally:
        conn.close()
