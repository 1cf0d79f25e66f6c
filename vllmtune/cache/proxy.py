"""The prompt-result cache proxy: an OpenAI-compatible HTTP/1.1 front for vLLM.

Deterministic completions (temperature <= max_temperature, n == 1) are answered from the
cache; everything else, and every miss, goes to the upstream unchanged. Streaming requests
are served from the cache too (replayed as SSE), and streamed misses are stored once they
completed. Identical concurrent misses share one upstream call. Raw asyncio (no framework):
a cache hit must cost microseconds, not milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vllmtune.bench.http import Connection, HttpError
from vllmtune.cache.backends import Backend
from vllmtune.cache.keys import cache_key, tenant_of
from vllmtune.cache.pii import find_pii

CACHED_PATHS = (b"/v1/chat/completions", b"/v1/completions")
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"host",
    b"content-length",
    b"te",
    b"upgrade",
    b"proxy-connection",
    b"accept-encoding",
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 502: b"Bad Gateway", 504: b"Gateway Timeout"}


@dataclass
class ProxyConfig:
    """How the proxy behaves (see ``vllmtune cache serve --help``)."""

    upstream: str
    host: str = "127.0.0.1"
    port: int = 8080
    ttl: int = 86400
    max_temperature: float = 0.1
    skip_pii: bool = True
    missing_temperature_is_deterministic: bool = False
    usd_per_1k_tokens: float = 0.0
    upstream_timeout: float = 600.0


@dataclass
class Metrics:
    """Counters behind /metrics and /cache/stats."""

    hits: int = 0
    misses: int = 0
    bypass: dict[str, int] = field(default_factory=dict)
    upstream_errors: int = 0
    tokens_saved: int = 0
    collapsed: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0

    def bypassed(self, reason: str) -> None:
        self.bypass[reason] = self.bypass.get(reason, 0) + 1

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, b in enumerate(BUCKETS):
            if seconds <= b:
                self.latency_buckets[i] += 1
                return
        self.latency_buckets[-1] += 1


def _response(
    status: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    ctype: bytes = b"application/json",
) -> bytes:
    head = [
        b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Status")),
        b"content-type: " + ctype,
        b"content-length: %d" % len(body),
    ]
    head += [k + b": " + v for k, v in headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _mark_cached(json_text: str) -> str:
    """Add "cached": true to a JSON object's text (no re-serialisation on the hot path)."""
    return '{"cached":true,' + json_text[1:] if json_text.startswith("{") and json_text != "{}" else json_text


def _request_text(body: dict[str, Any]) -> str:
    parts = []
    for m in body.get("messages") or ():
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        parts.append(prompt)
    elif isinstance(prompt, list):
        parts += [p for p in prompt if isinstance(p, str)]
    return "\n".join(parts)


def _answer_text(obj: dict[str, Any]) -> str:
    out = []
    for c in obj.get("choices") or ():
        msg = c.get("message") or c.get("delta") or {}
        out.append(str(msg.get("content") or c.get("text") or ""))
    return "".join(out)


def assemble(frames: list[str]) -> dict[str, Any]:
    """A full (non-streamed) response from a streamed answer's frames."""
    text: list[str] = []
    role, finish, usage = "assistant", None, None
    base: dict[str, Any] = {}
    chat = True
    for f in frames:
        obj = json.loads(f)
        base = base or obj
        for c in obj.get("choices") or ():
            if "delta" in c:
                d = c["delta"]
                role = d.get("role") or role
                text.append(str(d.get("content") or ""))
            else:
                chat = False
                text.append(str(c.get("text") or ""))
            finish = c.get("finish_reason") or finish
        usage = obj.get("usage") or usage
    content = "".join(text)
    out: dict[str, Any] = {
        "id": base.get("id", "cached"),
        "created": base.get("created", int(time.time())),
        "model": base.get("model", ""),
    }
    if chat:
        out["object"] = "chat.completion"
        out["choices"] = [{"index": 0, "message": {"role": role, "content": content}, "finish_reason": finish}]
    else:
        out["object"] = "text_completion"
        out["choices"] = [{"index": 0, "text": content, "finish_reason": finish}]
    if usage:
        out["usage"] = usage
    return out


