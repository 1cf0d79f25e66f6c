"""cache.server called directly, without sockets: default_max_connections from the open-file
limit, and ProxyProtocol driven through asyncio's Protocol calls over a recording transport
(RFC 9112: a bare LF in the head is a 400 and the connection closes after the answer; an
HTTP/1.0 request is answered and closed; over the connection limit, a 503)."""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import pytest

from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig
from vllmtune.cache.server import ProxyProtocol, default_max_connections


@pytest.mark.parametrize(
    ("soft", "want"),
    [(1024, 496), (20000, 4096), (40, 16), (resource.RLIM_INFINITY, 4096)],
)
def test_default_max_connections_is_half_the_file_limit_clamped(
    monkeypatch: pytest.MonkeyPatch, soft: int, want: int
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (soft, resource.RLIM_INFINITY))
    assert default_max_connections() == want


def test_default_max_connections_without_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_which: int) -> tuple[int, int]:
        raise OSError("no limit")

    monkeypatch.setattr(resource, "getrlimit", fail)
    assert default_max_connections() == 1024


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.out.append(b"<EOF>")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _exchange(request: bytes, max_connections: int | None = None) -> tuple[bytes, bool, int]:
    """What the proxy writes for ``request``, whether it closed, the connections counted after."""

    async def run() -> tuple[bytes, bool, int]:
        proxy = Proxy(ProxyConfig(upstream="http://127.0.0.1:9", api_key=None), MemoryBackend())
        if max_connections is not None:
            proxy.max_connections = max_connections
        proto, t = ProxyProtocol(proxy), _Transport()
        proto.connection_made(t)
        if not t.closed:
            proto.data_received(request)
            for _ in range(50):
                await asyncio.sleep(0)
        out, closed = b"".join(t.out), t.closed
        proto.connection_lost(None)
        return out, closed, proxy.connections

    return asyncio.run(run())


def test_a_bare_lf_head_is_a_400_then_eof() -> None:
    body = b'{"error": {"message": "bare LF or CR in the request head", "type": "invalid_request_error", "code": 400}}'
    assert _exchange(b"GET /cache/stats HTTP/1.1\nHost: x\n\n") == (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s<EOF>"
        % (len(body), body),
        False,  # lingering: the rest of the input is read and dropped before the close
        0,
    )


def test_two_authorization_headers_are_a_400() -> None:
    out, _, _ = _exchange(b"GET /cache/stats HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n")
    body = b'{"error": {"message": "more than one authorization header", "type": "invalid_request_error", "code": 400}}'
    assert out == b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s<EOF>" % (
        len(body),
        body,
    )


def test_an_http10_request_is_answered_and_closed() -> None:
    out, closed, connections = _exchange(b"GET /cache/stats HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d" % len(body)
    stats = json.loads(body)
    assert {k: stats[k] for k in ("hits", "misses", "backend", "entries")} == {
        "hits": 0,
        "misses": 0,
        "backend": "memory",
        "entries": 0,
    }
    assert (closed, connections) == (True, 0)


def test_over_the_connection_limit_is_a_503_and_a_close() -> None:
    body = b'{"error": {"message": "too many connections", "type": "server_busy", "code": 503}}'
    assert _exchange(b"", max_connections=0) == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body),
        True,
        0,
    )
