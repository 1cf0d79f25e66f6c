"""The prompt-result cache proxy: an OpenAI-compatible HTTP/1.1 front for vLLM.

Deterministic completions (temperature <= max_temperature, n == 1) on ``/v1/chat/completions``
and ``/v1/completions`` are answered from the cache; everything else, and every miss, goes to
the upstream unchanged. Streaming requests are served from the cache too (replayed as SSE in
vLLM's chunk shape), and streamed misses are stored once they completed. Identical concurrent
misses share one upstream call. Raw asyncio on both sides (no framework, no general-purpose
client): a cache hit must cost tens of microseconds, a miss well under a millisecond extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

from vllmtune.cache.backends import Backend, redact
from vllmtune.cache.keys import body_digest, entry_key, tenant_of
from vllmtune.cache.metrics import Metrics
from vllmtune.cache.pii import find_pii, find_pii_in

log = logging.getLogger("vllmtune.cache")

CACHED_PATHS = (b"/v1/chat/completions", b"/v1/completions")
# Never forwarded in either direction (RFC 9110 7.6.1), plus what the proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
    }
)
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    504: b"Gateway Timeout",
}
NOT_FORWARDED_CACHED = HOP_BY_HOP | {b"accept-encoding"}
MAX_HEAD = 64 << 10
MEMO_ENTRIES = 4096  # parsed request bodies remembered (a repeated request skips JSON + canonicalisation)
MEMO_MAX_BODY = 64 << 10
MEMO_MAX_BYTES = 16 << 20  # bound on the bodies held by the memo (x ~3 with the decoded requests)
# Fields of a streamed chat delta the proxy can assemble into a full message.
DELTA_KEYS = frozenset({"role", "content", "reasoning_content", "reasoning", "tool_calls"})

Write = Callable[[bytes], None]
Entry = dict[str, Any]


@dataclass
class ProxyConfig:
    """How the proxy behaves (see ``python -m vllmtune.cache --help``)."""

    upstream: str
    host: str = "127.0.0.1"
    port: int = 8080
    ttl: int = 86400
    max_temperature: float = 0.1
    skip_pii: bool = True
    missing_temperature_is_deterministic: bool = False
    usd_per_1k_tokens: float = 0.0
    upstream_timeout: float = 600.0  # connect, and then silence between two reads of a response
    share_across_tenants: bool = False  # one cache for every API key (off: scoped per tenant)
    max_body_bytes: int = 32 << 20
    # the key vLLM checks (``Authorization: Bearer KEY``); set, the proxy checks it too before a hit
    header_timeout: float = 10.0  # a request head must be complete this long after its first byte
    body_timeout: float = 30.0  # silence allowed within a request body
    idle_timeout: float = 60.0  # a keep-alive connection with no request in flight
    max_connections: int = 0  # client connections at once (0: half the open-file limit, at most 4096)
    api_key: str | None = field(default_factory=lambda: os.environ.get("VLLM_API_KEY") or None, repr=False)


class Parsed:
    """What a request body says about caching (memoised per body bytes; never mutated but ``pii``)."""

    __slots__ = ("body", "digest", "error", "keys", "pii", "reason", "req", "stream", "want_usage")

    def __init__(
        self,
        reason: str | None,
        digest: bytes,
        stream: bool,
        want_usage: bool,
        body: bytes,
        req: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        self.error = error  # the body is JSON no server should get: a 400 with this reason
        self.reason = reason  # a bypass reason from the body alone, or None
        self.digest = digest  # keys.body_digest (empty when not cacheable)
        self.stream = stream
        self.want_usage = want_usage
        self.body = body  # what goes upstream (the proxy's "cache" flag removed)
        self.req = req
        self.pii: bool | None = None  # request PII, computed on the first miss
        self.keys: dict[str, str] = {}  # tenant -> entry key


def _response(status: int, body: bytes, headers: bytes = b"", ctype: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
        % (status, REASONS.get(status, b"Status"), ctype, len(body), headers)
        + body
    )


def _error(status: int, message: str, kind: str = "upstream_error", x_cache: bytes = b"BYPASS") -> bytes:
    body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
    return _response(status, body, b"x-cache: " + x_cache + b"\r\n" if x_cache else b"")


def _mark_cached(json_text: str) -> bytes:
    """Add "cached": true to a JSON object's text (no re-serialisation on the hot path)."""
    if json_text.startswith("{") and json_text[1:].lstrip() != "}":
        return ('{"cached":true,' + json_text[1:]).encode()
    return json_text.encode()


# -- streamed answers <-> full answers ---------------------------------------------------------------------


