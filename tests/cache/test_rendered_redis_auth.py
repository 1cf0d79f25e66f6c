"""The in-cluster Redis as the plan renders it (issue 13 item 7): the rendered start command run
by a real redis-server refuses clients without the password, the password never appears in its
argv, and the proxy's backend gets in with $VLLMTUNE_REDIS_PASSWORD."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require
from vllmtune.plan import load_plan
from vllmtune.util.net import free_port

PROFILE = """\
extends: all-levers
name: shared-cache
prompt_cache:
  backend: redis
"""


@pytest.mark.redis
def test_rendered_redis_needs_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None, "redis-server")
    (tmp_path / "p.yaml").write_text(PROFILE)
    monkeypatch.chdir(tmp_path)
    plan = load_plan("p.yaml")
    redis = next(s for s in plan.sidecars if s.role == "redis")
    proxy = next(s for s in plan.sidecars if s.role == "cache")
    assert [e.name for e in redis.secret_env] == ["VLLMTUNE_REDIS_PASSWORD"] == [e.name for e in proxy.secret_env]
    assert redis.secret_env[0].k8s_secret == "shared-cache-redis-auth"
    port = free_port()
    password = "0f3a9c2e7b"  # as `openssl rand -hex 32` makes it (Redis config words: no spaces)
    argv = [
        *redis.command,
        *redis.resolved_args({}, 8000),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        argv, env={**os.environ, "VLLMTUNE_REDIS_PASSWORD": password}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        cli = ["redis-cli", "-p", str(port)]
        deadline = time.monotonic() + 20
        while subprocess.run([*cli, "ping"], capture_output=True, text=True).stdout.strip() == "":
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.1)
        no_auth = subprocess.run([*cli, "set", "k", "FORGED"], capture_output=True, text=True)
        assert no_auth.stdout.startswith("NOAUTH"), no_auth.stdout
        ok = subprocess.run(
            [*cli, "ping"], capture_output=True, text=True, env={**os.environ, "REDISCLI_AUTH": password}
        )
        assert ok.stdout.strip() == "PONG"
        # exec: redis-server itself is the process (PID 1 in the container), password not in argv
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert "redis-server" in cmdline and password not in cmdline
        from vllmtune.cache.command import make_backend

        monkeypatch.setenv("VLLMTUNE_REDIS_PASSWORD", password)
        backend = make_backend("redis", f"redis://127.0.0.1:{port}/0")
        assert backend is not None
    finally:
        proc.terminate()
        proc.wait(10)
