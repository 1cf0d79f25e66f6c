"""Bounded concurrent soak of the prompt-cache proxy: does every client get the answer to ITS request?

Three processes on 127.0.0.1, as deployed: a fault-injecting upstream (this script with
``--serve-upstream``, raw asyncio), the proxy (``python -m vllmtune.cache --backend redis``) and a
real ``redis-server`` (killed mid-run, then restarted: the proxy must fail open). This process is the
client: ``--concurrency`` keep-alive connections (h11) sending ``--requests`` deterministic
(temperature 0) chat/completions requests, streamed and not (1 in 10 with ``cache-control:
no-cache``), from 5 tenants over 10 prompts.

The upstream writes into every completion text which request it answers (the client's
``x-soak-id``, the tenant of the Authorization header, the route, the prompt), spelled in letters
only so that the proxy's PII filter never skips it. Faults, chosen per request id by a seeded RNG
(so the client knows which answers were sabotaged): a 103 Early Hints before the answer, an
unsolicited extra response right after the answer or 3 ms later (once the proxy may already have
sent the next request: it must not reuse the connection that soon), a 500, a connection closed mid-body (after
[DONE] but before the last chunk, for some streams), slow answers.

Invariants, checked on every answer the client receives (exit 1 if one breaks):
  * a MISS answers this very request (same id, tenant, route, prompt);
  * a HIT answers the same tenant, route and prompt, with the answer of an EARLIER request that the
    upstream answered correctly (never a 500 or a cut answer: 0 cached errors, 0 cross-tenant hits);
  * a failed answer (5xx, broken stream) happens only to a request whose upstream answer was
    sabotaged: Redis down or not, every other request is answered (fail open);
  * the proxy's RSS stays bounded: the run fails when it peaks above ``--max-rss-mb``, or grows
    by more than ``--max-rss-growth-mb`` over its start (16 MiB by default: what the proxy holds in
    this run is bounded far below that -- about 40 distinct bodies in the parsed-request memo, 5
    tenants, at most 32 client and 32 upstream connections with answers under 2 KiB, a Redis
    client pool -- while a leak of 1 KiB per request would add 20 MiB over 20,000 requests).

    python benchmarks/soak_cache_proxy.py [--requests 20000] [--concurrency 32] [--max-seconds 300]

``tests/cache/test_soak.py`` runs it as a module (:func:`options`, :func:`run`, :class:`Result`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import env, free_port, proxy_cmd, stop, wait_port

TENANTS = ("alpha", "bravo", "charlie", "delta", "echo")
PROMPTS = (
    "why is the sky blue",
    "name a prime colour",
    "explain prefix caching briefly",
    "what does a proxy do",
    "describe the water cycle",
    "what is a keyval store",
    "summarise the plot of hamlet",
    "how do bees make honey",
    "what is an event loop",
    "define idempotent",
)
ROUTES = {"chat": b"/v1/chat/completions", "completions": b"/v1/completions"}
OK_FAULTS = ("none", "early_hints", "extra_response", "late_extra", "slow")  # the upstream still answers correctly
BAD_FAULTS = ("status_500", "cut")  # the answer is an error or is broken: it must never be cached


def fault_of(seed: int, rid: int) -> str:
    """The fault the upstream injects into its answer to request ``rid`` (both sides compute it)."""
    r = random.Random(f"{seed}:{rid}").random()
    if r < 0.04:
        return "early_hints"
    if r < 0.07:
        return "extra_response"
    if r < 0.10:
        return "status_500"
    if r < 0.13:
        return "cut"
    if r < 0.18:
        return "slow"
    if r < 0.20:
        return "late_extra"
    return "none"


def spell(n: int) -> str:
    """``n`` in letters (digits a-j): digit runs in an answer would look like a phone number."""
    return "".join("abcdefghij"[int(d)] for d in str(n))


def unspell(s: str) -> int:
    return int("".join(str("abcdefghij".index(c)) for c in s))


def answer_text(rid: int, tenant: str, route: str, prompt: str) -> str:
    return f"soak|id={spell(rid)}|tenant={tenant}|route={route}|prompt={prompt}|end"


def parse_text(text: str) -> dict[str, str] | None:
    if not text.startswith("soak|") or not text.endswith("|end"):
        return None
    out = {}
    for part in text[5:-4].split("|"):
        k, sep, v = part.partition("=")
        if not sep:
            return None
        out[k] = v
    return out


# -- the upstream ------------------------------------------------------------------------------------------


class FaultyUpstream:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head[:-4].split(b"\r\n")
                _method, target, _ = lines[0].split(b" ", 2)
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    hdrs[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(hdrs.get(b"content-length", b"0")))
                if not await self.answer(target, hdrs, body, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def answer(self, target: bytes, hdrs: dict[bytes, bytes], body: bytes, w: asyncio.StreamWriter) -> bool:
        rid = int(hdrs.get(b"x-soak-id", b"0"))
        auth = hdrs.get(b"authorization", b"").decode()
        tenant = auth.removeprefix("Bearer soak-") if auth.startswith("Bearer soak-") else "none"
        route = "chat" if target == ROUTES["chat"] else "completions"
        req = json.loads(body)
        prompt = req["messages"][0]["content"] if route == "chat" else req["prompt"]
        text = answer_text(rid, tenant, route, prompt)
        fault = fault_of(self.seed, rid)
        rng = random.Random(f"{self.seed}:{rid}:detail")
        if fault == "slow":
            await asyncio.sleep(rng.uniform(0.02, 0.2))
        if fault == "early_hints":
            w.write(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
            await w.drain()
        if fault == "status_500":
            data = json.dumps({"error": {"message": text, "type": "InternalServerError", "code": 500}}).encode()
            w.write(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(data), data)
            )
            return True
        base = {"id": f"cmpl-{spell(rid)}", "created": 1700000000, "model": "soak-model"}
        if not req.get("stream"):
            if route == "chat":
                msg = {"role": "assistant", "content": text}
                choice: dict[str, Any] = {"index": 0, "message": msg, "logprobs": None, "finish_reason": "stop"}
                obj = {**base, "object": "chat.completion", "choices": [choice]}
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
                obj = {**base, "object": "text_completion", "choices": [choice]}
            obj["usage"] = {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}
            data = json.dumps(obj).encode()
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(data)
            if fault == "cut":
                w.write(head + data[: rng.randrange(1, len(data))])
                await w.drain()
                _cut(w, rng)
                return False
            w.write(head + data)
        else:
            kind = "chat.completion.chunk" if route == "chat" else "text_completion"

            def chunk(**c: Any) -> bytes:
                one = {**base, "object": kind, "choices": [{"index": 0, "logprobs": None, "finish_reason": None, **c}]}
                data = b"data: " + json.dumps(one, separators=(",", ":")).encode() + b"\n\n"
                return b"%x\r\n%s\r\n" % (len(data), data)

            step = max(1, len(text) // 4)
            pieces = [text[i : i + step] for i in range(0, len(text), step)]
            frames = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
            if route == "chat":
                frames.append(chunk(delta={"role": "assistant", "content": ""}))
                frames += [chunk(delta={"content": p}) for p in pieces]
                frames.append(chunk(delta={"content": ""}, finish_reason="stop"))
            else:
                frames += [chunk(text=p) for p in pieces]
                frames.append(chunk(text="", finish_reason="stop"))
            frames.append(b"e\r\ndata: [DONE]\n\n\r\n")
            if fault == "cut":  # anywhere from after the head to after [DONE] (no last chunk)
                for f in frames[: rng.randrange(1, len(frames) + 1)]:
                    w.write(f)
                    await w.drain()
                _cut(w, rng)
                return False
            for f in frames:
                w.write(f)
                if fault == "slow":
                    await w.drain()
                    await asyncio.sleep(0.005)
            w.write(b"0\r\n\r\n")
        if fault in ("extra_response", "late_extra"):  # nobody asked for it; it names a request nobody sent
            bogus = answer_text(0, "nobody", route, "unsolicited").encode()
            extra = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(bogus), bogus)
            if fault == "late_extra":  # while this handler already reads the next request
                asyncio.get_running_loop().call_later(0.003, lambda: w.is_closing() or w.write(extra))
            else:
                if rng.random() < 0.5:  # in its own segment, right after the answer
                    await w.drain()
                w.write(extra)
        await w.drain()
        return True


def _cut(w: asyncio.StreamWriter, rng: random.Random) -> None:
    """Drop the connection mid-answer: a reset, or a clean close (FIN) the proxy must not take for an end."""
    if rng.random() < 0.5:
        w.transport.abort()
    else:
        w.close()


async def run_upstream(port: int, seed: int, seconds: float) -> None:
    up = FaultyUpstream(seed)
    server = await asyncio.start_server(up.handle, "127.0.0.1", port)
    async with server:
        await asyncio.sleep(seconds)


# -- the client ---------------------------------------------------------------------------------------------


@dataclass
class Stats:
    sent: int = 0
    hits: int = 0
    misses: int = 0
    bypass: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # kind -> count, faults injected upstream
    unexpected: Counter[str] = field(default_factory=Counter)  # errors on an answer that was not sabotaged
    wrong: int = 0
    cross_tenant: int = 0
    cached_errors: int = 0
    interim_seen: int = 0
    injected: Counter[str] = field(default_factory=Counter)  # faults on the answers that came from the upstream
    problems: list[str] = field(default_factory=list)
    redis_down_requests: int = 0
    redis_down_ok: int = 0

    def problem(self, msg: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(msg)


class BrokenAnswer(Exception):
    pass


class Client:
    """One keep-alive connection to the proxy, framed by h11; reopened after a broken answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.conn = h11.Connection(h11.CLIENT)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def call(
        self, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, bytes], bytes, int]:
        if self.writer is None or self.conn.our_state is not h11.IDLE:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.conn = h11.Connection(h11.CLIENT)
        conn, reader, writer = self.conn, self.reader, self.writer
        assert reader is not None
        hdrs = [(b"host", b"127.0.0.1"), (b"content-length", b"%d" % len(body)), *headers]
        writer.write(conn.send(h11.Request(method="POST", target=path, headers=hdrs)) + conn.send(h11.Data(data=body)))
        conn.send(h11.EndOfMessage())
        status, rhdrs, parts, interim = 0, {}, [], 0
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)  # b"": EOF, h11 raises if the answer is incomplete
                    continue
                if isinstance(ev, h11.InformationalResponse):
                    interim += 1
                elif isinstance(ev, h11.Response):
                    status, rhdrs = ev.status_code, {k: v for k, v in ev.headers}
                elif isinstance(ev, h11.Data):
                    parts.append(bytes(ev.data))
                elif isinstance(ev, h11.EndOfMessage):
                    break
                elif isinstance(ev, h11.ConnectionClosed):
                    raise BrokenAnswer("closed before an answer")
        except (h11.RemoteProtocolError, ConnectionError) as exc:
            await self.close()
            raise BrokenAnswer(str(exc)) from None
        if conn.their_state is h11.DONE and conn.our_state is h11.DONE:
            conn.start_next_cycle()
        else:
            await self.close()
        return status, rhdrs, b"".join(parts), interim


