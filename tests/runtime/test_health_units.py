"""runtime.health called directly against a real HTTP server on 127.0.0.1 (the bench stub,
which answers /health and /v1/models as vLLM does) and against a closed port: http_get, Watch,
wait_ready (ready, wrong model, exited, timed out -- whole messages) and wait_http; Ready and
logscan.Failure as the values they return and quote."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from vllmtune.bench.stub import StubConfig, StubProtocol
from vllmtune.errors import LaunchError
from vllmtune.runtime.health import Ready, Watch, http_get, wait_http, wait_ready
from vllmtune.runtime.logscan import Failure, diagnose

OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: StubProtocol(StubConfig(model="org/m")), "127.0.0.1", 0)
    )
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


def _lines(*batches: list[str]) -> object:
    queue = list(batches)
    return lambda: queue.pop(0) if queue else []


def test_http_get(stub_url: str, closed_url: str) -> None:
    assert http_get(stub_url + "/health") == (200, b"")
    assert http_get(stub_url + "/v1/models", api_key="k") == (
        200,
        b'{"object": "list", "data": [{"id": "org/m", "object": "model"}]}',
    )
    assert http_get(stub_url + "/nope") == (404, b'{"error":"not found"}')
    assert http_get(closed_url + "/health") == (0, b"")
    assert http_get("not a url") == (0, b"")


def test_wait_ready_returns_phases_and_facts(stub_url: str) -> None:
    seen: list[tuple[str, float]] = []
    log = ["INFO Loading weights took 1.2 seconds", "INFO GPU KV cache size: 123,456 tokens"]
    watch = Watch(stub_url, "org/m", alive=lambda: True, new_log_lines=_lines(log))  # type: ignore[arg-type]
    tail: list[str] = []
    ready = wait_ready(watch, timeout=30, on_phase=lambda p, t: seen.append((p, t)), log_tail=tail)
    assert isinstance(ready, Ready)
    assert [p for p, _ in seen] == ["starting", "loading weights", "allocating KV cache", "ready"]
    assert list(ready.phases) == ["starting", "loading weights", "allocating KV cache", "ready"]
    assert ready.phases["ready"] == ready.seconds == seen[-1][1]
    assert ready.facts == {"kv_cache_tokens": 123456}
    assert tail == log


def test_wait_ready_refuses_a_server_serving_another_model(stub_url: str) -> None:
    watch = Watch(stub_url, "other", alive=lambda: True, new_log_lines=list)
    with pytest.raises(LaunchError) as err:
        wait_ready(watch, timeout=30, on_phase=lambda p, t: None, log_tail=[])
    assert str(err.value) == "the server answers but serves org/m, not 'other'; check model.served_name"


def test_wait_ready_exited_with_a_recognised_reason(closed_url: str) -> None:
    watch = Watch(closed_url, "m", alive=lambda: False, new_log_lines=_lines(["start", OOM]))  # type: ignore[arg-type]
    with pytest.raises(LaunchError) as err:
        wait_ready(watch, timeout=30, on_phase=lambda p, t: None, log_tail=[])
    failure = diagnose(["start", OOM])
    assert isinstance(failure, Failure) and failure.reason == "CUDA out of memory"
    assert str(err.value) == (
        f"the server exited during start-up\nlast 2 log lines:\n  | start\n  | {OOM}\n"
        f"reason: CUDA out of memory\nfix: {failure.hint}"
    )


def test_wait_ready_times_out(closed_url: str) -> None:
    watch = Watch(closed_url, "m", alive=lambda: True, new_log_lines=list)
    with pytest.raises(LaunchError) as err:
        wait_ready(watch, timeout=0, on_phase=lambda p, t: None, log_tail=[])
    assert str(err.value) == (
        "not ready after 0 s (last phase: starting); raise --timeout for big models or slow downloads\n"
        "last 0 log lines:\n  | (no log output)"
    )


def test_wait_http(stub_url: str, closed_url: str) -> None:
    assert wait_http("cache proxy", stub_url + "/health", lambda: True, list, 30, []) >= 0
    with pytest.raises(LaunchError) as err:
        wait_http("cache proxy", stub_url + "/cache/stats", lambda: True, list, 30, [])
    assert str(err.value) == (
        f"{stub_url}/cache/stats answers 404: what runs there is not the cache proxy (check its image)\n"
        "last 0 log lines:\n  | (no log output)"
    )
    with pytest.raises(LaunchError) as err:
        wait_http("Redis", closed_url + "/", lambda: False, _lines(["bye"]), 30, [])  # type: ignore[arg-type]
    assert str(err.value) == "the Redis exited during start-up\nlast 1 log lines:\n  | bye"
    with pytest.raises(LaunchError) as err:
        wait_http("cache proxy", closed_url + "/cache/stats", lambda: True, list, 0, [])
    assert str(err.value) == (
        f"the cache proxy did not answer {closed_url}/cache/stats within 0 s\nlast 0 log lines:\n  | (no log output)"
    )
