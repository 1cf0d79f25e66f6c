"""In-test upstreams and the proxy in front of one: an OpenAI-compatible upstream (raw asyncio)
with controllable answers and faults, raw-socket upstreams that send scripted bytes (hostile or
sloppy framing), a real uvicorn with either HTTP/1.1 parser, and a client (vllmtune.bench.http)
asking the proxy.

Answers are vLLM-shaped: a chat stream is a role chunk, one chunk per token, a finish chunk,
a usage chunk when ``stream_options.include_usage``, then ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from vllmtune.bench.http import Connection
from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig, serve
from vllmtune.util.net import free_port

PARSERS = ("h11", "httptools")  # uvicorn's two HTTP/1.1 implementations (httptools = llhttp, its default)


@dataclass
class Upstream:
    tokens: list[str] = field(default_factory=lambda: ["Prefix", " caching", " reuses", " KV"])
    status: int = 200  # a non-200 status answers with an error body
    delay: float = 0.0  # before the status line
    itl: float = 0.0  # between stream chunks
    hang_after: int | None = None  # stream: go silent after this many token chunks
    cut_after: int | None = None  # stream: drop the connection after this many token chunks
    tool_call: dict[str, str] | None = None  # stream/answer a tool call {"name":..., "arguments":...}
    extra_headers: bytes = b"x-request-id: up-1\r\n"
    calls: int = 0
    requests: list[tuple[bytes, bytes, dict[bytes, bytes], bytes]] = field(default_factory=list)
    port: int = 0

    # -- answers ------------------------------------------------------------------------------------------

    def full(self, chat: bool, model: str) -> dict[str, Any]:
        text = "".join(self.tokens)
        usage = {"prompt_tokens": 7, "completion_tokens": len(self.tokens), "total_tokens": 7 + len(self.tokens)}
        base = {"id": "cmpl-1", "created": 1700000000, "model": model}
        if chat:
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if self.tool_call:
                msg = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call-1", "type": "function", "function": dict(self.tool_call)}],
                }
            choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": "stop"}
            return {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        return {**base, "object": "text_completion", "choices": [choice], "usage": usage}

    def frames(self, chat: bool, model: str, usage: bool) -> list[dict[str, Any]]:
        base = {"id": "cmpl-1", "created": 1700000000, "model": model}
        out: list[dict[str, Any]] = []
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(**c: Any) -> dict[str, Any]:
            return {**base, "object": kind, "choices": [{"index": 0, "logprobs": None, "finish_reason": None, **c}]}

        if chat:
            out.append(chunk(delta={"role": "assistant", "content": ""}))
            if self.tool_call:
                out.append(
                    chunk(
                        delta={
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call-1",
                                    "type": "function",
                                    "function": {"name": self.tool_call["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                args = self.tool_call["arguments"]
                for i in range(0, len(args), 4):
                    out.append(chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 4]}}]}))
            else:
                out += [chunk(delta={"content": t}) for t in self.tokens]
            out.append(chunk(delta={"content": ""}, finish_reason="stop", stop_reason=None))
        else:
            out += [chunk(text=t) for t in self.tokens]
            out.append(chunk(text="", finish_reason="stop", stop_reason=None))
        if usage:
            n = len(self.tokens)
            out.append(
                {
                    **base,
                    "object": kind,
                    "choices": [],
                    "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n},
                }
            )
        return out

    # -- the server ---------------------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head[:-4].split(b"\r\n")
                method, target, _ = lines[0].split(b" ", 2)
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    hdrs[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(hdrs.get(b"content-length", b"0")))
                self.requests.append((method, target, hdrs, body))
                if not await self.answer(method, target, body, writer):
                    return
        finally:
            writer.close()

    async def answer(self, method: bytes, target: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        path = target.split(b"?", 1)[0]
        if path == b"/v1/models":
            data = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
            w.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
                % (len(data), self.extra_headers)
                + data
            )
            return True
        if path not in (b"/v1/chat/completions", b"/v1/completions"):
            w.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
            return True
        self.calls += 1
        req = json.loads(body)
        chat = path == b"/v1/chat/completions"
        await asyncio.sleep(self.delay)
        if self.status != 200:
            err = json.dumps({"error": {"message": "upstream says no", "type": "BadRequestError", "code": self.status}})
            w.write(
                b"HTTP/1.1 %d Error\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (self.status, len(err), err.encode())
            )
            return True
        if not req.get("stream"):
            data = json.dumps(self.full(chat, req.get("model", "m"))).encode()
            w.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
                % (len(data), self.extra_headers)
                + data
            )
            return True
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        w.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n"
            + self.extra_headers
            + b"\r\n"
        )
        for i, f in enumerate(self.frames(chat, req.get("model", "m"), usage)):
            if self.cut_after is not None and i > self.cut_after:
                w.transport.abort()
                return False
            if self.hang_after is not None and i > self.hang_after:
                await asyncio.sleep(3600)
            data = b"data: " + json.dumps(f, separators=(",", ":")).encode() + b"\n\n"
            w.write(b"%x\r\n%s\r\n" % (len(data), data))
            await w.drain()
            if self.itl:
                await asyncio.sleep(self.itl)
        w.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        return True


@asynccontextmanager
async def serving(up: Upstream) -> AsyncIterator[Upstream]:
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        server.close()


def answer(content: str) -> bytes:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    return json.dumps(body).encode()


@asynccontextmanager
async def proxy_running(up_port: int, backend: Any = None, **cfg: Any) -> AsyncIterator[tuple[Proxy, int]]:
    """The proxy (memory backend unless ``backend``) in front of 127.0.0.1:``up_port``, served in
    the running loop; yields it and its port."""
    proxy = Proxy(ProxyConfig(upstream=f"http://127.0.0.1:{up_port}", port=0, **cfg), backend or MemoryBackend())
    stop = asyncio.Event()
    ports: list[int] = []
    task = asyncio.ensure_future(serve(proxy, stop, ports.append))
    while not ports:
        if task.done():
            task.result()  # it failed to start: raise why
        await asyncio.sleep(0.005)
    try:
        yield proxy, ports[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@asynccontextmanager
async def proxy_for(up_port: int, **cfg: Any) -> AsyncIterator[int]:
    """:func:`proxy_running`, yielding only the port."""
    async with proxy_running(up_port, **cfg) as (_, port):
        yield port


@contextmanager
def uvicorn_upstream(http: str, timeout_keep_alive: int = 5) -> Iterator[tuple[int, list[str]]]:
    """A real uvicorn answering "re: <last message>" with the HTTP/1.1 parser ``http`` ("h11",
    which accepts a bare LF, or "httptools", llhttp); yields its port and the prompts it answered."""
    import uvicorn

    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
            prompt = json.loads(body)["messages"][-1]["content"]
            seen.append(prompt)
            data = answer("re: " + prompt)
        else:  # anything else is recorded as "METHOD /path" and answered {}
            seen.append(f"{scope['method']} {scope['path']}")
            data = b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=http,
            timeout_keep_alive=timeout_keep_alive,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield port, seen
    finally:
        server.should_exit = True
        thread.join(10)


# -- raw-socket upstreams and the client side ------------------------------------------------------------

Client = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Script = Callable[[str], list[tuple[float, bytes]]]  # the prompt -> (delay s, bytes) to send


def response(body: bytes, extra: bytes = b"") -> bytes:
    """A 200 response with a JSON ``body`` framed by Content-Length; ``extra`` header lines first."""
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n" % (extra, len(body)) + body
    )


def chat(content: str) -> dict[str, Any]:
    """A deterministic one-message chat request for model ``m``."""
    return {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0}


def content_length(head: bytes) -> int:
    """The Content-Length of a request head (IndexError when it has none)."""
    return int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])


async def read_prompt(r: asyncio.StreamReader) -> str:
    """Read one chat request (head, then its Content-Length body); its last message's content."""
    head = await r.readuntil(b"\r\n\r\n")
    return str(json.loads(await r.readexactly(content_length(head)))["messages"][-1]["content"])


