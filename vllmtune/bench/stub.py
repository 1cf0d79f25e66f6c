"""A stub OpenAI-compatible server with controlled timing and faults.

Used by the tests (so that measured TTFT / inter-token latency can be asserted), by
``benchmarks/bench_client_ceiling.py`` and by ``vllmtune bench --calibrate`` (the instant
server that shows how fast the client itself can go). Raw asyncio: it must be faster than
the client it serves.

    python -m vllmtune.bench.stub --port 8000 [--ttft 0.05] [--itl 0.01] [--tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from dataclasses import dataclass, field, fields

MAX_TOKENS = re.compile(rb'"max(?:_completion)?_tokens"\s*:\s*(\d+)')
STREAM = re.compile(rb'"stream"\s*:\s*true')
PROMPT_LEN_HINT = 4  # characters per token, to fake prompt_tokens


@dataclass
class StubConfig:
    """How the stub behaves."""

    model: str = "stub-model"
    ttft: float = 0.0  # seconds before the first token
    itl: float = 0.0  # seconds between tokens
    tokens: int = 16  # tokens per answer unless max_tokens says fewer
    tokens_per_chunk: int = 1  # >1 mimics speculative decoding
    fail_every: int = 0  # every Nth completion answers 500
    malformed_every: int = 0  # every Nth streamed completion sends a broken SSE line
    cut_every: int = 0  # every Nth streamed completion drops the connection mid-stream
    text: str = "ok"  # content of each token
    prefix_hit_share: float = 0.5  # share of prompt tokens /metrics reports as prefix-cache hits
    slow_every: int = 0  # every Nth completion waits slow_ttft more before its first token
    slow_ttft: float = 0.0
    max_concurrent: int = 0  # >0: answers (timed ones) served at most this many at a time, others queue
    max_model_len: int = 0  # >0: answer 400 like vLLM when prompt + max_tokens is longer
    record_headers: str = ""  # a file: one JSON line per POST request, its path and headers as received
    counters: dict[str, int] = field(default_factory=lambda: {"requests": 0, "prefix_queries": 0, "prefix_hits": 0})
    _gate: asyncio.Semaphore | None = None

    def gate(self) -> asyncio.Semaphore | None:
        """The server's capacity (--max-concurrent): made in the running loop, shared by connections."""
        if self.max_concurrent and self._gate is None:
            self._gate = asyncio.Semaphore(self.max_concurrent)
        return self._gate


def _resp(status: int, body: bytes, ctype: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 500: b"Internal Server Error"}.get(status, b"Error")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (status, reason, ctype, len(body)) + body
    )


