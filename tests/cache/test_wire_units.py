"""wire's ClientSide helpers called directly: drain_for, is_http10, client_gone look at the
connection behind a bound ``write``; a plain callable is a client that reads, speaks HTTP/1.1
and never leaves. ClientAbort is a plain Exception."""

from __future__ import annotations

import asyncio

import pytest

from vllmtune.cache.wire import ClientAbort, ClientSide, client_gone, drain_for, is_http10


class _Side(ClientSide):
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.drains = 0

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    async def drained(self) -> None:
        self.drains += 1


def test_a_plain_callable_reads_speaks_http11_and_stays() -> None:
    sent: list[bytes] = []
    assert drain_for(sent.append) is None
    assert is_http10(sent.append) is False
    assert client_gone(sent.append) is False


def test_helpers_read_the_client_side_behind_a_bound_write() -> None:
    side = _Side()
    assert client_gone(side.write) is True  # no transport: gone
    side.transport = object()  # type: ignore[assignment]
    assert client_gone(side.write) is False
    assert is_http10(side.write) is False
    side.http10 = True
    assert is_http10(side.write) is True
    assert drain_for(side.write) is None  # reading: nothing to wait for
    side.paused = True
    waiter = drain_for(side.write)
    assert waiter is not None
    asyncio.run(waiter)  # type: ignore[arg-type]
    assert side.drains == 1


def test_base_client_side_is_abstract_and_abort_is_an_exception() -> None:
    base = ClientSide()
    with pytest.raises(NotImplementedError):
        base.write(b"x")
    with pytest.raises(NotImplementedError):
        asyncio.run(base.drained())
    assert issubclass(ClientAbort, Exception)
    assert str(ClientAbort("upstream broke off")) == "upstream broke off"


def test_every_status_the_proxy_answers_has_its_rfc_9110_reason_phrase() -> None:
    from vllmtune.cache.wire import error, response

    reasons = {
        200: b"OK", 400: b"Bad Request", 404: b"Not Found", 408: b"Request Timeout", 413: b"Content Too Large",
        431: b"Request Header Fields Too Large", 500: b"Internal Server Error", 502: b"Bad Gateway",
        503: b"Service Unavailable", 504: b"Gateway Timeout",
    }  # fmt: skip
    for status, reason in reasons.items():
        assert response(status, b"").startswith(b"HTTP/1.1 %d %s\r\n" % (status, reason))
    body = b'{"error": {"message": "request head not received in time", "type": "invalid_request_error", "code": 408}}'
    assert error(408, "request head not received in time", "invalid_request_error", b"") == (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