@asynccontextmanager
async def listening(client: Client, **server: Any) -> AsyncIterator[int]:
    """``client`` serves each connection to 127.0.0.1 (or to ``sock=``) in the running loop;
    yields the port."""
    srv = await (asyncio.start_server(client, **server) if server else asyncio.start_server(client, "127.0.0.1", 0))
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


@asynccontextmanager
async def raw_upstream(script: Script) -> AsyncIterator[tuple[int, dict[str, int]]]:
    """An upstream that answers each request with the bytes ``script`` gives for its prompt;
    yields its port and the counts of connections and requests it saw."""
    counts = {"connections": 0, "requests": 0}

    async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        counts["connections"] += 1
        try:
            while True:
                prompt = await read_prompt(r)
                counts["requests"] += 1
                for delay, data in script(prompt):
                    if delay:
                        await asyncio.sleep(delay)
                    w.write(data)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            w.close()

    async with listening(client) as port:
        yield port, counts


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[Connection]:
    """A keep-alive client connection to 127.0.0.1:``port``, closed afterwards."""
    conn = Connection("127.0.0.1", port)
    try:
        yield conn
    finally:
        conn.close()


async def ask(conn: Connection, content: str) -> tuple[int, dict[str, str], bytes]:
    """POST :func:`chat` for ``content``; (status, headers, body)."""
    resp = await conn.send(
        "POST", "/v1/chat/completions", json.dumps(chat(content)).encode(), b"content-type: application/json\r\n"
    )
    return resp.status, resp.headers, await conn.body(resp)


def content_of(body: bytes) -> str:
    """The message content of a chat completion."""
    return str(json.loads(body)["choices"][0]["message"]["content"])
