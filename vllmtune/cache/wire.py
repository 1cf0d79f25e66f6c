"""What every layer of the cache proxy shares on the wire: the headers never relayed, canned
answers, :class:`ClientSide`, what the cache policy may ask of the client connection it
answers (is it reading, does it speak HTTP/1.0, is it still there), :class:`ProxyConfig`, and
:class:`Dispatcher`, what the server side asks of the proxy it serves (so that the server and
the policy need not import :mod:`vllmtune.cache.proxy`, which imports them).

Imports nothing of the proxy's other layers (server, policy, upstream, sse): each of them imports it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

# Never forwarded in either direction (RFC 9110 7.6.1), plus what the proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
    }
)
# a cacheable request goes upstream in identity encoding: a compressed body could not be cached
NOT_FORWARDED_CACHED = HOP_BY_HOP | {b"accept-encoding"}
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
MAX_HEAD = 64 << 10  # bytes of a request or response head, on either side

Write = Callable[[bytes], None]  # sends bytes to the client (a ClientSide's ``write``, or any callable in tests)


def response(status: int, body: bytes, headers: bytes = b"", ctype: bytes = b"application/json") -> bytes:
    """A whole HTTP/1.1 response with a Content-Length body; ``headers`` are ready CRLF lines."""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
        % (status, REASONS.get(status, b"Status"), ctype, len(body), headers)
        + body
    )


def error(status: int, message: str, kind: str = "upstream_error", x_cache: bytes = b"BYPASS") -> bytes:
    """An OpenAI-shaped error response (``x-cache`` header unless ``x_cache`` is empty)."""
    body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
    return response(status, body, b"x-cache: " + x_cache + b"\r\n" if x_cache else b"")


def mark_cached(json_text: str) -> bytes:
    """Add "cached": true to a JSON object's text (no re-serialisation on the hot path)."""
    if json_text.startswith("{") and json_text[1:].lstrip() != "}":
        return ('{"cached":true,' + json_text[1:]).encode()
    return json_text.encode()


class ClientAbort(Exception):
    """The response cannot be completed (upstream broke off mid-stream): drop the client connection."""


class ClientSide:
    """The client connection a response goes to, as the cache policy sees it. The server side
    (:class:`vllmtune.cache.server.ProxyProtocol`) is one; its bound ``write`` is what the policy
    gets, so a plain callable (a test's ``list.append``) works as well: then the client always
    reads, speaks HTTP/1.1 and never leaves."""

    transport: asyncio.Transport | None = None
    paused = False  # the client does not read: its answers wait
    http10 = False  # the current request's client speaks HTTP/1.0: close-delimited bodies

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def drained(self) -> None:
        """Until the client has read what was written (or is gone)."""
        raise NotImplementedError


def _client(write: Write) -> ClientSide | None:
    proto = getattr(write, "__self__", None)
    return proto if isinstance(proto, ClientSide) else None


def drain_for(write: Write) -> Coroutine[Any, Any, None] | None:
    """Wait-until-drained for a client that is not reading, else None."""
    c = _client(write)
    if c is not None and c.paused:
        return c.drained()
    return None


def is_http10(write: Write) -> bool:
    """The client speaks HTTP/1.0 (no chunked coding: the body ends when the proxy closes)."""
    c = _client(write)
    return c is not None and c.http10


def client_gone(write: Write) -> bool:
    """The client has disconnected. (A cacheable miss is read to its end regardless: identical
    requests may be waiting for it, and it gets stored.)"""
    c = _client(write)
    return c is not None and c.transport is None


@dataclass
class ProxyConfig:
    """How the proxy behaves (see ``python -m vllmtune.cache --help``)."""

    upstream: str
    host: str = "127.0.0.1"
    port: int = 8080
    ttl: int = 86400
    max_temperature: float = 0.1
    skip_pii: bool = True
    missing_temperature_is_deterministic: bool = False
    usd_per_1k_tokens: float = 0.0
    upstream_timeout: float = 600.0  # connect, and then silence between two reads of a response
    share_across_tenants: bool = False  # one cache for every API key (off: scoped per tenant)
    max_body_bytes: int = 32 << 20
    header_timeout: float = 10.0  # a request head must be complete this long after its first byte
    body_timeout: float = 30.0  # silence allowed within a request body
    idle_timeout: float = 60.0  # a keep-alive connection with no request in flight
    max_connections: int = 0  # client connections at once (0: half the open-file limit, at most 4096)
    # the key vLLM checks (``Authorization: Bearer KEY``); set, the proxy checks it too before a hit
    api_key: str | None = field(default_factory=lambda: os.environ.get("VLLM_API_KEY") or None, repr=False)


class Dispatcher(Protocol):
    """What the server side (:mod:`vllmtune.cache.server`) drives: :class:`vllmtune.cache.proxy.Proxy`."""

    cfg: ProxyConfig
    connections: int  # client connections open, kept by the server side
    max_connections: int

    def dispatch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, write: Write
    ) -> Coroutine[Any, Any, Any] | None:
        """Answer a complete request: None when answered at once, else the coroutine that answers."""

    async def close(self) -> None:
        """Release the upstream pool and the backend once the server stopped."""
