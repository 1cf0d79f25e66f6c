"""commands.bench's public names called directly: BenchResult from bench(): the result, the
files written (-o), the error-rate problem, partial; bench() refuses a run with no target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.stub import stub
from vllmtune.commands.bench import BenchArgs, BenchResult, CompareArgs, CompareResult, bench, compare
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


def _result_file(path: Path, label: str, workload: str) -> str:
    summary = {
        "request_throughput": 2.0,
        "e2e_ms": {"p50": 510.0, "p99": 900.0},
        "ttft_ms": {"p50": 100.0, "p99": 150.0},
        "tokens_per_call": 16.0,
        "output_token_throughput": 32.0,
    }
    config = {"workload": workload, "seed": 0, "requests": 8}
    samples = {"e2e_ms": [500.0, 510.0, 520.0], "ttft_ms": []}
    path.write_text(
        json.dumps({"version": 1, "summary": summary, "label": label, "config": config, "samples": samples})
    )
    return str(path)


def test_compare_result_text_in_the_format_asked_and_its_warnings(tmp_path: Path) -> None:
    a = _result_file(tmp_path / "a.json", "a", "mixed")
    assert compare(CompareArgs(results=[a], output="csv")) == CompareResult(
        "config,errors,goodput,output_tok_s,p50_ms,p99_ms,relative_cost,req_s,tokens_per_call,ttft_p50_ms,ttft_p99_ms\n"
        "a,0,,32.0,510.0,900.0,1.0,2.0,16.0,100.0,150.0\n",
        [],
    )
    b = _result_file(tmp_path / "b.json", "b", "sharegpt")
    assert compare(CompareArgs(results=[a, b], output="csv")).warnings == [
        "these results ran different workloads, so the comparison is not like for like: "
        f"{a}: mixed, seed 0, 8 requests; {b}: sharegpt, seed 0, 8 requests"
    ]
