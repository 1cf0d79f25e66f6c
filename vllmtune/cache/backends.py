"""Where cached answers live: in-process memory (LRU bounded by bytes) or Redis.

An entry is one JSON-able dict::

    {"body": the full JSON response (str) or None,
     "frames": the SSE data payloads of a streamed answer (list of str) or None,
     "created": unix time, "tokens": usage.total_tokens, "pii_checked": bool}

Redis keeps an in-process L1 copy of the entries this proxy stored or read (bounded by bytes,
each until its own expiry): entries never change, so a repeated hit needs no round trip; the
shared Redis is what other replicas and restarts see. Redis is imported lazily (``pip install
'vllmtune[cache]'``) and fails open: an unreachable or slow Redis makes every lookup a miss and
every store a no-op, counted in ``errors`` and warned about once per outage, never an error for
the client. After a failure Redis is left alone for ``retry_after`` seconds (a circuit breaker),
so an outage costs no latency per request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("vllmtune.cache")

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the credentials (user:password@) of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


def redact_url(url: str) -> str:
    """A URL as it may be shown or logged: ``redis://:pw@host:6379/0`` -> ``redis://***@host:6379/0``."""
    return redact(url)


class Backend(Protocol):
    """What the proxy needs from a store. ``get``/``set`` never raise."""

    name: str
    errors: int

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None: ...

    async def close(self) -> None: ...

    def entries(self) -> int | None: ...


_NODE = 200  # per entry: the OrderedDict link, the (expiry, size, entry) tuple, the float


def entry_bytes(key: str, entry: dict[str, Any]) -> int:
    """What an entry really holds in memory (CPython object sizes, not its JSON length): the
    key, the dict, each string and frame, and the proxy's bytes copy of the body made on its
    first hit."""
    size = _NODE + sys.getsizeof(key) + sys.getsizeof(entry)
    for v in entry.values():
        size += sys.getsizeof(v)
        if isinstance(v, list):
            size += sum(sys.getsizeof(f) for f in v)
    body = entry.get("body")
    if isinstance(body, str):
        size += sys.getsizeof(b"") + len(body.encode("utf-8", "replace")) + 16  # the marked copy
    return size


class MemoryBackend:
    """LRU with a bound on the total size (bytes of each entry's JSON)."""

    name = "memory"
    peek_is_final = True  # a peek miss is a miss

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.errors = 0
        self._data: OrderedDict[str, tuple[float, int, dict[str, Any]]] = OrderedDict()

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.peek(key)

    def peek(self, key: str) -> dict[str, Any] | None:
        """:meth:`get` without the coroutine (the proxy answers memory hits synchronously)."""
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._data[key]
            self.size -= item[1]
            return None
        self._data.move_to_end(key)
        return item[2]

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None:
        self.put(key, entry, ttl)

    def put(self, key: str, entry: dict[str, Any], ttl: int) -> None:
        """:meth:`set` without the coroutine."""
        entry.pop("_marked", None)  # the proxy's in-process copy of a hit's body (bytes)
        size = entry_bytes(key, entry)
        old = self._data.pop(key, None)
        if old is not None:
            self.size -= old[1]
        if size > self.max_bytes or ttl <= 0:
            return
        self._data[key] = (time.monotonic() + ttl, size, entry)
        self.size += size
        while self.size > self.max_bytes:
            _, (_, s, _) = self._data.popitem(last=False)
            self.size -= s

    def entries(self) -> int | None:
        return len(self._data)

    async def close(self) -> None:
        self._data.clear()
        self.size = 0


class RedisBackend:
    """redis-py's asyncio client; every failure is a miss, counted, warned about once per outage."""

    name = "redis"

    peek_is_final = False  # a local (L1) miss still has to ask Redis

    def __init__(
        self,
        url: str,
        timeout: float = 0.25,
        retry_after: float = 0.5,
        l1_bytes: int = 64 << 20,
        password: str | None = None,
    ) -> None:
        """``password`` (default: $VLLMTUNE_REDIS_PASSWORD) is used when the URL carries none."""
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise RuntimeError("backend redis needs the redis package: pip install 'vllmtune[cache]'") from None
        if password is None:
            password = os.environ.get("VLLMTUNE_REDIS_PASSWORD") or None
        extra: dict[str, Any] = {"password": password} if password else {}
        try:
            self.client: Any = aioredis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=0, **extra
            )
        except ValueError as exc:
            raise ValueError(f"--redis-url {redact_url(url)!r}: {redact(str(exc))}") from None
        self.url = redact_url(url)  # what is ever shown: no credentials
        # L1: entries this process stored or read, until their own expiry. Safe because an entry
        # never changes (same key, same deterministic answer) and nothing is ever invalidated;
        # it makes a repeated hit cost no Redis round trip. 0 disables it.
        self.l1 = MemoryBackend(l1_bytes) if l1_bytes > 0 else None
        self.errors = 0
        self.retry_after = retry_after
        self._down_until = 0.0
        self._down = False

    def _fail(self, exc: BaseException) -> None:
        self.errors += 1
        self._down_until = time.monotonic() + self.retry_after
        if not self._down:
            self._down = True
            log.warning(
                "redis unavailable (%s): serving without the cache until it is back",
                redact(str(exc)) or type(exc).__name__,
            )

    def _ok(self) -> None:
        if self._down:
            self._down = False
            log.warning("redis is back: caching again")

    def _skip(self) -> bool:
        return self._down and time.monotonic() < self._down_until

    async def ping(self) -> str | None:
        """None if Redis answers, else why not (for a warning at startup)."""
        try:
            await self.client.ping()
        except Exception as exc:  # fail open: any redis problem (the caller warns)
            self.errors += 1
            self._down, self._down_until = True, time.monotonic() + self.retry_after
            return redact(str(exc)) or type(exc).__name__
        self._ok()
        return None

    def peek(self, key: str) -> dict[str, Any] | None:
        """The L1 entry, without waiting (None: ask :meth:`get`)."""
        return self.l1.peek(key) if self.l1 is not None else None

    async def get(self, key: str) -> dict[str, Any] | None:
        if self.l1 is not None:
            entry = self.l1.peek(key)
            if entry is not None:
                return entry
        if self._skip():
            return None
        try:
            raw = await self.client.get(key)
        except Exception as exc:  # fail open: any redis problem is a miss
            self._fail(exc)
            return None
        self._ok()
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        left = int(entry.get("expires", 0) - time.time())
        if self.l1 is not None and left > 0:
            self.l1.put(key, entry, left)
        return entry

    async def set(self, key: str, entry: dict[str, Any], ttl: int) -> None:
        if ttl <= 0:
            return
        entry = {**entry, "expires": time.time() + ttl}
        if self.l1 is not None:
            self.l1.put(key, entry, ttl)
        if self._skip():
            return
        try:
            await self.client.set(key, json.dumps(entry, separators=(",", ":")), ex=ttl)
        except Exception as exc:
            self._fail(exc)
            return
        self._ok()

    def entries(self) -> int | None:
        return None

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:
            pass
