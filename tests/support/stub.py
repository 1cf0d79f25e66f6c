"""vllmtune's own OpenAI-compatible stub server (``python -m vllmtune.bench.stub``) in a child
process, for tests that need a server to measure: ``with stub("--tokens", "4") as url: ...``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.cli import ROOT
from vllmtune.util.net import free_port


@contextmanager
def stub(*args: str, seconds: int = 120) -> Iterator[str]:
    """The stub's base URL while it runs (``args``: its options, e.g. ``--ttft 0.05``)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--seconds", str(seconds), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("stub listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
