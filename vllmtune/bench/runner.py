"""The load generator: closed-loop concurrency or an open-loop (constant / Poisson / gamma) rate,
bounded by a request count or a duration, streaming or not, against any OpenAI-compatible
endpoint. One asyncio loop, one keep-alive connection per concurrent worker.

Its seams, for tests: ``connect`` (what opens a worker's :class:`~vllmtune.bench.http.Transport`;
a real socket connection by default) and ``clock`` (the time source of every timestamp;
``time.perf_counter`` by default). A scripted transport on an event loop with virtual time
(``tests/support/fake_transport.py``) gives exact, repeatable timings without sockets."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vllmtune.bench.headers import header_line
from vllmtune.bench.http import Connect, Connection, Endpoint, HttpError, Transport, get
from vllmtune.bench.metrics import Scrape, parse
from vllmtune.bench.workloads import Case

CONTENT = re.compile(rb'"(?:content|text)":\s*"(?!")')
COMPLETION_TOKENS = re.compile(rb'"completion_tokens":\s*(\d+)')
PROMPT_TOKENS = re.compile(rb'"prompt_tokens":\s*(\d+)')
CACHED_TOKENS = re.compile(rb'"cached_tokens":\s*(\d+)')


@dataclass
class Options:
    """What ``vllmtune bench`` was asked to do."""

    url: str
    model: str
    cases: list[Case]
    concurrency: int = 16
    rate: float | None = None  # requests/s; None = closed loop at full concurrency
    poisson: bool = False
    burstiness: float | None = None  # gamma arrivals (shape = burstiness; 1 = Poisson), as vllm bench serve
    duration: float | None = None  # seconds; stop issuing after this long
    warmup: int = 0
    stream: bool = True
    api: str = "chat"  # chat | completions
    api_key: str | None = None
    seed: int = 0
    timeout: float = 600.0
    ignore_eos: bool = False  # vLLM's sampling extra: answers run to max_tokens (vllm bench serve --ignore-eos)
    session_header: str | None = None  # each request whose case has a user carries "NAME: user" (consistent_hash)


@dataclass
class Record:
    """One request as measured by the client. Times are seconds from the run start."""

    index: int
    scheduled: float
    start: float = math.nan
    first_token: float = math.nan
    end: float = math.nan
    status: int = 0
    error: str | None = None
    error_detail: str = ""  # what the server said (the error body's message), for the first few shown
    chunk_times: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    text: str = ""
    warmup: bool = False
    x_cache: str = ""  # the prompt-cache proxy's X-Cache answer (HIT, MISS, BYPASS), "" without a proxy


def _headers(api_key: str | None) -> bytes:
    h = b"Content-Type: application/json\r\nAccept: */*\r\n"
    if api_key:
        h += b"Authorization: Bearer " + api_key.encode() + b"\r\n"
    return h


def _body(case: Case, opts: Options) -> bytes:
    if opts.api == "chat":
        body: dict[str, Any] = case.chat_body(opts.model)
    else:
        body = {
            "model": opts.model,
            "prompt": case.prompt(),
            "max_tokens": case.max_tokens,
            "temperature": case.temperature,
        }
        if case.user is not None:
            body["user"] = case.user
    if opts.ignore_eos:
        body["ignore_eos"] = True
    if opts.stream:
        # usage on every chunk: tokens per chunk without a tokenizer (speculative decoding
        # sends several tokens per chunk)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    return json.dumps(body).encode()


def _delta_text(obj: dict[str, Any]) -> str:
    for choice in obj.get("choices") or ():
        delta = choice.get("delta")
        if isinstance(delta, dict):
            return str(delta.get("content") or "")
        if "text" in choice:
            return str(choice.get("text") or "")
    return ""


async def _one(
    conn: Transport,
    path: str,
    body: bytes,
    headers: bytes,
    rec: Record,
    t0: float,
    stream: bool,
    want_text: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    rec.start = clock() - t0
    resp = await conn.send("POST", path, body, headers)
    rec.status = resp.status
    rec.x_cache = resp.headers.get("x-cache", "")
    if resp.status != 200:
        data = await conn.body(resp)
        rec.end = clock() - t0
        rec.error = f"http_{resp.status}"
        rec.error_detail = error_message(data)
        return
    if not stream:
        data = await conn.body(resp)
        rec.end = clock() - t0
        try:
            obj = json.loads(data)
            choice = obj["choices"][0]
            rec.text = str((choice.get("message") or {}).get("content") or choice.get("text") or "")
            usage = obj.get("usage") or {}
            rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            rec.completion_tokens = int(usage.get("completion_tokens") or 0)
            rec.cached_tokens = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError):
            rec.error = "malformed_json"
        return
    buf = b""
    seen_tokens = 0
    texts: list[str] = []
    done = False
    async for piece in conn.chunks(resp):
        now = clock() - t0
        buf += piece
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    continue
                if want_text:
                    try:
                        obj = json.loads(payload)
                    except ValueError:
                        rec.error = rec.error or "malformed_sse"
                        continue
                    text = _delta_text(obj)
                    has_choices = bool(obj.get("choices"))
                    usage = obj.get("usage") or {}
                    total = usage.get("completion_tokens")
                    rec.prompt_tokens = int(usage.get("prompt_tokens") or rec.prompt_tokens)
                    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                else:
                    # Fast scan: no JSON parse per chunk (a streaming run at high rate would
                    # otherwise measure the client's json.loads).
                    if not payload.startswith(b"{") or not payload.endswith(b"}"):
                        rec.error = rec.error or "malformed_sse"
                        continue
                    text = "x" if CONTENT.search(payload) else ""
                    has_choices = b'"choices":[]' not in payload and b'"choices"' in payload
                    m = COMPLETION_TOKENS.search(payload)
                    total = int(m.group(1)) if m else None
                    m = PROMPT_TOKENS.search(payload)
                    if m:
                        rec.prompt_tokens = int(m.group(1))
                    m = CACHED_TOKENS.search(payload)
                    cached = int(m.group(1)) if m else None
                if cached:
                    rec.cached_tokens = int(cached)
                new = int(total) - seen_tokens if total is not None else (1 if text else 0)
                if has_choices and (new > 0 or text):
                    if math.isnan(rec.first_token):
                        rec.first_token = now
                    rec.chunk_times.append(now)
                    rec.chunk_tokens.append(max(new, 1))
                    if want_text:
                        texts.append(text)
                seen_tokens += max(new, 0)
    rec.end = clock() - t0
    rec.completion_tokens = seen_tokens
    rec.text = "".join(texts)
    if not done and rec.error is None:
        rec.error = "stream_incomplete"


async def run(
    opts: Options,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    connect: Connect = Connection,
    clock: Callable[[], float] = time.perf_counter,
    after_warmup: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[Record], float]:
    """Run the load; returns (records, wall seconds of the measured part). Ctrl-C (task
    cancellation) ends it early: the records so far are returned, unfinished ones marked.
    ``connect`` opens each worker's transport, ``clock`` stamps every time (see the module);
    ``after_warmup`` is awaited once the warm-up requests are answered, before any measured one
    is sent (bench scrapes /metrics there, so the deltas leave the warm-up out)."""
    ep = Endpoint(opts.url)
    path = f"{ep.prefix or '/v1'}/{'chat/completions' if opts.api == 'chat' else 'completions'}"
    common = _headers(opts.api_key)
    bodies: dict[int, bytes] = {}
    headers: dict[int, bytes] = {}
    by_case: dict[int, tuple[bytes, bytes]] = {}
    total = opts.warmup + len(opts.cases)
    for i in range(total):
        case = opts.cases[(i - opts.warmup) % len(opts.cases)] if i >= opts.warmup else opts.cases[i % len(opts.cases)]
        key = id(case)
        if key not in by_case:
            session = b""
            if opts.session_header and case.user is not None:
                session = header_line(opts.session_header, case.user)
            by_case[key] = (_body(case, opts), common + session)
        bodies[i], headers[i] = by_case[key]
    # Answers are only needed to score quality; without expected answers skip JSON parsing.
    want_text = any(c.expected is not None for c in opts.cases)
    rng = random.Random(opts.seed)
    schedule = [0.0] * total
    if opts.rate:
        t = 0.0
        for i in range(opts.warmup, total):
            schedule[i] = t
            if opts.burstiness is not None:  # mean 1/rate; below 1 burstier than Poisson, above 1 steadier
                t += rng.gammavariate(opts.burstiness, 1.0 / (opts.rate * opts.burstiness))
            else:
                t += rng.expovariate(opts.rate) if opts.poisson else 1.0 / opts.rate
    records = [Record(index=i - opts.warmup, scheduled=schedule[i], warmup=i < opts.warmup) for i in range(total)]
    counter = iter(range(total))
    finished = 0
    t0 = clock()
    measure_start = [t0]
    warm_done = asyncio.Event()
    if opts.warmup == 0:
        warm_done.set()
    warm_left = [opts.warmup]

    async def worker() -> None:
        nonlocal finished
        conn = connect(ep.host, ep.port, opts.timeout)
        try:
            for i in counter:
                rec = records[i]
                if not rec.warmup:
                    if not warm_done.is_set():
                        await warm_done.wait()
                    if opts.rate:
                        delay = measure_start[0] + rec.scheduled - clock()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if opts.duration and clock() - measure_start[0] > opts.duration:
                        rec.error = "not_sent"
                        continue
                rec.scheduled += measure_start[0] - t0 if not rec.warmup else 0.0
                try:
                    await asyncio.wait_for(
                        _one(conn, path, bodies[i], headers[i], rec, t0, opts.stream, want_text, clock), opts.timeout
                    )
                except asyncio.TimeoutError:
                    rec.error, rec.end = "timeout", clock() - t0
                    conn.close()
                except HttpError:
                    rec.error, rec.end = "connection", clock() - t0
                    conn.close()
                except OSError:
                    rec.error, rec.end = "connect_refused", clock() - t0
                    conn.close()
                if rec.warmup:
                    warm_left[0] -= 1
                    if warm_left[0] == 0:
                        if after_warmup is not None:
                            await after_warmup()
                        measure_start[0] = clock()
                        warm_done.set()
                else:
                    finished += 1
                    if on_progress:
                        on_progress(finished, len(opts.cases))
        finally:
            conn.close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, opts.concurrency))]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r in records:
            if not r.warmup and math.isnan(r.end):
                r.error = r.error or ("cancelled" if not math.isnan(r.start) else "not_sent")
    wall = clock() - measure_start[0]
    return [r for r in records if not r.warmup], wall


def error_message(body: bytes, limit: int = 300) -> str:
    """The message of an error answer: OpenAI's {"error": {"message"}}, vLLM's {"message"}, or the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        inner = obj.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            text = inner["message"]
        elif isinstance(obj.get("message"), str):
            text = obj["message"]
        elif isinstance(inner, str):
            text = inner
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_samples(records: list[Record], limit: int = 3) -> list[dict[str, Any]]:
    """The first ``limit`` distinct (error, message) pairs, in the order met, with their counts."""
    counts: Counter[tuple[str, str]] = Counter(
        (r.error, r.error_detail) for r in records if r.error and r.error != "not_sent"
    )
    return [{"error": e, "message": m, "count": n} for (e, m), n in list(counts.items())[:limit]]


def error_counts(records: list[Record]) -> dict[str, int]:
    """Error kinds and how often (requests never sent are not errors)."""
    return dict(Counter(r.error for r in records if r.error and r.error != "not_sent"))


async def scrape_metrics(base: str, connect: Connect | None = None) -> Scrape:
    """vLLM's /metrics: the series vllmtune reports (:mod:`vllmtune.bench.metrics`); empty when
    the server has no such page or it is not the Prometheus text format."""
    status, body = await get(base + "/metrics", connect=connect)
    if status != 200:
        return Scrape()
    try:
        return parse(body.decode("utf-8", "replace"))
    except ValueError:
        return Scrape()


async def server_info(base: str, prefix: str, connect: Connect | None = None) -> dict[str, Any]:
    """Served model ids and vLLM version, when the server tells."""
    info: dict[str, Any] = {}
    status, body = await get(f"{base}{prefix or '/v1'}/models", connect=connect)
    if status == 200:
        try:
            info["models"] = [m["id"] for m in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError):
            pass
    status, body = await get(base + "/version", connect=connect)
    if status == 200:
        try:
            info["vllm_version"] = json.loads(body).get("version")
        except ValueError:
            pass
    info["reachable"] = status != 0 or "models" in info
    return info