def completion_text(route: str, stream: bool, body: bytes) -> str:
    if not stream:
        obj = json.loads(body)
        c = obj["choices"][0]
        return str(c["message"]["content"] if route == "chat" else c["text"])
    out = []
    for event in body.decode().split("\n\n"):
        for line in event.split("\n"):
            if not line.startswith("data:") or line[5:].strip() in ("", "[DONE]"):
                continue
            obj = json.loads(line[5:])
            for c in obj.get("choices") or []:
                piece = (c.get("delta") or {}).get("content") if route == "chat" else c.get("text")
                out.append(piece or "")
    return "".join(out)


class Soak:
    def __init__(self, a: argparse.Namespace, port: int, redis: RedisServer) -> None:
        self.a, self.port, self.redis = a, port, redis
        self.st = Stats()
        self.next_rid = 1
        self.rng = random.Random(a.seed)
        self.deadline = time.monotonic() + a.max_seconds
        self.jobs: dict[int, tuple[str, str, str]] = {}  # rid -> (tenant, route, prompt) sent
        self.cut_short = False

    def plan(self) -> tuple[int, str, str, str, bool, bool] | None:
        if self.next_rid > self.a.requests:
            return None
        if time.monotonic() > self.deadline:
            self.cut_short = True
            return None
        rid = self.next_rid
        self.next_rid += 1
        r = self.rng
        tenant, route, prompt = r.choice(TENANTS), r.choice(("chat", "completions")), r.choice(PROMPTS)
        return rid, tenant, route, prompt, r.random() < 0.4, r.random() < 0.1

    async def worker(self) -> None:
        client = Client(self.port)
        try:
            while (job := self.plan()) is not None:
                await self.one(client, *job)
        finally:
            await client.close()

    async def one(
        self, client: Client, rid: int, tenant: str, route: str, prompt: str, stream: bool, fresh: bool
    ) -> None:
        """Send one request (``fresh``: with ``cache-control: no-cache``, the answer must come from
        the upstream) and check the answer."""
        st = self.st
        st.sent += 1
        self.jobs[rid] = (tenant, route, prompt)
        redis_down = self.redis.down
        if redis_down:
            st.redis_down_requests += 1
        req: dict[str, Any] = {"model": "soak-model", "temperature": 0, "max_tokens": 16}
        if route == "chat":
            req["messages"] = [{"role": "user", "content": prompt}]
        else:
            req["prompt"] = prompt
        if stream:
            req["stream"] = True
        headers = [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer soak-{tenant}".encode()),
            (b"x-soak-id", b"%d" % rid),
        ]
        if fresh:
            headers.append((b"cache-control", b"no-cache"))
        fault = fault_of(self.a.seed, rid)
        where = f"request {rid} ({tenant}, {route}, {'stream' if stream else 'json'}, fault {fault}"
        where += ", no-cache)" if fresh else ")"
        try:
            status, hdrs, body, interim = await asyncio.wait_for(
                client.call(ROUTES[route], headers, json.dumps(req).encode()), 30
            )
        except BrokenAnswer as exc:
            self.failed(fault, "broken_answer", f"{where}: broken answer ({exc})")
            return
        except asyncio.TimeoutError:
            await client.close()
            self.failed(fault, "client_timeout", f"{where}: no answer in 30 s")
            return
        except OSError as exc:
            await client.close()
            self.failed(fault, "connect_error", f"{where}: {exc}")
            return
        st.interim_seen += interim
        xc = hdrs.get(b"x-cache", b"").decode()
        if status != 200:
            if status == 500 and xc == "HIT":
                st.cached_errors += 1
                st.problem(f"{where}: a 500 served as a HIT")
            elif status == 500:  # the upstream's own 500 relayed: it must be the one for this request
                msg = json.loads(body).get("error", {}).get("message", "")
                got = parse_text(msg)
                if got is None or unspell(got["id"]) != rid:
                    st.wrong += 1
                    st.problem(f"{where}: a 500 that answers another request: {msg[:120]!r}")
            self.failed(fault, f"http_{status}", f"{where}: HTTP {status} {body[:120]!r}")
            return
        try:
            text = completion_text(route, stream, body)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            if xc == "HIT" and b'"error"' in body:
                st.cached_errors += 1  # an upstream error body replayed from the cache
            st.wrong += 1
            st.problem(f"{where}: unreadable {xc} 200 answer ({exc}): {body[:160]!r}")
            return
        got = parse_text(text)
        if got is None:
            if xc == "HIT" and text.startswith("soak|"):
                st.cached_errors += 1  # a cut answer's beginning replayed from the cache
            st.wrong += 1
            st.problem(f"{where}: {xc} answer is not one the upstream wrote: {text[:160]!r}")
            return
        origin = unspell(got["id"]) if got["id"] else 0
        same = (got.get("tenant"), got.get("route"), got.get("prompt")) == (tenant, route, prompt)
        if xc == "HIT" and fresh:
            st.wrong += 1
            st.problem(f"{where}: a HIT although the request said cache-control: no-cache")
        if xc == "HIT":
            st.hits += 1
            if got.get("tenant") != tenant:
                st.cross_tenant += 1
                st.problem(f"{where}: HIT with the answer of tenant {got.get('tenant')} (request {origin})")
            if fault_of(self.a.seed, origin) in BAD_FAULTS:
                st.cached_errors += 1
                st.problem(
                    f"{where}: HIT replays request {origin}'s sabotaged answer ({fault_of(self.a.seed, origin)})"
                )
            if not same or origin == rid or self.jobs.get(origin) != (tenant, route, prompt):
                st.wrong += 1
                st.problem(f"{where}: HIT answers request {origin}: {text[:160]!r}")
                return
        else:
            st.injected[fault] += 1
            if xc == "MISS":
                st.misses += 1
            else:
                st.bypass += 1
            if not same or origin != rid:
                st.wrong += 1
                st.problem(f"{where}: {xc or 'no x-cache'} answers request {origin}: {text[:160]!r}")
                return
            if fault in BAD_FAULTS:
                # a cut after [DONE] still gets a clean answer only if the proxy invented the end
                st.wrong += 1
                st.problem(f"{where}: a complete 200 although the upstream's answer was {fault}")
                return
        st.ok += 1
        if redis_down:
            st.redis_down_ok += 1

    def failed(self, fault: str, kind: str, msg: str) -> None:
        self.st.injected[fault] += 1
        if fault in BAD_FAULTS:
            self.st.errors[f"{fault}->{kind}"] += 1
        else:
            self.st.unexpected[kind] += 1
            self.st.problem(msg)


