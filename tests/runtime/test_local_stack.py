"""`vllmtune up --runtime local` with the prompt cache: the REAL proxy (``python -m
vllmtune.cache``) as a second process in front of a stand-in ``vllm serve`` (tests/support/
stub_vllm.py; the real vLLM runs the same stack in test_local_real_vllm.py), and a REAL
``redis-server`` for backend redis. Records, ps, logs and down cover every part; failure and
Ctrl-C leave no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.conftest import require
from tests.support.cli import vt
from tests.support.dockerenv import free_port
from tests.support.profiles import prompt_cache, tiny_profile
from tests.support.stub_vllm import stub_executable
from vllmtune.util.net import port_free

REDIS_PORT = 6379  # the plan's Redis port (a local redis-server binds 127.0.0.1 there)


def setup(tmp_path: Path, name: str, cache: str, extra: str = "") -> tuple[str, int, dict[str, str]]:
    """(profile, proxy port, env) for a local stack on the stub."""
    (tmp_path / "model").mkdir(exist_ok=True)
    proxy_port = free_port()
    p = tiny_profile(tmp_path / f"{name}.yaml", name, f"{tmp_path}/model", prompt_cache(proxy_port, cache) + extra)
    env = {"VLLMTUNE_VLLM": str(stub_executable(tmp_path)), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    return str(p), proxy_port, env


def completion(endpoint: str) -> str:
    req = urllib.request.Request(
        endpoint + "/completions",
        data=json.dumps({"model": "tiny", "prompt": "hello", "max_tokens": 5, "temperature": 0}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers.get("X-Cache", "")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_local_stack_memory(tmp_path: Path) -> None:
    p, proxy_port, env = setup(tmp_path, "vt-lstack", "backend: memory")
    port = free_port()
    try:
        r = vt("up", p, "--runtime", "local", "-d", "--port", str(port), env=env)
        assert r.returncode == 0, r.stderr
        first = r.stdout.splitlines()[0]
        assert first.startswith("vt-lstack: ready in ")
        assert f": http://127.0.0.1:{proxy_port}/v1 (model tiny, local " in first
        assert r.stdout.splitlines()[1] == f"  through the prompt-cache proxy; vLLM itself: http://127.0.0.1:{port}/v1"
        assert [completion(f"http://127.0.0.1:{proxy_port}/v1") for _ in range(2)] == ["MISS", "HIT"]

        [row] = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
        assert (row["name"], row["state"], row["health"], row["port"]) == ("vt-lstack", "running", "healthy", port)
        assert [(x["role"], x["state"], x["port"]) for x in row["parts"]] == [
            ("server", "running", port),
            ("cache", "running", proxy_port),
        ]
        pids = [int(x["pid"]) for x in row["parts"]]
        # the proxy: the sidecar's args, vLLM at 127.0.0.1, bound to 127.0.0.1
        argv = row["parts"][1]["argv"]
        assert argv[:3] == [sys.executable, "-m", "vllmtune.cache"]
        assert argv[3:9] == ["--upstream", f"http://127.0.0.1:{port}", "--host", "127.0.0.1", "--port", str(proxy_port)]
        logs = vt("logs", "vt-lstack-cache", "--runtime", "local", env=env).stdout
        assert f"vllmtune cache: http://127.0.0.1:{proxy_port} -> http://127.0.0.1:{port} (memory" in logs
        again = json.loads(
            vt("up", p, "--runtime", "local", "-d", "--port", str(port), "--output", "json", env=env).stdout
        )
        assert (again["status"], again["endpoint"]) == ("unchanged", f"http://127.0.0.1:{proxy_port}/v1")
    finally:
        down = vt("down", p, "--runtime", "local", env=env)
    assert down.stdout == "vt-lstack: stopped and removed (local)\n"
    assert _wait_for(lambda: not any(alive(pid) for pid in pids))


def test_local_stack_redis(tmp_path: Path) -> None:
    require(shutil.which("redis-server") is not None, "redis-server (scripts/setup_system.sh)")
    p, proxy_port, env = setup(tmp_path, "vt-lredis", "backend: redis")
    if not port_free("127.0.0.1", REDIS_PORT):
        # someone else's Redis holds the port: the clear error is what a user gets
        r = vt("up", p, "--runtime", "local", "-d", "--port", str(free_port()), env=env)
        assert r.returncode == 1
        assert r.stderr.startswith(f"error: port {REDIS_PORT} (the Redis's) is already in use by ")
        return
    port = free_port()
    try:
        r = vt("up", p, "--runtime", "local", "-d", "--port", str(port), env=env)
        assert r.returncode == 0, r.stderr
        assert "vt-lredis: starting Redis (redis-server on 127.0.0.1:6379)" in r.stderr
        assert [completion(f"http://127.0.0.1:{proxy_port}/v1") for _ in range(2)] == ["MISS", "HIT"]
        [row] = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
        assert [x["role"] for x in row["parts"]] == ["server", "cache", "redis"]
        pids = [int(x["pid"]) for x in row["parts"]]
        redis_pid = pids[2]
        assert b"redis-server" in Path(f"/proc/{redis_pid}/cmdline").read_bytes()
        password = dict(
            e.split(b"=", 1) for e in Path(f"/proc/{pids[1]}/environ").read_bytes().split(b"\0") if b"=" in e
        )[b"VLLMTUNE_REDIS_PASSWORD"].decode()
        assert len(password) >= 24
        for pid in pids:  # in no process's argv, not in ps
            assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert password not in vt("ps", "--runtime", "local", "--output", "json", env=env).stdout
        assert password not in (tmp_path / "state" / "servers" / "vt-lredis.json").read_text()
        # the same port again while this Redis runs: a clear error, nothing started
        (tmp_path / "b").mkdir()
        other, _, env2 = setup(tmp_path / "b", "vt-lredis2", "backend: redis")
        r = vt("up", other, "--runtime", "local", "-d", "--port", str(free_port()), env=env2)
        assert r.returncode == 1
        assert r.stderr == (
            f"error: port {REDIS_PORT} (the Redis's) is already in use by redis-server (pid {redis_pid}); "
            "stop it, or give the proxy that Redis with prompt_cache.redis_url\n"
        )
    finally:
        vt("down", p, "--runtime", "local", env=env)
    assert _wait_for(lambda: not any(alive(pid) for pid in pids))


def test_local_stack_failure_and_ctrl_c_leave_nothing(tmp_path: Path) -> None:
    p, _, env = setup(tmp_path, "vt-lfail", "backend: memory")
    r = vt("up", p, "--runtime", "local", "-d", "--port", str(free_port()), env={**env, "STUB_VLLM_CRASH": "boom"})
    assert r.returncode == 1
    assert "error: the server exited during start-up\n" in r.stderr
    assert "  | boom" in r.stderr
    assert json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout) == []

    proc = vt.popen(
        "up", p, "--runtime", "local", "-d", "--port", str(free_port()), env={**env, "STUB_VLLM_DELAY": "60"}
    )
    record = tmp_path / "state" / "servers" / "vt-lfail.json"
    assert _wait_for(record.exists)
    pid = int(json.loads(record.read_text())["ident"])
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.splitlines()
    assert lines[-1] == "interrupted"
    assert lines[-2].startswith("vt-lfail: interrupted: stopping and removing the processes (vLLM, cache proxy) ("), err
    assert not record.exists()
    assert _wait_for(lambda: not alive(pid))