def assemble(frames: list[str]) -> dict[str, Any] | None:
    """The full (non-streamed) response of a streamed answer, or None when it cannot be rebuilt
    faithfully (logprobs, several choices, delta fields the proxy does not know)."""
    text: list[str] = []
    reasoning: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    role, finish, stop_reason, usage = "assistant", None, None, None
    base: dict[str, Any] = {}
    chat: bool | None = None
    for f in frames:
        obj = json.loads(f)
        if not isinstance(obj, dict):
            return None
        base = base or obj
        for c in obj.get("choices") or ():
            if c.get("index", 0) != 0 or c.get("logprobs") is not None:
                return None
            if "delta" in c:
                chat = True
                d = c["delta"] or {}
                if not DELTA_KEYS.issuperset(d):
                    return None
                role = d.get("role") or role
                text.append(d.get("content") or "")
                reasoning.append(d.get("reasoning_content") or d.get("reasoning") or "")
                for tc in d.get("tool_calls") or ():
                    slot = tools.setdefault(int(tc.get("index", 0)), {"function": {"name": "", "arguments": ""}})
                    for k in ("id", "type"):
                        if tc.get(k):
                            slot[k] = tc[k]
                    fn = tc.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
            elif "text" in c:
                chat = False
                text.append(c.get("text") or "")
            finish = c.get("finish_reason") or finish
            stop_reason = c.get("stop_reason", stop_reason)
        usage = obj.get("usage") or usage
    if chat is None:
        return None
    out: dict[str, Any] = {"id": base.get("id", "cached"), "created": base.get("created", int(time.time()))}
    out["model"] = base.get("model", "")
    if chat:
        msg: dict[str, Any] = {"role": role, "content": "".join(text)}
        if any(reasoning):
            msg["reasoning_content"] = "".join(reasoning)
        if tools:
            msg["tool_calls"] = [{"type": "function", **tools[i]} for i in sorted(tools)]
            if not msg["content"]:
                msg["content"] = None
        out["object"] = "chat.completion"
        choice: dict[str, Any] = {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}
    else:
        out["object"] = "text_completion"
        choice = {"index": 0, "text": "".join(text), "logprobs": None, "finish_reason": finish}
    if stop_reason is not None:
        choice["stop_reason"] = stop_reason
    out["choices"] = [choice]
    if usage:
        out["usage"] = usage
    return out


def synthesize_frames(full: dict[str, Any]) -> list[str] | None:
    """SSE data payloads, in vLLM's chunk shape, for a streamed request served from a full
    answer (None when that cannot be done faithfully, e.g. with logprobs)."""
    choices = full.get("choices") or []
    if len(choices) != 1 or choices[0].get("logprobs") is not None:
        return None
    choice = choices[0]
    base = {"id": full.get("id", "cached"), "created": full.get("created", 0), "model": full.get("model", "")}
    end: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
    if "stop_reason" in choice:
        end["stop_reason"] = choice["stop_reason"]
    frames: list[dict[str, Any]] = []
    if full.get("object") == "chat.completion":
        kind = "chat.completion.chunk"
        msg = choice.get("message") or {}

        def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
            c = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None, **extra}
            return {**base, "object": kind, "choices": [c]}

        frames.append(chunk({"role": msg.get("role", "assistant"), "content": ""}))
        if msg.get("reasoning_content"):
            frames.append(chunk({"reasoning_content": msg["reasoning_content"]}))
        if msg.get("content"):
            frames.append(chunk({"content": msg["content"]}))
        for i, tc in enumerate(msg.get("tool_calls") or ()):
            frames.append(chunk({"tool_calls": [{"index": i, **tc}]}))
        frames.append(chunk({"content": ""}, **end))
    elif full.get("object") == "text_completion":
        kind = "text_completion"
        frames.append(
            {**base, "object": kind, "choices": [{"index": 0, "text": choice.get("text", ""), "logprobs": None, **end}]}
        )
    else:
        return None
    if full.get("usage"):
        frames.append({**base, "object": kind, "choices": [], "usage": full["usage"]})
    return [json.dumps(f, separators=(",", ":"), ensure_ascii=False) for f in frames]


def _is_usage_frame(frame: str) -> bool:
    return '"choices":[]' in frame and '"usage"' in frame


# -- the upstream side -------------------------------------------------------------------------------------