# -- processes ------------------------------------------------------------------------------------------------


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary, self.port = binary, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.down = True
        self.kills = self.restarts = 0

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")
        self.down = False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.down = True


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


async def soak(a: argparse.Namespace, port: int, redis: RedisServer, proxy_pid: int) -> tuple[Soak, list[int], float]:
    s = Soak(a, port, redis)
    rss: list[int] = [rss_kb(proxy_pid)]

    async def sampler() -> None:
        while True:
            await asyncio.sleep(0.25)
            rss.append(rss_kb(proxy_pid))

    async def chaos() -> None:  # Redis dies at 35% of the requests and comes back (empty) at 65%
        while s.next_rid < a.requests * 0.35:
            await asyncio.sleep(0.05)
        redis.kill()
        redis.kills += 1
        while s.next_rid < a.requests * 0.65:
            await asyncio.sleep(0.05)
        if not a.no_restart:
            await asyncio.to_thread(redis.start)
            redis.restarts += 1

    side = [asyncio.create_task(sampler()), asyncio.create_task(chaos())]
    t = time.perf_counter()
    try:
        await asyncio.gather(*(s.worker() for _ in range(a.concurrency)))
    finally:
        wall = time.perf_counter() - t
        for task in side:
            task.cancel()
        await asyncio.gather(*side, return_exceptions=True)
    rss.append(rss_kb(proxy_pid))
    return s, rss, wall