def _too_long(max_len: int, prompt_tokens: int, asked: int) -> bytes:
    """vLLM's answer to a request longer than --max-model-len (its OpenAI server's wording)."""
    message = (
        f"This model's maximum context length is {max_len} tokens. However, you requested "
        f"{prompt_tokens + asked} tokens ({prompt_tokens} in the messages, {asked} in the completion). "
        "Please reduce the length of the messages or completion."
    )
    return json.dumps(
        {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
    ).encode()


def _record(file: str, path: bytes, head: bytes) -> None:
    """Append ``{"path", "headers": [[name, value], ...]}`` (as sent: names in their case, values
    decoded as Latin-1, RFC 9110 5.5's obs-text) for ``--record-headers``."""
    fields_ = [line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line]
    entry = {
        "path": path.decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.strip(b" \t").decode("latin-1")] for k, v in fields_],
    }
    with open(file, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class StubProtocol(asyncio.Protocol):
    def __init__(self, cfg: StubConfig) -> None:
        self.cfg = cfg
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self._task: asyncio.Future[None] | None = None  # the answer in flight (kept referenced)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            line = head.split(b"\r\n", 1)[0].split(b" ")
            method, path = line[0], line[1] if len(line) > 1 else b"/"
            if self.cfg.record_headers and method == b"POST":
                _record(self.cfg.record_headers, path, head)
            if self._handle(method, path, body):
                return  # an async (timed / streamed) answer is in flight

    def _handle(self, method: bytes, path: bytes, body: bytes) -> bool:
        t = self.transport
        assert t is not None
        cfg = self.cfg
        if path == b"/health":
            t.write(_resp(200, b""))
        elif path == b"/v1/models":
            t.write(_resp(200, json.dumps({"object": "list", "data": [{"id": cfg.model, "object": "model"}]}).encode()))
        elif path == b"/metrics":
            c = cfg.counters
            text = (
                f'vllm:prefix_cache_queries_total{{model_name="{cfg.model}"}} {c["prefix_queries"]}\n'
                f'vllm:prefix_cache_hits_total{{model_name="{cfg.model}"}} {c["prefix_hits"]}\n'
                f'vllm:time_to_first_token_seconds_sum{{model_name="{cfg.model}"}} 0\n'
                f'vllm:time_to_first_token_seconds_count{{model_name="{cfg.model}"}} {c["requests"]}\n'
            )
            t.write(_resp(200, text.encode(), b"text/plain"))
        elif method == b"POST" and path in (b"/v1/chat/completions", b"/v1/completions"):
            cfg.counters["requests"] += 1
            n = cfg.counters["requests"]
            cfg.counters["prefix_queries"] += len(body) // PROMPT_LEN_HINT
            cfg.counters["prefix_hits"] += int(len(body) * cfg.prefix_hit_share) // PROMPT_LEN_HINT
            if cfg.fail_every and n % cfg.fail_every == 0:
                t.write(_resp(500, b'{"error":{"message":"stub failure","type":"InternalServerError"}}'))
                return False
            m = MAX_TOKENS.search(body)
            asked = int(m.group(1)) if m else cfg.tokens
            tokens = min(cfg.tokens, asked)
            chat = path == b"/v1/chat/completions"
            prompt_tokens = max(1, len(body) // PROMPT_LEN_HINT)
            if cfg.max_model_len and prompt_tokens + asked > cfg.max_model_len:
                t.write(_resp(400, _too_long(cfg.max_model_len, prompt_tokens, asked)))
                return False
            ttft = cfg.ttft + (cfg.slow_ttft if cfg.slow_every and n % cfg.slow_every == 0 else 0.0)
            if STREAM.search(body):
                if not ttft and not cfg.itl and not (cfg.malformed_every or cfg.cut_every):
                    t.write(self._stream_all(chat, tokens, prompt_tokens))
                    return False
                self.busy = True
                self._task = asyncio.ensure_future(self._stream_timed(chat, tokens, prompt_tokens, n, ttft))
                return True
            if ttft or cfg.itl:
                self.busy = True
                self._task = asyncio.ensure_future(self._delayed(chat, tokens, prompt_tokens, ttft))
                return True
            t.write(_resp(200, self._full(chat, tokens, prompt_tokens)))
        else:
            t.write(_resp(404, b'{"error":"not found"}'))
        return False

    def _full(self, chat: bool, tokens: int, prompt_tokens: int) -> bytes:
        text = self.cfg.text * tokens
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens}
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
            obj = {"id": "stub", "object": "chat.completion", "model": self.cfg.model, "choices": [choice]}
        else:
            obj = {
                "id": "stub",
                "object": "text_completion",
                "model": self.cfg.model,
                "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
            }
        obj["usage"] = usage  # type: ignore[assignment]
        return json.dumps(obj).encode()

    def _chunk(self, chat: bool, text: str, done_tokens: int, prompt_tokens: int) -> bytes:
        usage = b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (
            prompt_tokens,
            done_tokens,
            prompt_tokens + done_tokens,
        )
        content = json.dumps(text).encode()
        if chat:
            data = (
                b'{"id":"stub","object":"chat.completion.chunk","model":"'
                + self.cfg.model.encode()
                + b'","choices":[{"index":0,"delta":{"content":'
                + content
                + b'}}],"usage":'
                + usage
                + b"}"
            )
        else:
            data = (
                b'{"id":"stub","object":"text_completion","model":"'
                + self.cfg.model.encode()
                + b'","choices":[{"index":0,"text":'
                + content
                + b'}],"usage":'
                + usage
                + b"}"
            )
        frame = b"data: " + data + b"\n\n"
        return b"%x\r\n%s\r\n" % (len(frame), frame)

    def _stream_head(self) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

    def _stream_end(self) -> bytes:
        frame = b"data: [DONE]\n\n"
        return b"%x\r\n%s\r\n0\r\n\r\n" % (len(frame), frame)

    def _stream_all(self, chat: bool, tokens: int, prompt_tokens: int) -> bytes:
        per = self.cfg.tokens_per_chunk
        parts = [self._stream_head()]
        done = 0
        while done < tokens:
            k = min(per, tokens - done)
            done += k
            parts.append(self._chunk(chat, self.cfg.text * k, done, prompt_tokens))
        parts.append(self._stream_end())
        return b"".join(parts)

    async def _delayed(self, chat: bool, tokens: int, prompt_tokens: int, ttft: float) -> None:
        gate = self.cfg.gate()
        if gate is not None:
            async with gate:
                await asyncio.sleep(ttft + self.cfg.itl * max(0, tokens - 1))
        else:
            await asyncio.sleep(ttft + self.cfg.itl * max(0, tokens - 1))
        if self.transport and not self.transport.is_closing():
            self.transport.write(_resp(200, self._full(chat, tokens, prompt_tokens)))
        self._resume()

    async def _stream_timed(self, chat: bool, tokens: int, prompt_tokens: int, n: int, ttft: float) -> None:
        gate = self.cfg.gate()
        if gate is None:
            await self._stream_body(chat, tokens, prompt_tokens, n, ttft)
        else:
            async with gate:  # queued like a server at capacity: the wait counts in TTFT
                await self._stream_body(chat, tokens, prompt_tokens, n, ttft)

    async def _stream_body(self, chat: bool, tokens: int, prompt_tokens: int, n: int, ttft: float) -> None:
        t = self.transport
        assert t is not None
        cfg = self.cfg
        t.write(self._stream_head())
        await asyncio.sleep(ttft)
        done = 0
        while done < tokens:
            if t.is_closing():
                return
            if cfg.cut_every and n % cfg.cut_every == 0 and done >= tokens // 2:
                t.close()  # mid-stream disconnect
                return
            k = min(cfg.tokens_per_chunk, tokens - done)
            done += k
            if cfg.malformed_every and n % cfg.malformed_every == 0 and done >= tokens // 2:
                frame = b"data: {not json\n\n"
                t.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            else:
                t.write(self._chunk(chat, cfg.text * k, done, prompt_tokens))
            if done < tokens and cfg.itl:
                await asyncio.sleep(cfg.itl * k)
        t.write(self._stream_end())
        self._resume()

    def _resume(self) -> None:
        self.busy = False
        if self.buf:
            self._next()


async def start_stub(cfg: StubConfig, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Start the stub in the running loop; ``server.sockets[0].getsockname()[1]`` is its port."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: StubProtocol(cfg), host, port, backlog=1024)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="stub OpenAI-compatible server (vllmtune tests/benchmarks)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--model", default="stub-model")
    ap.add_argument("--ttft", type=float, default=0.0)
    ap.add_argument("--itl", type=float, default=0.0)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--tokens-per-chunk", type=int, default=1)
    ap.add_argument("--fail-every", type=int, default=0, help="every Nth completion answers 500")
    ap.add_argument("--malformed-every", type=int, default=0, help="every Nth stream has a broken SSE line")
    ap.add_argument("--cut-every", type=int, default=0, help="every Nth stream is cut mid-way")
    ap.add_argument("--prefix-hit-share", type=float, default=0.5, help="share of prompt tokens reported as hits")
    ap.add_argument("--slow-every", type=int, default=0, help="every Nth completion waits --slow-ttft longer")
    ap.add_argument("--slow-ttft", type=float, default=0.0, help="extra seconds before the first token (--slow-every)")
    ap.add_argument("--max-concurrent", type=int, default=0, help="serve timed answers at most N at a time")
    ap.add_argument("--max-model-len", type=int, default=0, help="answer 400 (like vLLM) above this many tokens")
    ap.add_argument("--record-headers", default="", help="append each POST's path and headers to this file (JSONL)")
    ap.add_argument("--seconds", type=float, default=0.0, help="exit after this long (0: until SIGTERM)")
    a = ap.parse_args(argv)
    # each option but --host, --port and --seconds is the StubConfig field of the same name
    cfg = StubConfig(**{f.name: getattr(a, f.name) for f in fields(StubConfig) if hasattr(a, f.name)})

    async def run() -> None:
        server = await start_stub(cfg, a.host, a.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"stub listening on http://{a.host}:{server.sockets[0].getsockname()[1]}", flush=True)
        if a.seconds:
            loop.call_later(a.seconds, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
