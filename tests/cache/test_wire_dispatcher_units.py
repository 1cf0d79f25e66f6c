"""cache.wire's Dispatcher called directly (tests/cache/test_wire_units.py holds the rest of
cache.wire's units): the proxy the server side drives is one (mypy checks the protocol), its
dispatch answers /cache/stats at once (None) and hands back a coroutine for what needs the
upstream; close releases it."""

from __future__ import annotations

import asyncio
import inspect
import json

from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig
from vllmtune.cache.wire import Dispatcher


def test_the_proxy_is_a_dispatcher() -> None:
    async def main() -> None:
        d: Dispatcher = Proxy(ProxyConfig(upstream="http://127.0.0.1:9", max_connections=8), MemoryBackend())
        assert (d.cfg.upstream, d.connections, d.max_connections) == ("http://127.0.0.1:9", 0, 8)
        out: list[bytes] = []
        # not JSON: relayed to vLLM as it is (a bypass), so it needs the upstream: a coroutine
        pending = d.dispatch(b"POST", b"/v1/chat/completions", [], b"{not json", out.append)
        assert inspect.iscoroutine(pending) and out == []
        pending.close()
        assert d.dispatch(b"GET", b"/cache/stats?x=1", [], b"", out.append) is None
        (answer,) = out
        head, body = answer.split(b"\r\n\r\n", 1)
        assert (
            head == b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
        )
        stats = json.loads(body)
        assert (stats["hits"], stats["misses"], stats["bypasses"], stats["bypass"]) == (0, 0, 1, {"not_json": 1})
        assert (stats["backend"], stats["entries"]) == ("memory", 0)
        await d.close()

    asyncio.run(main())
