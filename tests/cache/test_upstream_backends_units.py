"""cache.upstream.UpstreamError and cache.backends.Backend named directly: the error the proxy
turns into a 502/504 (``timeout`` picks the 504), and the store protocol MemoryBackend meets."""

from __future__ import annotations

import asyncio
import inspect

from vllmtune.cache.backends import Backend, MemoryBackend
from vllmtune.cache.upstream import UpstreamError


def test_upstream_error_carries_its_message_and_timeout_flag() -> None:
    broke = UpstreamError("http://u:8000 closed the stream before its end")
    assert (str(broke), broke.timeout) == ("http://u:8000 closed the stream before its end", False)
    slow = UpstreamError("connecting to http://u:8000 timed out", timeout=True)
    assert (str(slow), slow.timeout, isinstance(slow, Exception)) == (
        "connecting to http://u:8000 timed out",
        True,
        True,
    )


def test_memory_backend_meets_the_backend_protocol() -> None:
    declared = {n for n in vars(Backend) if not n.startswith("_")} | set(Backend.__annotations__)
    assert declared == {"name", "errors", "get", "set", "close", "entries"}
    store = MemoryBackend()
    for name in ("get", "set", "close"):
        assert inspect.iscoroutinefunction(getattr(store, name)), name

    async def roundtrip() -> tuple[object, object, int | None, int | None]:
        await store.set("k", {"body": "{}", "frames": None}, 60)
        got = await store.get("k")
        missing = await store.get("other")
        held = store.entries()
        await store.close()
        return got, missing, held, store.entries()

    assert asyncio.run(roundtrip()) == ({"body": "{}", "frames": None}, None, 1, 0)  # close empties it
    assert (store.name, store.errors) == ("memory", 0)
