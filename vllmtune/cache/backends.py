"""Where cached answers live: in-process memory (LRU bounded by bytes) or Redis.

An entry is one JSON-able dict: {"body": full JSON response (str) or None, "frames": the raw
SSE frames of a streamed answer or None, "created": unix time, "tokens": usage total}.
Redis is imported lazily and fails open: an unreachable Redis makes every call a miss (and is
counted), never an error for the client.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("vllmtune.cache")


class Backend(Protocol):
    name: str
    errors: int

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None: ...

    async def close(self) -> None: ...


class MemoryBackend:
    """LRU with a total size bound (bytes of the stored JSON)."""

    name = "memory"

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.errors = 0
        self._data: OrderedDict[str, tuple[float, int, dict[str, Any]]] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, size, entry = item
        if expires < time.time():
            del self._data[key]
            self.size -= size
            return None
        self._data.move_to_end(key)
        return entry

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None:
        size = len(json.dumps(entry))
        if size > self.max_bytes:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._data[key] = (time.time() + ttl, size, entry)
        self.size += size
        while self.size > self.max_bytes and self._data:
            _, (_, s, _) = self._data.popitem(last=False)
            self.size -= s

    async def close(self) -> None:
        self._data.clear()


class RedisBackend:
    """redis-py's asyncio client; every failure is a miss, counted and warned about once."""

    name = "redis"

    def __init__(self, url: str, timeout: float = 0.5) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise RuntimeError("backend redis needs the redis package: pip install 'vllmtune[cache]'") from None
        self.client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.errors = 0
        self._warned = False

    def _fail(self, exc: Exception) -> None:
        self.errors += 1
        if not self._warned:
            self._warned = True
            log.warning("redis unavailable (%s): serving without the cache until it is back", exc)

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.client.get(key)
        except Exception as exc:  # fail open: any redis problem is a miss
            self._fail(exc)
            return None
        self._warned = False if raw is not None else self._warned
        if raw is None:
            return None
        try:
            entry: dict[str, Any] = json.loads(raw)
            return entry
        except ValueError:
            return None

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None:
        try:
            await self.client.set(key, json.dumps(entry), ex=ttl)
        except Exception as exc:
            self._fail(exc)

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:
            pass
