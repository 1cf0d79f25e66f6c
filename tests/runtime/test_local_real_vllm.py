"""`vllmtune up --runtime local` brings a REAL vLLM (CPU build, tiny local Llama) up from a
profile with the prompt cache on: the real proxy in front of it, a chat completion through the
printed endpoint (twice: the second from the cache), and `down` stops every process."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.cli import Cli
from tests.support.dockerenv import free_port
from tests.support.profiles import prompt_cache, tiny_profile
from tests.support.realvllm import process_group_gone, tiny_model_dir, vllm_executable

# Only the real-vLLM test carries the vllm and slow marks: the pre-flight test is pure (a fake
# `vllm` script) and runs everywhere.


vt = Cli(timeout=600)


@pytest.mark.vllm
@pytest.mark.slow
def test_up_chat_ps_logs_down(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None and exe.exists(), "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    proxy_port = free_port()
    profile = tiny_profile(tmp_path / "tiny.yaml", "vt-local", str(model), prompt_cache(proxy_port))
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    try:
        r = vt(
            "up",
            str(profile),
            "--runtime",
            "local",
            "-d",
            "--port",
            str(port),
            "--timeout",
            "400",
            "--output",
            "json",
            env=env,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        up = json.loads(r.stdout)
        assert (up["status"], up["endpoint"], up["vllm_endpoint"], up["model"]) == (
            "started",
            f"http://127.0.0.1:{proxy_port}/v1",  # clients use the proxy
            f"http://127.0.0.1:{port}/v1",
            "tiny",
        )
        assert up["kv_cache"]["kv_cache_tokens"] > 0  # parsed from vLLM's own log line
        assert up["kv_cache_estimate_tokens"] == up["kv_cache"]["kv_cache_tokens"]  # vllmtune fit agrees
        assert set(up["phases"]) >= {"starting", "loading weights", "ready", "cache proxy ready"}
        print("\nup timings:", up["timings"], "phases:", up["phases"])

        def chat() -> tuple[str, dict[str, object]]:
            req = urllib.request.Request(
                up["endpoint"] + "/chat/completions",
                data=json.dumps(
                    {
                        "model": "tiny",
                        "messages": [{"role": "user", "content": "hello"}],
                        "max_tokens": 8,
                        "temperature": 0,
                    }
                ).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.headers.get("X-Cache", ""), json.loads(resp.read())

        (miss, answer), (hit, again_answer) = chat(), chat()
        assert (miss, hit) == ("MISS", "HIT")
        assert answer["model"] == "tiny"
        assert answer["usage"]["completion_tokens"] > 0  # type: ignore[index]
        assert again_answer == {**answer, "cached": True}

        ps = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
        assert [(x["name"], x["state"], x["health"], x["port"]) for x in ps] == [
            ("vt-local", "running", "healthy", port)
        ]
        assert [(x["role"], x["state"], x["port"]) for x in ps[0]["parts"]] == [
            ("server", "running", port),
            ("cache", "running", proxy_port),
        ]
        pid = int(ps[0]["ident"])
        proxy_pid = int(ps[0]["parts"][1]["pid"])
        assert "Starting vLLM server on" in vt("logs", "vt-local", "--runtime", "local", env=env).stdout

        again = json.loads(
            vt("up", str(profile), "--runtime", "local", "-d", "--port", str(port), "--output", "json", env=env).stdout
        )
        assert again["status"] == "unchanged"
    finally:
        down = vt("down", str(profile), "--runtime", "local", env=env)
    assert down.stdout == "vt-local: stopped and removed (local)\n"
    assert process_group_gone(pid), "vLLM's process group outlived `vllmtune down`"
    assert process_group_gone(proxy_pid), "the cache proxy outlived `vllmtune down`"


def test_local_preflight_errors(tmp_path: Path) -> None:
    env = {"VLLMTUNE_VLLM": str(tmp_path / "nope"), "VLLMTUNE_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = vt("up", "preset:cpu-tiny", "--runtime", "local", "-d", env=env)
    assert (r.returncode, r.stderr) == (
        1,
        "error: no `vllm` command found: install vLLM (pip install vllm, or the "
        "CPU build), put it on PATH, or set VLLMTUNE_VLLM=/path/to/vllm\n",
    )
    fake = tmp_path / "vllm"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: cpu-tiny\nname: vt-missing\nmodel:\n  id: {tmp_path}/no-model\n")
    r = vt("up", str(profile), "--runtime", "local", "-d", env={**env, "VLLMTUNE_VLLM": str(fake)})
    assert (r.returncode, r.stderr) == (
        1,
        f"error: model directory {tmp_path}/no-model does not exist (model.id); "
        "for the tiny test model run: python scripts/make_tiny_model.py\n",
    )
