"""commands.bench's public names called directly: BenchResult from bench(): the result, the
files written (-o), the error-rate problem, partial; bench() refuses a run with no target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.stub import stub
from vllmtune.commands.bench import BenchArgs, BenchResult, bench
from vllmtune.errors import BenchError


def test_bench_needs_a_target() -> None:
    with pytest.raises(BenchError) as e:
        bench(BenchArgs())
    assert str(e.value) == "give an endpoint URL or a profile (or --calibrate)"


def test_bench_result_of_a_run_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with stub("--tokens", "4", seconds=60) as url:
        got = bench(BenchArgs(target=url, workload="random", requests=4, concurrency=2, out=str(out), label="x"))
    assert isinstance(got, BenchResult)
    assert (got.calibrated, got.wrote, got.problem, got.partial) == (False, [str(out)], None, False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(got.result, default=str))
    assert got.result["label"] == "x"


def test_bench_result_partial_follows_the_result() -> None:
    assert BenchResult({"partial": True}).partial is True
    assert BenchResult({"partial": False}).partial is False
    assert BenchResult({}).partial is False