@dataclass
class Result:
    """One soak run: what the client saw, the proxy's RSS samples (KiB), and what broke."""

    a: argparse.Namespace
    s: Soak
    rss: list[int]
    wall: float
    alive: bool
    warnings: list[str]

    @property
    def st(self) -> Stats:
        return self.s.st

    def report(self) -> list[str]:
        st, a, redis = self.st, self.a, self.s.redis
        rss, warnings = self.rss, self.warnings
        errors = ", ".join(f"{k} {v}" for k, v in sorted(st.errors.items()))
        unexpected = ", ".join(f"{k} {v}" for k, v in sorted(st.unexpected.items()))
        shown = ", ".join(f"{k} {v}" for k, v in sorted(st.injected.items()) if k != "none")
        return [
            f"requests        : {st.sent} of {a.requests} (concurrency {a.concurrency}, seed {a.seed}) "
            f"in {self.wall:.1f} s = {st.sent / self.wall:,.0f} req/s",
            f"answers         : {st.ok} correct; x-cache HIT {st.hits}, MISS {st.misses}, other {st.bypass}",
            f"injected-fault errors (expected): {sum(st.errors.values())} {errors}",
            f"unexpected errors: {sum(st.unexpected.values())} {unexpected}",
            f"upstream faults : {shown} (on the {sum(st.injected.values())} answers that came from the upstream)",
            f"wrong answers   : {st.wrong} (cross-tenant hits included)",
            f"cross-tenant hits: {st.cross_tenant}",
            f"cached errors   : {st.cached_errors}",
            f"1xx seen by the client: {st.interim_seen} (the proxy must swallow 103s)",
            f"redis           : killed {redis.kills}x, restarted {redis.restarts}x; while down "
            f"{st.redis_down_ok} of {st.redis_down_requests} requests answered correctly (the rest: injected faults)",
            f"proxy RSS       : start {rss[0] / 1024:.1f} MiB, peak {max(rss) / 1024:.1f} MiB, "
            f"end {rss[-1] / 1024:.1f} MiB ({len(rss)} samples)",
            f"proxy warnings  : {len(warnings)} lines" + (f", last: {warnings[-1][:160]}" if warnings else ""),
        ]

    def failures(self) -> list[str]:
        """Why the run failed (empty: every invariant held)."""
        st, a, s = self.st, self.a, self.s
        out = []
        if s.cut_short:
            out.append(f"--max-seconds {a.max_seconds:g} stopped the run after {st.sent} requests")
        if st.wrong or st.cross_tenant or st.cached_errors or st.unexpected or st.interim_seen:
            out.append("an invariant broke:\n" + "\n".join("  " + p for p in st.problems))
        if s.redis.kills and st.redis_down_requests == 0:
            out.append("no request was sent while Redis was down")
        if max(self.rss) / 1024 > a.max_rss_mb:
            out.append(f"the proxy's RSS peaked above {a.max_rss_mb:g} MiB")
        if (max(self.rss) - self.rss[0]) / 1024 > a.max_rss_growth_mb:
            out.append(f"the proxy's RSS grew by more than {a.max_rss_growth_mb:g} MiB")
        if not self.alive:
            out.append("the proxy died during the run")
        if st.hits == 0:
            out.append("no cache hit at all: the soak did not exercise the cache")
        return out


