"""bench.http's Endpoint, Response and authority called directly: URL parsing (RFC 3986: an IPv6
literal sits in brackets, the default http port is 80) and the framing a response head says."""

from __future__ import annotations

import pytest

from vllmtune.bench.http import Endpoint, Response, authority


def test_endpoint_parts() -> None:
    ep = Endpoint("http://gpu-1:8000/v1/")
    assert (ep.host, ep.port, ep.prefix, ep.base) == ("gpu-1", 8000, "/v1", "http://gpu-1:8000")
    bare = Endpoint("127.0.0.1:9")  # no scheme: http
    assert (bare.host, bare.port, bare.prefix, bare.base) == ("127.0.0.1", 9, "", "http://127.0.0.1:9")
    default = Endpoint("http://example.test")
    assert (default.port, default.base) == (80, "http://example.test:80")


def test_endpoint_ipv6_literal_stays_in_brackets() -> None:
    ep = Endpoint("http://[::1]:8000/v1")
    assert (ep.host, ep.port, ep.prefix, ep.base) == ("::1", 8000, "/v1", "http://[::1]:8000")
    again = Endpoint(ep.base + "/metrics")  # the base is a URL again (bench scrapes base + "/metrics")
    assert (again.host, again.port, again.prefix) == ("::1", 8000, "/metrics")


@pytest.mark.parametrize("url", ["https://gpu-1:8000/v1", "http://", "ftp://x"])
def test_endpoint_refuses_what_it_cannot_reach(url: str) -> None:
    with pytest.raises(ValueError) as err:
        Endpoint(url)
    assert str(err.value) == f"{url!r}: expected http://HOST:PORT[/v1]"


def test_authority() -> None:
    assert authority("gpu-1", 8000) == "gpu-1:8000"
    assert authority("::1", 8000) == "[::1]:8000"
    assert authority("fe80::1%eth0", 80) == "[fe80::1%eth0]:80"


def test_response_framing_from_headers() -> None:
    chunked = Response(200, {"transfer-encoding": "Chunked", "content-type": "text/event-stream"})
    assert (chunked.status, chunked.chunked, chunked.length) == (200, True, None)
    sized = Response(404, {"content-length": "17"})
    assert (sized.status, sized.chunked, sized.length, sized.headers) == (404, False, 17, {"content-length": "17"})
    to_close = Response(200, {})
    assert (to_close.chunked, to_close.length) == (False, None)  # read to close
