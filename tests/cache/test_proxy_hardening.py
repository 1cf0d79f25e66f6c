"""Bad client input is a one-line 400 (issue 13 item 5), tenant scoping and the key check on
hits (item 6), HTTP/1.0 clients (item 8)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.cache.test_proxy_shapes import CHAT, FRAME, post, proxied, run
from tests.support.upstream import Upstream


async def raw(port: int, data: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(data)
        return await asyncio.wait_for(r.read(), 10)  # until the proxy closes
    finally:
        w.close()


def request(body: bytes, version: bytes = b"1.1", headers: bytes = b"") -> bytes:
    host = b"Host: x\r\n" if version == b"1.1" else b""
    return (
        b"POST /v1/chat/completions HTTP/%s\r\n%sContent-Type: application/json\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (version, host, headers, len(body))
        + body
    )


BAD_BODIES = {
    "lone surrogate": (
        b'{"model":"m","messages":[{"role":"user","content":"secret \\ud800 text"}],"temperature":0}',
        "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)",
    ),
    "lone surrogate in a key": (
        b'{"model":"m","messages":[{"role":"user","content":"x","\\udc00":1}],"temperature":0}',
        "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)",
    ),
    "900 deep": (
        b'{"model":"m","temperature":0,"messages":' + b"[" * 900 + b"]" * 900 + b"}",
        "the JSON body is nested deeper than 64 levels",
    ),
    "100000 deep": (
        b'{"model":"m","temperature":0,"messages":' + b"[" * 100000 + b"]" * 100000 + b"}",
        "the JSON body is nested deeper than 64 levels",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_json_is_400_one_line_no_traceback(case: str, caplog: pytest.LogCaptureFixture) -> None:
    body, reason = BAD_BODIES[case]

    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_proxy, port):
            got = await raw(port, request(body))
            head, _, payload = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got[:300]
            assert json.loads(payload) == {"error": {"message": reason, "type": "invalid_request_error", "code": 400}}
            assert up.calls == 0

    with caplog.at_level(logging.DEBUG):
        run(go())
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "secret" not in caplog.text


def test_http10_client_gets_a_close_delimited_stream() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_proxy, port):
            body = json.dumps({**CHAT, "stream": True}).encode()
            for want in (b"MISS", b"HIT"):
                got = await raw(port, request(body, b"1.0"))
                head, _, payload = got.partition(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                assert lines[0] == b"http/1.1 200 ok" and b"x-cache: " + want.lower() in lines
                assert not [ln for ln in lines if ln.startswith(b"transfer-encoding")]
                assert b"connection: close" in lines
                events = FRAME.findall(payload)
                assert b"".join(b"data: " + e + b"\n\n" for e in events) == payload  # no chunk framing in it
                assert events[-1] == b"[DONE]" and len(events) >= 3
            assert up.calls == 1

    run(go())


def test_organization_and_project_scope_the_cache() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_proxy, port):
            auth = b"Authorization: Bearer k\r\n"
            seq = [
                auth + b"OpenAI-Organization: org-a\r\n",
                auth + b"OpenAI-Organization: org-b\r\n",
                auth + b"OpenAI-Organization: org-a\r\n",
                auth + b"OpenAI-Organization: org-a\r\nOpenAI-Project: p1\r\n",
                auth,
                auth + b"OpenAI-Organization: org-a\r\nOpenAI-Project: p1\r\n",
            ]
            got = [(await post(port, CHAT, headers=h))[1]["x-cache"] for h in seq]
            assert got == ["MISS", "MISS", "HIT", "MISS", "MISS", "HIT"]

    run(go())


def test_duplicate_credentials_are_400() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up) as (_proxy, port):
            body = json.dumps(CHAT).encode()
            for dup in (
                b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
                b"api-key: a\r\napi-key: b\r\n",
                b"OpenAI-Project: a\r\nOpenAI-Project: b\r\n",
            ):
                got = await raw(port, request(body, headers=dup))
                assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got[:200]
            assert up.calls == 0

    run(go())


def test_api_key_checked_before_a_hit() -> None:
    async def go() -> None:
        up = Upstream()
        async with proxied(up, api_key="k1") as (_proxy, port):
            good = b"Authorization: Bearer k1\r\n"
            s1, h1, _ = await post(port, CHAT, headers=good)
            s2, h2, _ = await post(port, CHAT, headers=good)
            assert (s1, h1["x-cache"], s2, h2["x-cache"]) == (200, "MISS", 200, "HIT")
            for bad in (b"Authorization: Bearer revoked\r\n", b"", b"Authorization: Bearer k1x\r\n"):
                s, _, b = await post(port, CHAT, headers=bad)
                assert (s, json.loads(b)) == (401, {"error": "Unauthorized"})
            assert up.calls == 1

    run(go())


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmtune.cache.proxy import ProxyConfig

    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    assert ProxyConfig(upstream="http://127.0.0.1:1").api_key == "from-env"
    assert "from-env" not in repr(ProxyConfig(upstream="http://127.0.0.1:1"))
    monkeypatch.delenv("VLLM_API_KEY")
    assert ProxyConfig(upstream="http://127.0.0.1:1").api_key is None