class UpstreamError(Exception):
    """The upstream broke off, spoke something that is not HTTP, or timed out (``timeout``)."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class _Watchdog:
    """Aborts a connection after ``timeout`` seconds without progress (one timer per response;
    cheaper than wrapping each read in ``asyncio.wait_for``)."""

    __slots__ = ("fired", "handle", "loop", "timeout", "transport", "until")

    def __init__(self, transport: asyncio.BaseTransport, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport = transport
        self.timeout = timeout
        self.until = self.loop.time() + timeout
        self.fired = False
        self.handle = self.loop.call_at(self.until, self._check)

    def poke(self) -> None:
        self.until = self.loop.time() + self.timeout

    def _check(self) -> None:
        if self.loop.time() >= self.until:
            self.fired = True
            self.transport.abort()  # type: ignore[attr-defined]
        else:
            self.handle = self.loop.call_at(self.until, self._check)

    def cancel(self) -> None:
        self.handle.cancel()


class _Conn:
    """One upstream connection: the stream pair and the h11 client state that frames its answers."""

    __slots__ = ("h11", "reader", "received", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.received = 0  # bytes of the current answer

    def stale(self) -> bool:
        """Closed by the upstream while idle (its keep-alive timeout), or it sent something unasked."""
        r = self.reader
        return self.writer.is_closing() or r.at_eof() or r.exception() is not None or bool(getattr(r, "_buffer", b""))

    async def next_event(self, dog: _Watchdog) -> Any:
        conn = self.h11
        while True:
            ev = conn.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            data = await self.reader.read(65536)
            self.received += len(data)
            dog.poke()
            conn.receive_data(data)


class UpstreamResponse:
    """Status line and headers of an upstream response; the body is read with :meth:`pieces`."""

    def __init__(self, up: Upstream, c: _Conn, dog: _Watchdog, ev: h11.Response, head_only: bool) -> None:
        self.up, self.c, self.dog = up, c, dog
        self.status, self.reason = ev.status_code, ev.reason or REASONS.get(ev.status_code, b"Status")
        self.headers: list[tuple[bytes, bytes]] = list(ev.headers)
        self.ctype = b"application/json"
        self.length: int | None = None
        self.chunked = False
        for k, v in self.headers:
            if k == b"content-type":
                self.ctype = v
            elif k == b"content-length":
                self.length = int(v)  # h11 checked it: 1*DIGIT, one value
            elif k == b"transfer-encoding":
                self.chunked = True  # h11 accepts only chunked
        if head_only or self.status in (204, 304):
            self.length, self.chunked = 0, False
        self.complete = False

    def relay_headers(self) -> bytes:
        """The upstream's own headers, minus hop-by-hop ones and content-type (set by the caller)."""
        return b"".join(
            k + b": " + v + b"\r\n" for k, v in self.headers if k not in HOP_BY_HOP and k != b"content-type"
        )

    async def read_all(self) -> bytes:
        return b"".join([p async for p in self.pieces()])

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives (de-chunked by h11), one piece per network read."""
        c, dog = self.c, self.dog
        conn = c.h11
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    data = await c.reader.read(65536)
                    c.received += len(data)
                    dog.poke()
                    conn.receive_data(data)
                    continue
                out: list[bytes] = []
                while isinstance(ev, h11.Data):
                    out.append(bytes(ev.data))
                    ev = conn.next_event()
                if out:
                    yield b"".join(out)
                if isinstance(ev, h11.EndOfMessage):
                    self.complete = True
                    return
                if ev is not h11.NEED_DATA:
                    raise UpstreamError(f"{self.up.url} sent an unexpected {type(ev).__name__} mid-answer")
                data = await c.reader.read(65536)
                c.received += len(data)
                dog.poke()
                conn.receive_data(data)
        except (h11.RemoteProtocolError, ConnectionError) as exc:
            if dog.fired:
                raise UpstreamError(f"{self.up.url} timed out mid-answer", timeout=True) from None
            if isinstance(exc, h11.RemoteProtocolError) and c.reader.at_eof():
                raise UpstreamError(f"{self.up.url} closed the stream before its end") from None
            raise UpstreamError(f"{self.up.url} broke off mid-answer ({exc})") from None
        finally:
            self.finish()

    def finish(self) -> None:
        """Give the connection back to the pool (complete response, nothing more sent) or close it."""
        self.dog.cancel()
        c = self.c
        conn = c.h11
        if (
            self.complete
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not conn.trailing_data[0]
            and not c.stale()
        ):
            conn.start_next_cycle()
            self.up.release(c)
        else:
            c.writer.close()
        self.complete = False  # finish() is idempotent


class Upstream:
    """A keep-alive connection pool to one ``http://host:port[/prefix]``; answers framed by h11."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        shown = redact(url)  # what messages name: never a credential
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"upstream {shown!r}: the port is not a number 1-65535") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {shown!r}: expected http://HOST:PORT (https: put TLS in front of the proxy)")
        self.url = shown
        self.host, self.port = parts.hostname, port
        self.prefix = parts.path.rstrip("/").encode()
        self.timeout = timeout
        self.host_header = f"{self.host}:{self.port}".encode()
        self._idle: list[_Conn] = []

    def release(self, c: _Conn) -> None:
        if len(self._idle) < 256:
            self._idle.append(c)
        else:
            c.writer.close()

    def close(self) -> None:
        for c in self._idle:
            c.writer.close()
        self._idle.clear()

    def _take(self) -> _Conn | None:
        """An idle pooled connection still usable, or None (the dead ones are closed on the way)."""
        while self._idle:
            c = self._idle.pop()
            if not c.stale():
                return c
            c.writer.close()
        return None

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=1 << 20), self.timeout
            )
        except asyncio.TimeoutError:
            raise UpstreamError(f"connecting to {self.url} timed out", timeout=True) from None
        except OSError as exc:
            raise UpstreamError(f"{self.url} is unreachable ({exc.strerror or exc})") from None
        return _Conn(reader, writer)

    async def request(self, method: bytes, target: bytes, headers: bytes, body: bytes) -> UpstreamResponse:
        """Send one request and read the final status line and headers (1xx interim answers are
        skipped). A pooled connection that closes before a byte of answer (the server's keep-alive
        timeout, seen too late) is retried once on a fresh connection."""
        if self.prefix and not target.startswith(self.prefix + b"/"):
            target = self.prefix + target
        head = (
            method
            + b" "
            + target
            + b" HTTP/1.1\r\nhost: "
            + self.host_header
            + b"\r\n"
            + headers
            + (b"content-length: %d\r\n\r\n" % len(body) if body or method not in (b"GET", b"HEAD") else b"\r\n")
        )
        # the head is written as is (its headers were validated by the server side); h11 only
        # needs to know a request of this method went out, to frame the answer
        placeholder = h11.Request(method=method, target=b"/", headers=[(b"host", b"x"), (b"content-length", b"0")])
        for attempt in (0, 1):
            c = self._take() if attempt == 0 else None
            reused = c is not None
            if c is None:
                c = await self._connect()
            c.h11.send(placeholder)
            c.h11.send(_END)
            c.received = 0
            dog = _Watchdog(c.writer.transport, self.timeout)
            try:
                c.writer.write(head + body)
                while True:
                    ev = await c.next_event(dog)
                    if isinstance(ev, h11.InformationalResponse):
                        continue  # 100 Continue, 103 Early Hints...: not the answer
                    break
                if not isinstance(ev, h11.Response):
                    raise ConnectionResetError("closed")
            except (h11.RemoteProtocolError, ConnectionError) as exc:
                dog.cancel()
                c.writer.close()
                if dog.fired:
                    raise UpstreamError(
                        f"{self.url} timed out: no answer in {self.timeout:g} s", timeout=True
                    ) from None
                if reused and attempt == 0 and c.received == 0:
                    continue
                if c.received == 0:
                    raise UpstreamError(f"{self.url} closed the connection without an answer") from None
                raise UpstreamError(f"{self.url} sent an invalid HTTP/1.1 answer ({exc})") from None
            return UpstreamResponse(self, c, dog, ev, method == b"HEAD")
        raise AssertionError("unreachable")  # pragma: no cover