def synthesize_frames(full: dict[str, Any]) -> list[str]:
    """SSE frames for a streamed request served from a non-streamed answer."""
    base = {"id": full.get("id", "cached"), "created": full.get("created", 0), "model": full.get("model", "")}
    chat = full.get("object") == "chat.completion"
    choice = (full.get("choices") or [{}])[0]
    frames = []
    if chat:
        msg = choice.get("message") or {}
        obj = "chat.completion.chunk"
        frames.append(
            {
                **base,
                "object": obj,
                "choices": [{"index": 0, "delta": {"role": msg.get("role", "assistant"), "content": ""}}],
            }
        )
        frames.append({**base, "object": obj, "choices": [{"index": 0, "delta": {"content": msg.get("content", "")}}]})
        frames.append(
            {
                **base,
                "object": obj,
                "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}],
            }
        )
    else:
        frames.append(
            {
                **base,
                "object": "text_completion",
                "choices": [{"index": 0, "text": choice.get("text", ""), "finish_reason": choice.get("finish_reason")}],
            }
        )
    if full.get("usage"):
        frames.append({**base, "object": frames[-1]["object"], "choices": [], "usage": full["usage"]})
    return [json.dumps(f, separators=(",", ":")) for f in frames]


class AbortConnection(Exception):
    """A response was cut mid-way (upstream broke off a stream): close the client connection,
    which is how HTTP/1.1 tells the client the answer is incomplete."""