def options(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=300.0, help="time bound of the whole load loop")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-rss-mb", type=float, default=256.0, help="fail when the proxy's RSS peaks above")
    ap.add_argument(
        "--max-rss-growth-mb", type=float, default=16.0, help="fail when the proxy's RSS grows by more than"
    )
    ap.add_argument("--redis-l1-bytes", type=int, default=0, help="the proxy's in-process L1 (0: every hit asks Redis)")
    ap.add_argument("--no-restart", action="store_true", help="leave Redis dead after the kill")
    ap.add_argument(
        "--proxy-arg", action="append", default=[], help="extra proxy argument (repeat), e.g. --share-across-tenants"
    )
    ap.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.requests < 1 or a.concurrency < 1 or a.max_seconds <= 0:
        ap.error("--requests, --concurrency and --max-seconds must be positive")
    return a


def run(a: argparse.Namespace, redis_binary: str) -> Result:
    """Start the upstream, Redis and the proxy, soak, stop them all."""
    redis = RedisServer(redis_binary)
    up_port, port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryFile() as log:  # the proxy's warnings, read after the run
        try:
            redis.start()
            up_cmd = [sys.executable, __file__, "--serve-upstream", str(up_port), "--seed", str(a.seed)]
            upstream = subprocess.Popen([*up_cmd, "--max-seconds", str(a.max_seconds)], env=env())
            procs.append(upstream)
            args = ["--backend", "redis", "--redis-url", f"redis://127.0.0.1:{redis.port}/0"]
            args += ["--redis-l1-bytes", str(a.redis_l1_bytes), "--upstream-timeout", "10", *a.proxy_arg]
            proxy = subprocess.Popen(proxy_cmd(up_port, port, *args), env=env(), stderr=log)
            procs.append(proxy)
            wait_port(up_port, upstream, "the upstream")
            wait_port(port, proxy, "the proxy")
            s, rss, wall = asyncio.run(soak(a, port, redis, proxy.pid))
            alive = proxy.poll() is None
        finally:
            stop(procs)
            redis.kill()
        log.seek(0)
        warnings = [ln for ln in log.read().decode(errors="replace").splitlines() if ln]
    return Result(a, s, rss, wall, alive, warnings)


def main() -> int:
    a = options()
    if a.serve_upstream:
        asyncio.run(run_upstream(a.serve_upstream, a.seed, a.max_seconds + 60))
        return 0
    binary = shutil.which("redis-server")
    if binary is None:
        print("error: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    r = run(a, binary)
    print("\n".join(r.report()))
    failures = r.failures()
    for f in failures:
        print("FAILED: " + f)
    print("soak FAILED" if failures else "OK: every invariant held")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
