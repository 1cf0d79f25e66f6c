"""What the cache-proxy benchmarks share: free ports, waiting for a process to listen, the proxy's
command line, and stopping what they started. Imported as ``benchmarks._common`` (the scripts put
the checkout on ``sys.path`` when run directly; tests import them as modules)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, seconds: float = 15.0) -> None:
    """Until ``proc`` accepts connections on 127.0.0.1:``port`` (SystemExit if it exits or is late)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on 127.0.0.1:{port} within {seconds:g} s")


def env() -> dict[str, str]:
    """The environment for child processes: this checkout's package first on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def proxy_cmd(upstream_port: int, port: int, *args: str) -> list[str]:
    """``python -m vllmtune.cache`` in front of 127.0.0.1:``upstream_port``, listening on ``port``."""
    cmd = [sys.executable, "-m", "vllmtune.cache", "--upstream", f"http://127.0.0.1:{upstream_port}"]
    return [*cmd, "--port", str(port), *args]


def stub_cmd(port: int, seconds: float = 600) -> list[str]:
    """The OpenAI-compatible stub upstream (``python -m vllmtune.bench.stub``)."""
    return [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--seconds", f"{seconds:g}"]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate, then kill after 10 s, every process still running."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