class Proxy:
    """Request handling, independent of the socket layer."""

    def __init__(self, cfg: ProxyConfig, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.metrics = Metrics()
        up = urlsplit(cfg.upstream if "://" in cfg.upstream else f"http://{cfg.upstream}")
        if up.scheme != "http" or not up.hostname:
            raise ValueError(f"upstream {cfg.upstream!r}: expected http://HOST:PORT")
        self.up_host, self.up_port = up.hostname, up.port or 80
        self.up_prefix = up.path.rstrip("/")
        self._idle: list[Connection] = []
        self._inflight: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self.started = time.time()

    # -- upstream ------------------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        return self._idle.pop() if self._idle else Connection(self.up_host, self.up_port, self.cfg.upstream_timeout)

    def _release(self, conn: Connection) -> None:
        if conn.writer is not None and not conn.writer.is_closing() and len(self._idle) < 64:
            self._idle.append(conn)
        else:
            conn.close()

    @staticmethod
    def _forward_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
        return b"".join(k + b": " + v + b"\r\n" for k, v in headers if k.lower() not in HOP_BY_HOP)

    # -- decisions -----------------------------------------------------------------------------------------

    def _cacheable(self, body: dict[str, Any], cache_control: bytes) -> str | None:
        """None if the request may be served from / stored in the cache, else the bypass reason."""
        if b"no-store" in cache_control:
            return "no_store"
        if body.get("cache") is False:
            return "body_flag"
        n = body.get("n")
        if n not in (None, 1):
            return "n_gt_1"
        temperature = body.get("temperature")
        if temperature is None:
            if not self.cfg.missing_temperature_is_deterministic:
                return "no_temperature"
        elif not isinstance(temperature, int | float) or temperature > self.cfg.max_temperature:
            return "temperature"
        if self.cfg.skip_pii and find_pii(_request_text(body)):
            return "pii_request"
        return None

    # -- the main entry --------------------------------------------------------------------------------------

    async def handle(
        self, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes, write: Any
    ) -> None:
        """Answer one request; ``write(bytes)`` sends to the client."""
        route = path.split(b"?", 1)[0]
        if method == b"GET" and route == b"/metrics":
            write(_response(200, self.prometheus().encode(), ctype=b"text/plain; version=0.0.4"))
            return
        if method == b"GET" and route == b"/cache/stats":
            write(_response(200, json.dumps(self.stats()).encode()))
            return
        if method != b"POST" or route not in CACHED_PATHS:
            await self._pass_through(method, path, headers, body, write, x_cache=None)
            return
        try:
            req = json.loads(body)
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            self.metrics.bypassed("not_json")
            await self._pass_through(method, path, headers, body, write, x_cache=b"BYPASS")
            return
        hmap = {k.lower(): v for k, v in headers}
        cc = hmap.get(b"cache-control", b"").lower()
        reason = self._cacheable(req, cc)
        if reason is not None:
            self.metrics.bypassed(reason)
            if "cache" in req:  # our flag is not the server's business
                req.pop("cache")
                body = json.dumps(req).encode()
            await self._pass_through(method, path, headers, body, write, x_cache=b"BYPASS")
            return
        key = cache_key(route.decode(), req, tenant_of((hmap.get(b"authorization") or b"").decode() or None))
        stream = bool(req.get("stream"))
        if b"no-cache" not in cc:
            entry = await self.backend.get(key)
            if entry is not None:
                self._serve_hit(entry, stream, write)
                return
            leader = self._inflight.get(key)
            if leader is not None:  # an identical request is on its way upstream: share its answer
                entry = await asyncio.shield(leader)
                if entry is not None:
                    self.metrics.collapsed += 1
                    self._serve_hit(entry, stream, write)
                    return
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        entry = None
        try:
            self.metrics.misses += 1
            entry = await self._pass_through(method, path, headers, body, write, x_cache=b"MISS", store=True)
            if entry is not None:
                await self.backend.set(key, entry, self.cfg.ttl)
        except AbortConnection:
            entry = None
            raise
        finally:
            self._inflight.pop(key, None)
            if not future.done():
                future.set_result(entry)

    def _serve_hit(self, entry: dict[str, Any], stream: bool, write: Any) -> None:
        self.metrics.hits += 1
        self.metrics.tokens_saved += int(entry.get("tokens") or 0)
        age = str(max(0, int(time.time() - entry.get("created", time.time())))).encode()
        headers = [(b"x-cache", b"HIT"), (b"age", age)]
        if not stream:
            text = entry.get("body") or json.dumps(assemble(entry["frames"]), separators=(",", ":"))
            write(_response(200, _mark_cached(text).encode(), headers))
            return
        frames = entry.get("frames") or synthesize_frames(json.loads(entry["body"]))
        parts = [
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"x-cache: HIT\r\nage: " + age + b"\r\n\r\n"
        ]
        for f in [*frames, None]:
            data = b"data: " + (_mark_cached(f).encode() if f is not None else b"[DONE]") + b"\n\n"
            parts.append(b"%x\r\n%s\r\n" % (len(data), data))
        parts.append(b"0\r\n\r\n")
        write(b"".join(parts))

    async def _pass_through(
        self,
        method: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        write: Any,
        x_cache: bytes | None,
        store: bool = False,
    ) -> dict[str, Any] | None:
        """Relay to the upstream; with ``store`` return the entry to cache (None: do not cache)."""
        conn = self._conn()
        started = time.perf_counter()
        extra = b"x-cache: " + x_cache + b"\r\n" if x_cache else b""
        up_path = (
            (self.up_prefix.encode() + path)
            if self.up_prefix and not path.startswith(self.up_prefix.encode())
            else path
        )
        try:
            resp = await asyncio.wait_for(
                conn.send(method.decode(), up_path.decode(), body, self._forward_headers(headers)),
                self.cfg.upstream_timeout,
            )
        except (OSError, HttpError, asyncio.TimeoutError) as exc:
            conn.close()
            self.metrics.upstream_errors += 1
            timeout = isinstance(exc, asyncio.TimeoutError)
            msg = {
                "error": {
                    "message": f"upstream {'timed out' if timeout else 'unreachable'}: {self.cfg.upstream}",
                    "type": "upstream_error",
                }
            }
            write(_response(504 if timeout else 502, json.dumps(msg).encode(), [(b"x-cache", b"BYPASS")]))
            return None
        ctype = resp.headers.get("content-type", "application/json").encode()
        if resp.status != 200:
            self.metrics.upstream_errors += 1
            store = False
        if not resp.chunked:
            try:
                data = await asyncio.wait_for(conn.body(resp), self.cfg.upstream_timeout)
            except (HttpError, asyncio.TimeoutError):
                conn.close()
                self.metrics.upstream_errors += 1
                write(_response(502, b'{"error":{"message":"upstream broke off","type":"upstream_error"}}'))
                return None
            self.metrics.observe(time.perf_counter() - started)
            self._release(conn)
            write(
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
                % (resp.status, REASONS.get(resp.status, b"Status"), ctype, len(data), extra)
                + data
            )
            if not store:
                return None
            try:
                obj = json.loads(data)
            except ValueError:
                return None
            if self.cfg.skip_pii and find_pii(_answer_text(obj)):
                self.metrics.bypassed("pii_response")
                return None
            return {
                "body": data.decode("utf-8", "replace"),
                "frames": None,
                "created": time.time(),
                "tokens": int((obj.get("usage") or {}).get("total_tokens") or 0),
            }
        # streamed: relay chunk by chunk; keep the frames to store once complete
        write(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n%s\r\n"
            % (resp.status, REASONS.get(resp.status, b"Status"), ctype, extra)
        )
        frames: list[str] = []
        buf = b""
        done = False
        try:
            async for piece in conn.chunks(resp):
                write(b"%x\r\n%s\r\n" % (len(piece), piece))
                if store:
                    buf += piece
                    while b"\n\n" in buf:
                        event, buf = buf.split(b"\n\n", 1)
                        for line in event.split(b"\n"):
                            if line.startswith(b"data:"):
                                payload = line[5:].strip()
                                if payload == b"[DONE]":
                                    done = True
                                else:
                                    frames.append(payload.decode("utf-8", "replace"))
        except (HttpError, asyncio.TimeoutError):
            conn.close()
            self.metrics.upstream_errors += 1
            raise AbortConnection from None  # nothing partial is stored
        write(b"0\r\n\r\n")
        self.metrics.observe(time.perf_counter() - started)
        self._release(conn)
        if not (store and done and frames):
            return None
        try:
            full = assemble(frames)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if self.cfg.skip_pii and find_pii(_answer_text(full)):
            self.metrics.bypassed("pii_response")
            return None
        return {
            "body": None,
            "frames": frames,
            "created": time.time(),
            "tokens": int((full.get("usage") or {}).get("total_tokens") or 0),
        }

    # -- reporting --------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        m = self.metrics
        lookups = m.hits + m.misses
        return {
            "hits": m.hits,
            "misses": m.misses,
            "bypass": dict(m.bypass),
            "bypasses": sum(m.bypass.values()),
            "hit_ratio": (m.hits / lookups) if lookups else 0.0,
            "collapsed": m.collapsed,
            "tokens_saved": m.tokens_saved,
            "usd_saved": m.tokens_saved / 1000 * self.cfg.usd_per_1k_tokens,
            "upstream_errors": m.upstream_errors,
            "backend": self.backend.name,
            "backend_errors": self.backend.errors,
            "uptime_s": time.time() - self.started,
        }

    def prometheus(self) -> str:
        s = self.stats()
        m = self.metrics
        lines = [
            "# HELP vllmtune_cache_hits_total Requests answered from the cache.",
            "# TYPE vllmtune_cache_hits_total counter",
            f"vllmtune_cache_hits_total {s['hits']}",
            "# HELP vllmtune_cache_misses_total Cacheable requests sent upstream.",
            "# TYPE vllmtune_cache_misses_total counter",
            f"vllmtune_cache_misses_total {s['misses']}",
            "# HELP vllmtune_cache_bypass_total Requests not eligible for the cache, by reason.",
            "# TYPE vllmtune_cache_bypass_total counter",
        ]
        lines += [f'vllmtune_cache_bypass_total{{reason="{r}"}} {n}' for r, n in sorted(m.bypass.items())]
        lines += [
            "# TYPE vllmtune_cache_hit_ratio gauge",
            f"vllmtune_cache_hit_ratio {s['hit_ratio']:.6f}",
            "# TYPE vllmtune_cache_tokens_saved_total counter",
            f"vllmtune_cache_tokens_saved_total {s['tokens_saved']}",
            "# TYPE vllmtune_cache_usd_saved_total counter",
            f"vllmtune_cache_usd_saved_total {s['usd_saved']:.6f}",
            "# TYPE vllmtune_cache_upstream_errors_total counter",
            f"vllmtune_cache_upstream_errors_total {s['upstream_errors']}",
            "# TYPE vllmtune_cache_backend_errors_total counter",
            f"vllmtune_cache_backend_errors_total {s['backend_errors']}",
            "# HELP vllmtune_cache_upstream_seconds Upstream latency.",
            "# TYPE vllmtune_cache_upstream_seconds histogram",
        ]
        acc = 0
        for b, n in zip(BUCKETS, m.latency_buckets, strict=False):
            acc += n
            lines.append(f'vllmtune_cache_upstream_seconds_bucket{{le="{b}"}} {acc}')
        lines.append(f'vllmtune_cache_upstream_seconds_bucket{{le="+Inf"}} {m.latency_count}')
        lines.append(f"vllmtune_cache_upstream_seconds_sum {m.latency_sum:.6f}")
        lines.append(f"vllmtune_cache_upstream_seconds_count {m.latency_count}")
        return "\n".join(lines) + "\n"


_CL = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class ProxyProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive; requests on one connection are answered in order."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None:
            self._next()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end]
        m = _CL.search(head)
        length = int(m.group(1)) if m else 0
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) < 2:
            self._write(_response(400, b'{"error":"bad request"}'))
            if self.transport is not None:
                self.transport.close()
            return
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.strip(), v.strip()))
        coro = self.proxy.handle(parts[0], parts[1], headers, body, self._write)
        self.task = asyncio.ensure_future(coro)
        self.task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.task = None
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, AbortConnection):
            if self.transport is not None:
                self.transport.close()
            return
        if exc is not None:
            self._write(_response(502, b'{"error":{"message":"proxy error","type":"proxy_error"}}'))
        if self.buf and self.transport is not None:
            self._next()


async def serve(proxy: Proxy, stop: asyncio.Event, ready: Any = None) -> None:
    """Run the proxy until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ProxyProtocol(proxy), proxy.cfg.host, proxy.cfg.port, backlog=1024)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        for c in proxy._idle:
            c.close()
        await proxy.backend.close()
