"""Redis credentials (issue 13 item 7, the proxy side): $VLLMTUNE_REDIS_PASSWORD is used, and no
Redis password is ever printed or logged; --upstream-timeout / --max-bytes on `vllmtune cache serve`."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, require
from vllmtune.cache.backends import RedisBackend, redact, redact_url
from vllmtune.util.net import free_port

CLI = [sys.executable, "-c", "import sys; from vllmtune.cli import main; sys.exit(main())"]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("VLLMTUNE_REDIS", "VLLM_API_KEY"))}
    return {**e, "PYTHONPATH": str(ROOT), **extra}


def test_redact() -> None:
    assert redact_url("redis://:secret@127.0.0.1:1/0") == "redis://***@127.0.0.1:1/0"
    assert redact_url("rediss://user:pw@h:6380/2") == "rediss://***@h:6380/2"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact("Error at redis://u:p@h/0, mail me@example.com") == "Error at redis://***@h/0, mail me@example.com"


def serve_until_ready(args: list[str], extra_env: dict[str, str]) -> str:
    """Run `vllmtune cache serve ARGS` until it announces itself, stop it, return all it printed."""
    proc = subprocess.Popen(
        [*CLI, "cache", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env(**extra_env),
        text=True,
    )
    out = []
    deadline = time.monotonic() + 30
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if line.startswith("vllmtune cache: http://"):
                break
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
    return "".join(out) + rest


def test_cache_serve_never_prints_the_redis_password() -> None:
    port = free_port()
    printed = serve_until_ready(
        [
            "--upstream",
            "http://127.0.0.1:1",
            "--port",
            str(port),
            "--backend",
            "redis",
            "--redis-url",
            "redis://:secret@127.0.0.1:1/0",
        ],
        {"VLLMTUNE_REDIS_PASSWORD": "othersecret"},
    )
    assert "redis at redis://***@127.0.0.1:1/0 does not answer" in printed, printed
    assert "secret" not in printed.replace("***", "")
    assert f"vllmtune cache: http://127.0.0.1:{port} -> http://127.0.0.1:1 (redis" in printed


def test_cache_serve_options_are_checked() -> None:
    for args, message in (
        (["--upstream-timeout", "0"], "--upstream-timeout 0: expected a positive number of seconds"),
        (["--max-bytes", "0"], "--max-bytes 0: expected a positive number of bytes"),
    ):
        got = subprocess.run(
            [*CLI, "cache", "serve", "--upstream", "http://127.0.0.1:1", "--port", "0", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env(),
            check=False,
        )
        assert got.returncode == 1, got
        assert message in got.stderr, got.stderr
        assert "Traceback" not in got.stderr


@pytest.mark.redis
def test_password_from_env_against_a_real_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("redis-server") is not None, "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            "pw-123",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)

        async def go() -> tuple[str | None, str | None, object]:
            monkeypatch.delenv("VLLMTUNE_REDIS_PASSWORD", raising=False)
            anon = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout=2)
            why_anon = await anon.ping()
            await anon.close()
            monkeypatch.setenv("VLLMTUNE_REDIS_PASSWORD", "pw-123")
            authed = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout=2)
            why = await authed.ping()
            await authed.set("k", {"body": "x", "frames": None, "created": 1.0, "tokens": 0, "pii_checked": True}, 60)
            got = await authed.get("k")
            await authed.close()
            return why_anon, why, got

        why_anon, why, got = asyncio.run(go())
        assert why_anon is not None and "auth" in why_anon.lower(), why_anon
        assert "pw-123" not in (why_anon or "")
        assert why is None and isinstance(got, dict) and got["body"] == "x"
    finally:
        proc.terminate()
        proc.wait(10)
