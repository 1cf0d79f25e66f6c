"""commands.bench's public names called directly: BenchResult from bench(): the result, the
files written (-o), the error-rate problem, partial; bench() refuses a run with no target."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.commands.bench import BenchArgs, BenchResult, bench
from vllmtune.errors import BenchError


@contextmanager
def stub_server() -> Iterator[str]:
    """vllmtune's own instant OpenAI-compatible stub (python -m vllmtune.bench.stub)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--seconds", "60", "--tokens", "4"],
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


def test_bench_needs_a_target() -> None:
    with pytest.raises(BenchError) as e:
        bench(BenchArgs())
    assert str(e.value) == "give an endpoint URL or a profile (or --calibrate)"


def test_bench_result_of_a_run_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with stub_server() as url:
        got = bench(BenchArgs(target=url, workload="random", requests=4, concurrency=2, out=str(out), label="x"))
    assert isinstance(got, BenchResult)
    assert (got.calibrated, got.wrote, got.problem, got.partial) == (False, [str(out)], None, False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(got.result, default=str))
    assert got.result["label"] == "x"


def test_bench_result_partial_follows_the_result() -> None:
    assert BenchResult({"partial": True}).partial is True
    assert BenchResult({"partial": False}).partial is False
    assert BenchResult({}).partial is False