# -- the proxy -----------------------------------------------------------------------------------------------


class Proxy:
    """Request handling, independent of the socket layer (see :class:`ProxyProtocol`)."""

    def __init__(self, cfg: ProxyConfig, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.metrics = Metrics(usd_per_1k_tokens=cfg.usd_per_1k_tokens)
        self.upstream = Upstream(cfg.upstream, cfg.upstream_timeout)
        self._inflight: dict[str, asyncio.Future[Entry | None]] = {}
        self._memo: OrderedDict[tuple[bytes, bytes], Parsed] = OrderedDict()  # an LRU
        self._memo_bytes = 0
        self._tenants: dict[tuple[bytes, bytes, bytes], str] = {}
        self.connections = 0  # client connections open
        self.max_connections = cfg.max_connections or _default_max_connections()
        # a backend that can answer without waiting (memory) is asked synchronously
        self._peek: Callable[[str], Entry | None] | None = getattr(backend, "peek", None)
        self._peek_final = self._peek is not None and bool(getattr(backend, "peek_is_final", False))

    # -- reporting ----------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self.metrics.stats(self.backend.name, self.backend.errors, self.backend.entries())

    def prometheus(self) -> str:
        return self.metrics.prometheus(self.backend.name, self.backend.errors, self.backend.entries())

    # -- decisions ------------------------------------------------------------------------------------------

    def _ineligible(self, body: dict[str, Any]) -> str | None:
        """None if the request body may be served from / stored in the cache, else the bypass reason."""
        if body.get("cache", True) is False:
            return "body_flag"
        n = body.get("n")
        if n is not None and n != 1:
            return "n_not_1"
        temperature = body.get("temperature")
        if temperature is None:
            if not self.cfg.missing_temperature_is_deterministic:
                return "no_temperature"
        elif isinstance(temperature, bool) or not isinstance(temperature, int | float):
            return "temperature"
        if temperature is not None and temperature > self.cfg.max_temperature:
            return "temperature"
        return None

    def _request_pii(self, req: dict[str, Any]) -> bool:
        return bool(find_pii_in(req, skip=frozenset({"model"})))

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
            write(_response(200, self.prometheus().encode(), ctype=b"text/plain; version=0.0.4; charset=utf-8"))
            return None
        if method == b"GET" and route == b"/cache/stats":
            write(_response(200, json.dumps(self.stats()).encode()))
            return None
        return self._relay(method, target, self._forward(headers), body, write, None)

    @staticmethod
    def _forward(headers: list[tuple[bytes, bytes]], strip: frozenset[bytes] = HOP_BY_HOP) -> bytes:
        return b"".join(k + b": " + v + b"\r\n" for k, v in headers if k not in strip)

    def _parse(self, route: bytes, body: bytes) -> Parsed:
        """What the body says about caching; memoised by the body's bytes (a repeated request
        skips JSON decoding and canonicalisation)."""
        memo_key = (route, body)
        parsed = self._memo.get(memo_key)
        if parsed is not None:
            self._memo.move_to_end(memo_key)
            return parsed
        error = None
        try:
            req = json.loads(body)
        except RecursionError:
            req, error = None, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        except ValueError:
            req = None
        if req is not None:
            error = _json_problem(req)
        if error is not None:
            parsed = Parsed("bad_json", b"", False, False, body, None, error)
        elif not isinstance(req, dict):
            parsed = Parsed("not_json", b"", False, False, body, None)
        else:
            forward = body
            if "cache" in req:  # the proxy's own flag is not the server's business
                flag = req.pop("cache")
                forward = json.dumps(req, ensure_ascii=False).encode()
                req["cache"] = flag
            reason = self._ineligible(req)
            digest = b"" if reason else body_digest(route.decode(), req)
            opts = req.get("stream_options")
            want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
            parsed = Parsed(reason, digest, req.get("stream") is True, want_usage, forward, req)
        if len(body) <= MEMO_MAX_BODY:
            self._memo[memo_key] = parsed
            self._memo_bytes += len(body)
            while len(self._memo) > MEMO_ENTRIES or self._memo_bytes > MEMO_MAX_BYTES:
                (_, old), _ = self._memo.popitem(last=False)
                self._memo_bytes -= len(old)
        return parsed

    def _tenant(self, auth: bytes, api_key: bytes, org: bytes, project: bytes) -> str:
        if self.cfg.share_across_tenants:
            return "shared"
        memo = (auth or api_key, org, project)
        tenant = self._tenants.get(memo)
        if tenant is None:
            if len(self._tenants) >= MEMO_ENTRIES:
                self._tenants.clear()
            tenant = self._tenants[memo] = tenant_of(auth, api_key, org, project)
        return tenant

    def _authorized(self, auth: bytes) -> bool:
        """The client's key is the one vLLM checks (when the proxy knows it): a revoked or wrong
        key never gets a cached answer."""
        key = self.cfg.api_key
        if not key:
            return True
        return hmac.compare_digest(auth, b"Bearer " + key.encode())

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
        if not self._authorized(auth):
            write(_response(401, b'{"error":"Unauthorized"}', b"x-cache: BYPASS\r\n"))
            return None
        p = self._parse(route, body)
        if p.error is not None:
            self.metrics.bypassed("bad_request")
            write(_error(400, p.error, "invalid_request_error"))
            return None
        reason = "no_store" if b"no-store" in cc else p.reason
        if reason is not None:
            self.metrics.bypassed(reason)
            fwd = self._forward(headers, NOT_FORWARDED_CACHED)
            return self._relay(b"POST", target, fwd, p.body, write, b"BYPASS")
        tenant = self._tenant(auth, api_key, org, project)
        key = p.keys.get(tenant)
        if key is None:
            if len(p.keys) >= 64:
                p.keys.clear()
            key = p.keys[tenant] = entry_key(tenant, p.digest)
        read = b"no-cache" not in cc
        if read and self._peek is not None:
            entry = self._peek(key)
            if entry is not None and self._serve_hit(entry, p, write):
                return None
        # the upstream gets identity encoding: a compressed body could not be cached
        fwd = self._forward(headers, NOT_FORWARDED_CACHED)
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
        if self.cfg.skip_pii:
            if p.pii is None:
                p.pii = self._request_pii(p.req)
            if p.pii:
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
        stream, want_usage = p.stream, p.want_usage
        if self.cfg.skip_pii and not entry.get("pii_checked"):
            # stored by a proxy that did not check (a shared Redis): check now, both sides
            if p.pii is None and p.req is not None:
                p.pii = self._request_pii(p.req)
            if p.pii or find_pii_in(entry.get("body")) or _frames_pii(entry.get("frames")):
                return False
        created = entry.get("created") or 0.0
        age = b"%d" % max(0, int(time.time() - created))
        if not stream:
            marked = entry.get("_marked")  # in-process entries keep their marked body
            if marked is None:
                text = entry.get("body")
                if not text:
                    return False
                marked = entry["_marked"] = _mark_cached(text)
            write(_response(200, marked, b"x-cache: HIT\r\nage: " + age + b"\r\n"))
        else:
            frames = entry.get("frames")
            if frames is None:
                frames = synthesize_frames(json.loads(entry["body"]))
                if frames is None:
                    return False
            if not want_usage:
                frames = [f for f in frames if not _is_usage_frame(f)]
            elif entry.get("body") and not any(_is_usage_frame(f) for f in frames):
                usage = json.loads(entry["body"]).get("usage")
                if usage:
                    last = json.loads(frames[-1]) if frames else {}
                    extra = {k: last.get(k) for k in ("id", "object", "created", "model")}
                    frames = [*frames, json.dumps({**extra, "choices": [], "usage": usage}, separators=(",", ":"))]
            if _http10(write):  # no chunked coding for HTTP/1.0: the body ends when the proxy closes
                parts = [
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                    b"cache-control: no-cache\r\nconnection: close\r\nx-cache: HIT\r\nage: " + age + b"\r\n\r\n"
                ]
                parts += [b"data: " + _mark_cached(f) + b"\n\n" for f in frames]
                parts.append(b"data: [DONE]\n\n")
            else:
                parts = [
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-cache: HIT\r\nage: "
                    + age
                    + b"\r\n\r\n"
                ]
                for f in frames:
                    data = b"data: " + _mark_cached(f) + b"\n\n"
                    parts.append(b"%x\r\n%s\r\n" % (len(data), data))
                parts.append(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
            write(b"".join(parts))
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
            write(_error(504 if exc.timeout else 502, str(exc), x_cache=b"BYPASS" if x_cache else b""))
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
                write(_error(504 if exc.timeout else 502, str(exc), x_cache=b"BYPASS" if x_cache else b""))
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
            return self._entry_from_body(data) if store else None
        # streamed (or read-to-close): relay piece by piece, keep the SSE frames to store once complete
        old_client = _http10(write)  # HTTP/1.0: no chunked coding, the body ends when the proxy closes
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
        frames: list[str] = []
        buf = b""
        done = False
        pieces = resp.pieces()
        try:
            async for piece in pieces:
                if not store and _client_gone(write):
                    raise _ClientAbort  # nobody reads it: stop the generation (closing aborts it in vLLM)
                write(piece if old_client else b"%x\r\n%s\r\n" % (len(piece), piece))
                wait = _drain_for(write)
                if wait is not None:
                    await wait  # back-pressure: the upstream is read as fast as the client reads
                if store:
                    buf = buf + piece if buf else piece
                    if b"\n\n" in buf:
                        *events, buf = buf.replace(b"\r\n", b"\n").split(b"\n\n")
                        for event in events:
                            for line in event.split(b"\n"):
                                if line.startswith(b"data:"):
                                    payload = line[5:].strip()
                                    if payload == b"[DONE]":
                                        done = True
                                    elif payload:
                                        frames.append(payload.decode("utf-8", "replace"))
        except UpstreamError:
            self.metrics.upstream_errors += 1
            raise _ClientAbort from None  # no last chunk: the client sees a broken stream, nothing is stored
        finally:
            await pieces.aclose()  # an early exit closes the upstream connection now, not at GC
        if not old_client:
            write(b"0\r\n\r\n")
        self.metrics.observe(time.perf_counter() - started)
        if not (store and done and frames):
            return None
        return self._entry_from_frames(frames)

    def _entry_from_body(self, data: bytes) -> Entry | None:
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict) or "error" in obj or not isinstance(obj.get("choices"), list):
            return None
        if self.cfg.skip_pii and find_pii_in(obj.get("choices")):
            self.metrics.bypassed("pii_response")
            return None
        usage = obj.get("usage") or {}
        return {
            "body": data.decode("utf-8", "replace"),
            "frames": None,
            "created": time.time(),
            "tokens": int(usage.get("total_tokens") or 0) if isinstance(usage, dict) else 0,
            "pii_checked": self.cfg.skip_pii,
        }

    def _entry_from_frames(self, frames: list[str]) -> Entry | None:
        try:
            objs = [json.loads(f) for f in frames]
        except ValueError:
            return None  # a malformed stream is not an answer to keep
        if any(not isinstance(o, dict) or "error" in o for o in objs):
            return None
        try:
            full = assemble(frames)
        except (ValueError, KeyError, TypeError, AttributeError):
            full = None
        if self.cfg.skip_pii and _streamed_pii(objs, full):
            self.metrics.bypassed("pii_response")
            return None
        usage: Any = (full or {}).get("usage") or next((o["usage"] for o in reversed(objs) if o.get("usage")), {})
        return {
            "body": json.dumps(full, separators=(",", ":"), ensure_ascii=False) if full else None,
            "frames": frames,
            "created": time.time(),
            "tokens": int(usage.get("total_tokens") or 0) if isinstance(usage, dict) else 0,
            "pii_checked": self.cfg.skip_pii,
        }


MAX_JSON_DEPTH = 64


def _json_problem(value: Any) -> str | None:
    """Why a decoded request body must not go anywhere (a 400), else None: nesting deeper than
    MAX_JSON_DEPTH, or a lone surrogate (\\ud800 ...: no UTF-8 for it, nothing downstream can use it)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
        elif isinstance(v, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str) and _SURROGATE.search(k):
                    return "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
                stack.append((x, depth + 1))
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _streamed_pii(objs: list[Any], full: dict[str, Any] | None) -> bool:
    """PII in a streamed answer, checked on the assembled text (a name or an e-mail split over
    frames is found), and frame by frame (what assembly cannot rebuild is still checked)."""
    if find_pii_in([o.get("choices") for o in objs]):
        return True
    if full is not None:
        return bool(find_pii_in(full.get("choices")))
    # not rebuildable: every string field of the choices, concatenated across frames, per field
    joined: dict[str, list[str]] = {}
    for o in objs:
        for c in o.get("choices") or ():
            if not isinstance(c, dict):
                continue
            src = c.get("delta") if isinstance(c.get("delta"), dict) else c
            for k, v in _flat(src):
                joined.setdefault(k, []).append(v)
    return any(find_pii("".join(parts)) for parts in joined.values())


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string in a JSON value, list indices included in the path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(v, f"{path}[{i}]")


def _frames_pii(frames: Any) -> bool:
    if not isinstance(frames, list) or not frames:
        return False
    try:
        objs = [json.loads(f) for f in frames]
    except (ValueError, TypeError):
        return True  # cannot check it: do not serve it
    if not all(isinstance(o, dict) for o in objs):
        return True
    try:
        full = assemble(frames)
    except (ValueError, KeyError, TypeError, AttributeError):
        full = None
    return _streamed_pii(objs, full)


LINGER = 2.0  # seconds a connection refused with an error is still read (and dropped) before it closes
TINY_CHUNKS, TINY_CHUNK_BYTES = 256, 256  # beyond 256 chunks, chunks must average >= 256 bytes
WRITE_HIGH = 256 << 10  # bytes buffered for a client before its connection stops being read
BACKLOG_MAX = 1 << 20  # pipelined bytes read ahead while an answer is in flight


def _default_max_connections() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, (soft - 32) // 2))  # the other half: upstream and Redis connections


def _drain_for(write: Write) -> Coroutine[Any, Any, None] | None:
    """Wait-until-drained for a :class:`ProxyProtocol` client that is not reading, else None."""
    proto = getattr(write, "__self__", None)
    if isinstance(proto, ProxyProtocol) and proto.paused:
        return proto.drained()
    return None


def _http10(write: Write) -> bool:
    """The client of a :class:`ProxyProtocol` write speaks HTTP/1.0 (no chunked coding)."""
    proto = getattr(write, "__self__", None)
    return isinstance(proto, ProxyProtocol) and proto.http10


def _client_gone(write: Write) -> bool:
    """The client of a :class:`ProxyProtocol` write has disconnected. (A cacheable miss is read
    to its end regardless: identical requests may be waiting for it, and it gets stored.)"""
    proto = getattr(write, "__self__", None)
    return isinstance(proto, ProxyProtocol) and proto.transport is None


class _ClientAbort(Exception):
    """The response cannot be completed (upstream broke off mid-stream): drop the client connection."""


# -- the client side -------------------------------------------------------------------------------------------


class ProxyProtocol(asyncio.Protocol):
    """HTTP/1.1 server side, framed by h11 (RFC 9112): keep-alive, pipelining (answered in order),
    ``Expect: 100-continue``, Content-Length and chunked request bodies, write flow control.

    Stricter than h11 where a proxy must be (RFC 9112 5.2, 6.1, 6.3; RFC 9110 8.6): a bare LF or CR
    in the head, an obs-fold line, Content-Length with Transfer-Encoding, and a repeated
    Content-Length, Transfer-Encoding, Host or Authorization are a 400 and a closed connection --
    whatever an upstream would make of them, it never sees them.
    """

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.responded = False
        self.close_after = False
        self.continued = False
        self.http10 = False  # the current request's client speaks HTTP/1.0: close-delimited bodies
        self.backlog = 0  # bytes received while an answer is in flight
        self.paused = False  # the client does not read: its answers wait, its requests are not read
        self._backlog_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._req: h11.Request | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._pieces = 0
        self._chunked = False
        self.lingering = False  # answered an error: reading only to drop what the client still sends
        self._counted = False
        # one timer per connection (re-armed by moving its deadline; nothing is scheduled per request)
        self._kind: str | None = None  # idle / head / body: what the client is late with
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = t
        p = self.proxy
        p.connections += 1
        self._counted = True
        if p.connections > p.max_connections:
            self.write(_error(503, "too many connections", "server_busy", b""))
            t.close()
            return
        t.set_write_buffer_limits(high=WRITE_HIGH)
        self._arm("idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._body = []
        if self._counted:
            self._counted = False
            self.proxy.connections -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    # -- flow control: a client that does not read gets no more answers written --------------------------

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()
        if self.transport is not None:
            self.transport.resume_reading()
            if self.task is None:
                self._next()

    def _wake(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drained(self) -> None:
        """Until the client has read what was written (or is gone)."""
        if self.paused and self.transport is not None:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    # -- timeouts -------------------------------------------------------------------------------------------

    def _arm(self, kind: str | None) -> None:
        """Expect ``kind`` (idle: the next request; head: the rest of a head, not extended by
        trickled bytes; body: more body); None: the proxy is answering, no client timeout."""
        if kind == self._kind and kind != "body":
            return
        self._kind = kind
        if kind is None:
            return
        cfg = self.proxy.cfg
        seconds = cfg.idle_timeout if kind == "idle" else cfg.header_timeout if kind == "head" else cfg.body_timeout
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check_timer)

    def _check_timer(self) -> None:
        self._timer = None
        if self.transport is None or self._kind is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._check_timer)
            return
        if self._kind == "idle":
            self.transport.close()
        else:
            self._fail(408, f"request {self._kind} not received in time")

    def eof_received(self) -> bool | None:
        if self.lingering:
            return False  # the client has read the answer and closed: close
        self.conn.receive_data(b"")
        if self.task is None:
            self._next()
        return True  # half-close: answer what was asked, then close

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.lingering:
            return
        try:
            self.conn.receive_data(data)
        except h11.RemoteProtocolError:  # data after the client's EOF
            self.transport.close()
            return
        if self.task is None:
            self._next()
        else:
            self.backlog += len(data)
            if self.backlog > BACKLOG_MAX and not self._backlog_paused:
                self._backlog_paused = True  # pipelined requests wait in the kernel, not here
                self.transport.pause_reading()

    def write(self, data: bytes) -> None:
        self.responded = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` and close -- lingering (RFC 9112 9.6): the rest of what the client
        sent is read and dropped for up to LINGER seconds, so that closing with unread input
        does not reset the connection before the client has read the answer."""
        self.write(_error(status, message, "invalid_request_error", b""))
        self._body = []
        self._kind = None
        t = self.transport
        if t is None or self.lingering:
            return
        self.lingering = True
        if t.can_write_eof():
            t.write_eof()
            if self.paused:
                t.resume_reading()
            asyncio.get_running_loop().call_later(LINGER, t.close)
        else:
            t.close()

    def _next(self) -> None:
        self.backlog = 0
        if self._backlog_paused:
            self._backlog_paused = False
            if self.transport is not None and not self.paused:
                self.transport.resume_reading()
        while self._step():
            pass

    def _head_check(self) -> str | None:
        """What RFC 9112 lets a server reject and h11 tolerates, in the head about to be parsed."""
        raw = self.conn.trailing_data[0]
        end = raw.find(b"\r\n\r\n")
        head = raw if end < 0 else raw[: end + 2]
        if len(head) > MAX_HEAD:
            return "request head too large"
        if _BARE_EOL.search(head):
            return "bare LF or CR in the request head"
        if _OBS_FOLD.search(head):
            return "obsolete line folding in the request head"
        return None

    def _step(self) -> bool:
        """Start answering the next complete request; True if it was answered synchronously and
        another one may follow."""
        conn = self.conn
        if self.transport is None or self.paused or self.lingering:
            return False
        if self._req is None and conn.their_state is h11.IDLE:
            bad = self._head_check()
            if bad is not None:
                self._fail(431 if "too large" in bad else 400, bad)
                return False
        limit = self.proxy.cfg.max_body_bytes
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = 431 if exc.error_status_hint == 431 else 400
                self._fail(status, "request head too large" if status == 431 else f"malformed request: {exc}")
                return False
            if ev is h11.NEED_DATA:
                if self._req is not None:
                    self._arm("body")
                else:
                    self._arm("head" if conn.trailing_data[0] else "idle")
                if conn.they_are_waiting_for_100_continue and not self.continued and self._req is not None:
                    self.continued = True
                    self.write(conn.send(_CONTINUE) or b"")
                return False
            if isinstance(ev, h11.ConnectionClosed):
                self.transport.close()
                return False
            if ev is h11.PAUSED:
                return False
            if isinstance(ev, h11.Request):
                problem = _request_head_problem(ev)
                if problem is not None:
                    self._fail(400, problem)
                    return False
                self._req, self._body, self._size, self._pieces = ev, [], 0, 0
                self._chunked = any(k == b"transfer-encoding" for k, _ in ev.headers)
            elif isinstance(ev, h11.Data):
                self._size += len(ev.data)
                self._pieces += 1
                if self._size > limit:
                    self._fail(413, "request body too large")
                    return False
                if self._chunked and self._pieces > TINY_CHUNKS and self._size < self._pieces * TINY_CHUNK_BYTES:
                    # parsing costs per chunk: a body in 1-byte chunks would hold the event loop
                    self._fail(400, f"chunked body in too many chunks of under {TINY_CHUNK_BYTES} bytes")
                    return False
                self._body.append(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                break
        req = self._req
        assert req is not None
        self._arm(None)
        body = b"".join(self._body) if len(self._body) != 1 else bytes(self._body[0])
        self._req, self._body = None, []
        # h11 tracks our side too: a placeholder response (never sent) ends this cycle
        conn.send(_PLACEHOLDER)
        conn.send(_END)
        self.close_after = conn.our_state is h11.MUST_CLOSE
        self.http10 = req.http_version == b"1.0"
        if not self.close_after:
            conn.start_next_cycle()
        self.continued = False
        self.responded = False
        try:
            pending = self.proxy.dispatch(req.method, req.target, list(req.headers), body, self.write)
        except Exception as exc:  # a bug: answer, log, keep serving
            log.error("proxy error (a bug): %s", type(exc).__name__, exc_info=exc)
            if not self.responded:
                self.write(_error(502, "proxy error", "proxy_error", b""))
            pending = None
        if pending is None:  # answered synchronously (a memory hit, /metrics...)
            if self.close_after:
                if self.transport is not None:
                    self.transport.close()
                return False
            return self.transport is not None
        self.task = asyncio.ensure_future(pending)
        self.task.add_done_callback(self._done)
        return False

    def _done(self, task: asyncio.Task[None]) -> None:
        self.task = None
        if task.cancelled():
            if self.transport is not None:
                self.transport.close()
            return
        self._after(task.exception())

    def _after(self, exc: BaseException | None) -> None:
        """One response is over: next pipelined request, or close."""
        if exc is not None:
            if not isinstance(exc, _ClientAbort):
                log.error("proxy error: %r", exc, exc_info=exc)
                if not self.responded:
                    self.write(_error(502, "proxy error", "proxy_error", b""))
            if self.responded and self.transport is not None:
                self.transport.close()  # a half-sent response: the connection cannot be reused
                return
        if self.close_after:
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is not None:
            self._next()


_BARE_EOL = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_OBS_FOLD = re.compile(rb"\n[ \t]")
_PLACEHOLDER = h11.Response(status_code=200, headers=[(b"content-length", b"0")])  # events are immutable
_END = h11.EndOfMessage()
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
_ONCE = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"host",
        b"authorization",
        b"api-key",
        b"x-api-key",
        b"openai-organization",
        b"openai-project",
    }
)


def _request_head_problem(req: h11.Request) -> str | None:
    """Why a head h11 accepts must be refused by a proxy (a 400), else None."""
    seen: set[bytes] = set()
    for k, _ in req.headers:
        if k in _ONCE:
            if k in seen:
                return f"more than one {k.decode()} header"
            seen.add(k)
    if b"content-length" in seen and b"transfer-encoding" in seen:
        return "both content-length and transfer-encoding"
    return None


async def serve(proxy: Proxy, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
    """Run the proxy until ``stop`` is set; ``ready(port)`` is called once it listens."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ProxyProtocol(proxy), proxy.cfg.host, proxy.cfg.port, backlog=1024, reuse_address=True
    )
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        proxy.upstream.close()
        await proxy.backend.close()
