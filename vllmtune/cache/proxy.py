"""The prompt-result cache proxy: an OpenAI-compatible HTTP/1.1 front for vLLM.

Deterministic completions (temperature <= max_temperature, n == 1) on ``/v1/chat/completions``
and ``/v1/completions`` are answered from the cache; everything else, and every miss, goes to
the upstream unchanged. Streaming requests are served from the cache too (replayed as SSE in
vLLM's chunk shape), and streamed misses are stored once they completed. Identical concurrent
misses share one upstream call. Raw asyncio on both sides (no framework, no general-purpose
client): a cache hit must cost tens of microseconds, a miss well under a millisecond extra.

The layers, each its own module:
  * :mod:`~vllmtune.cache.server` -- HTTP/1.1 server side (h11), client limits and timeouts, ``serve``;
  * this module -- :class:`Proxy`, the request flow: hit, miss, bypass, relaying;
  * :mod:`~vllmtune.cache.policy` -- what is cacheable, keys and tenants, the PII gate;
  * :mod:`~vllmtune.cache.upstream` -- the pooled h11 client (stale and unasked-bytes detection, retry);
  * :mod:`~vllmtune.cache.sse` -- streamed <-> full answers;
  * :mod:`~vllmtune.cache.wire` -- what they share (canned answers, the client-side interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from vllmtune.cache.backends import Backend
from vllmtune.cache.metrics import Metrics
from vllmtune.cache.policy import MEMO_ENTRIES, Entry, Parsed, Policy
from vllmtune.cache.server import ProxyProtocol, default_max_connections, serve
from vllmtune.cache.sse import FrameCollector, assemble, replay, synthesize_frames, with_usage
from vllmtune.cache.upstream import Upstream, UpstreamError
from vllmtune.cache.wire import (
    HOP_BY_HOP,
    NOT_FORWARDED_CACHED,
    ClientAbort,
    ProxyConfig,
    Write,
    client_gone,
    drain_for,
    error,
    is_http10,
    mark_cached,
    response,
)

__all__ = [
    "MEMO_ENTRIES",
    "Proxy",
    "ProxyConfig",
    "ProxyProtocol",
    "Upstream",
    "UpstreamError",
    "assemble",
    "serve",
    "synthesize_frames",
]

log = logging.getLogger("vllmtune.cache")

CACHED_PATHS = (b"/v1/chat/completions", b"/v1/completions")


class Proxy:
    """Request handling, independent of the socket layer (see :class:`ProxyProtocol`)."""

    def __init__(self, cfg: ProxyConfig, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.metrics = Metrics(usd_per_1k_tokens=cfg.usd_per_1k_tokens)
        self.policy = Policy(cfg, self.metrics)
        self.upstream = Upstream(cfg.upstream, cfg.upstream_timeout)
        self._inflight: dict[str, asyncio.Future[Entry | None]] = {}
        self.connections = 0  # client connections open
        self.max_connections = cfg.max_connections or default_max_connections()
        # a backend that can answer without waiting (memory) is asked synchronously
        self._peek: Callable[[str], Entry | None] | None = getattr(backend, "peek", None)
        self._peek_final = self._peek is not None and bool(getattr(backend, "peek_is_final", False))

    async def close(self) -> None:
        """Release the upstream pool and the backend (the server side calls it once it stopped)."""
        self.upstream.close()
        await self.backend.close()

    # -- reporting ----------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self.metrics.stats(self.backend.name, self.backend.errors, self.backend.entries())

    def prometheus(self) -> str:
        return self.metrics.prometheus(self.backend.name, self.backend.errors, self.backend.entries())

    # -- the entry point --------------------------------------------------------------------------------------

    async def handle(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, write: Write
    ) -> None:
        """Answer one request; ``write(bytes)`` sends to the client. ``headers`` names are lower-case."""
        pending = self.dispatch(method, target, headers, body, write)
        if pending is not None:
            await pending

    def dispatch(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, write: Write
    ) -> Coroutine[Any, Any, Any] | None:
        """Answer what can be answered without waiting (memory hits, /metrics, /cache/stats): then
        None; else the coroutine that answers (the caller runs it as a task). No task, no
        future on the hot path: that is most of a hit's cost in asyncio."""
        route = target.split(b"?", 1)[0]
        if method == b"POST" and route in CACHED_PATHS:
            return self._cacheable(route, target, headers, body, write)
        if method == b"GET" and route == b"/metrics":
            write(response(200, self.prometheus().encode(), ctype=b"text/plain; version=0.0.4; charset=utf-8"))
            return None
        if method == b"GET" and route == b"/cache/stats":
            write(response(200, json.dumps(self.stats()).encode()))
            return None
        return self._relay(method, target, _forward(headers), body, write, None)

    def _cacheable(
        self, route: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, write: Write
    ) -> Coroutine[Any, Any, Any] | None:
        cc = auth = api_key = org = project = b""
        for k, v in headers:
            if k == b"cache-control":
                cc = v.lower()
            elif k == b"authorization":
                auth = v
            elif k == b"api-key" or k == b"x-api-key":
                api_key = v
            elif k == b"openai-organization":
                org = v
            elif k == b"openai-project":
                project = v
        policy = self.policy
        if not policy.authorized(auth):
            write(response(401, b'{"error":"Unauthorized"}', b"x-cache: BYPASS\r\n"))
            return None
        p = policy.parse(route, body)
        if p.error is not None:
            self.metrics.bypassed("bad_request")
            write(error(400, p.error, "invalid_request_error"))
            return None
        reason = "no_store" if b"no-store" in cc else p.reason
        if reason is not None:
            self.metrics.bypassed(reason)
            return self._relay(b"POST", target, _forward(headers, NOT_FORWARDED_CACHED), p.body, write, b"BYPASS")
        key = p.key(policy.tenant(auth, api_key, org, project))
        read = b"no-cache" not in cc
        if read and self._peek is not None:
            entry = self._peek(key)
            if entry is not None and self._serve_hit(entry, p, write):
                return None
        fwd = _forward(headers, NOT_FORWARDED_CACHED)
        return self._lookup_or_fetch(p, key, read, not self._peek_final, target, fwd, write)

    async def _lookup_or_fetch(
        self, p: Parsed, key: str, read: bool, ask_backend: bool, target: bytes, fwd: bytes, write: Write
    ) -> None:
        assert p.req is not None
        if read:
            if ask_backend:
                try:
                    entry = await self.backend.get(key)
                except Exception as exc:  # a backend must not raise; if it does, serve without it
                    self._backend_failed(exc)
                    entry = None
                if entry is not None and self._serve_hit(entry, p, write):
                    return
            leader = self._inflight.get(key)
            if leader is not None:  # an identical request is on its way upstream: share its answer
                entry = None
                with contextlib.suppress(Exception):
                    entry = await asyncio.shield(leader)
                if entry is not None and self._serve_hit(entry, p, write, collapsed=True):
                    return
        if self.cfg.skip_pii and self.policy.request_pii(p):
            self.metrics.bypassed("pii_request")
            await self._relay(b"POST", target, fwd, p.body, write, b"BYPASS")
            return
        self.metrics.misses += 1
        future: asyncio.Future[Entry | None] | None = None
        if key not in self._inflight:
            future = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
        entry = None
        try:
            entry = await self._relay(b"POST", target, fwd, p.body, write, b"MISS", store=True)
            if entry is not None:
                try:
                    await self.backend.set(key, entry, self.cfg.ttl)
                    self.metrics.stored += 1
                except Exception as exc:
                    self._backend_failed(exc)
        finally:
            if future is not None:
                self._inflight.pop(key, None)
                if not future.done():
                    future.set_result(entry)

    def _backend_failed(self, exc: BaseException) -> None:
        self.backend.errors += 1
        log.warning("cache backend %s failed (%s): serving without it", self.backend.name, exc)

    def _serve_hit(self, entry: Entry, p: Parsed, write: Write, collapsed: bool = False) -> bool:
        """Answer from ``entry``; False when it cannot answer this request shape (then: a miss)."""
        if not entry.get("pii_checked") and not self.policy.may_serve(entry, p):
            return False
        created = entry.get("created") or 0.0
        age = b"%d" % max(0, int(time.time() - created))
        if not p.stream:
            marked = entry.get("_marked")  # in-process entries keep their marked body
            if marked is None:
                text = entry.get("body")
                if not text:
                    return False
                marked = entry["_marked"] = mark_cached(text)
            write(response(200, marked, b"x-cache: HIT\r\nage: " + age + b"\r\n"))
        else:
            frames = entry.get("frames")
            if frames is None:
                frames = synthesize_frames(json.loads(entry["body"]))
                if frames is None:
                    return False
            frames = with_usage(frames, entry.get("body"), p.want_usage)
            write(replay(frames, b"x-cache: HIT\r\nage: " + age + b"\r\n", is_http10(write)))
        m = self.metrics
        m.hits += 1
        if collapsed:
            m.collapsed += 1
        m.tokens_saved += int(entry.get("tokens") or 0)
        return True

    async def _relay(
        self,
        method: bytes,
        target: bytes,
        headers: bytes,
        body: bytes,
        write: Write,
        x_cache: bytes | None,
        store: bool = False,
    ) -> Entry | None:
        """Relay one request to the upstream and its answer back; with ``store``, return the
        entry to cache (None: nothing to cache -- an error, a cut stream, PII...)."""
        started = time.perf_counter()
        xc = b"x-cache: " + x_cache + b"\r\n" if x_cache else b""
        try:
            resp = await self.upstream.request(method, target, headers, body)
        except UpstreamError as exc:
            self.metrics.upstream_errors += 1
            write(error(504 if exc.timeout else 502, str(exc), x_cache=b"BYPASS" if x_cache else b""))
            return None
        if resp.status >= 400:
            self.metrics.upstream_errors += 1
            store = False
        elif resp.status != 200:
            store = False
        relayed = resp.relay_headers()
        if not resp.chunked and resp.length is not None:
            try:
                data = await resp.read_all()
            except UpstreamError as exc:
                self.metrics.upstream_errors += 1
                write(error(504 if exc.timeout else 502, str(exc), x_cache=b"BYPASS" if x_cache else b""))
                return None
            self.metrics.observe(time.perf_counter() - started)
            if method == b"HEAD":
                write(
                    b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\n%s%s\r\n"
                    % (resp.status, resp.reason, resp.ctype, relayed, xc)
                )
                return None
            write(
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n"
                % (resp.status, resp.reason, resp.ctype, len(data), relayed, xc)
                + data
            )
            return self.policy.entry_from_body(data) if store else None
        # streamed (or read-to-close): relay piece by piece; to store once complete, keep the SSE
        # frames, or the whole body of a chunked JSON answer (framed: its end is known)
        old_client = is_http10(write)  # HTTP/1.0: no chunked coding, the body ends when the proxy closes
        write(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\n%s%s%s\r\n"
            % (
                resp.status,
                resp.reason,
                resp.ctype,
                b"connection: close\r\n" if old_client else b"transfer-encoding: chunked\r\n",
                relayed,
                xc,
            )
        )
        sse = FrameCollector() if store and resp.ctype.startswith(b"text/event-stream") else None
        whole: list[bytes] | None = [] if store and sse is None and resp.chunked else None
        pieces = resp.pieces()
        try:
            async for piece in pieces:
                if not store and client_gone(write):
                    raise ClientAbort  # nobody reads it: stop the generation (closing aborts it in vLLM)
                write(piece if old_client else b"%x\r\n%s\r\n" % (len(piece), piece))
                wait = drain_for(write)
                if wait is not None:
                    await wait  # back-pressure: the upstream is read as fast as the client reads
                if sse is not None:
                    sse.feed(piece)
                elif whole is not None:
                    whole.append(piece)
        except UpstreamError:
            self.metrics.upstream_errors += 1
            raise ClientAbort from None  # no last chunk: the client sees a broken stream, nothing is stored
        finally:
            await pieces.aclose()  # an early exit closes the upstream connection now, not at GC
        if not old_client:
            write(b"0\r\n\r\n")
        self.metrics.observe(time.perf_counter() - started)
        if whole is not None:
            return self.policy.entry_from_body(b"".join(whole))
        if sse is None or not (sse.done and sse.frames):
            return None
        return self.policy.entry_from_frames(sse.frames)


def _forward(headers: list[tuple[bytes, bytes]], strip: frozenset[bytes] = HOP_BY_HOP) -> bytes:
    return b"".join(k + b": " + v + b"\r\n" for k, v in headers if k not in strip)
