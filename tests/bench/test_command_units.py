"""bench.command's public names called directly: BenchArgs and CompareArgs as their command
lines parse; run_bench's refusals of the user's own input (whole messages, before any server is
asked) and one small run against the stub server; error_rate_problem (vllm's context-length
error explained); write_result (the JSON compare reads)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.stub import stub
from vllmtune.bench.command import (
    SESSION_HEADER_HINT,
    BenchArgs,
    CompareArgs,
    error_rate_problem,
    known_ceiling,
    run_bench,
    write_result,
)
from vllmtune.errors import BenchError
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_bench_args_from_the_command_line() -> None:
    assert parse(BenchArgs, []) == BenchArgs()
    argv = ["http://h:8000", "-w", "duplicates", "-n", "50", "-c", "4", "--rate", "2.5", "--poisson", "--no-stream",
            "--api", "completions", "--max-tokens", "64", "--seed", "7", "-l", "awq", "--duplicate-share", "0.3",
            "-o", "r.json", "--max-error-rate", "0", "--slo", "ttft_p99=500ms", "--ignore-eos",
            "--session-header", "x-tenant-id"]  # fmt: skip
    assert parse(BenchArgs, argv) == BenchArgs(
        target="http://h:8000", workload="duplicates", requests=50, concurrency=4, rate=2.5, poisson=True,
        stream=False, api="completions", max_tokens=64, seed=7, label="awq", duplicate_share=0.3, out="r.json",
        max_error_rate=0.0, slo="ttft_p99=500ms", ignore_eos=True, session_header="x-tenant-id",
    )  # fmt: skip


def test_compare_args_from_the_command_line() -> None:
    assert parse(CompareArgs, ["a.json"]) == CompareArgs(
        results=["a.json"], gpu_hour_usd=None, output="text", plot=None, quality_drop=0.01, strict=False
    )
    argv = ["a.json", "b.json", "--gpu-hour-usd", "2.5", "--output", "csv", "--plot", "c.png", "--quality-drop", "0.02", "--strict"]  # fmt: skip
    assert parse(CompareArgs, argv) == CompareArgs(
        results=["a.json", "b.json"], gpu_hour_usd=2.5, output="csv", plot="c.png", quality_drop=0.02, strict=True
    )


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"burstiness": 0.5}, "--burstiness shapes the arrivals at --rate: give --rate too"),
        ({"burstiness": 0.0, "rate": 5.0}, "--burstiness must be a positive number (1 = Poisson), not 0"),
        ({"burstiness": float("inf"), "rate": 5.0}, "--burstiness must be a positive number (1 = Poisson), not inf"),
        (
            {"target": "https://h:8000"},
            "https endpoints are not supported by the benchmark client yet; use http:// (or a local port-forward)",
        ),
        (
            {"session_header": "x tenant"},
            "--session-header 'x tenant' is not an HTTP header name: ' ' (character 2) cannot be in one "
            f"(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only); {SESSION_HEADER_HINT}",
        ),
        (
            {"session_header": "Content-Length"},
            f"--session-header Content-Length: the benchmark client writes that header itself; {SESSION_HEADER_HINT}",
        ),
        (
            {"session_header": "x-tenant-id", "workload": "random"},
            "--session-header x-tenant-id sends each request's user, but no request of workload random names a "
            'user; give a chat JSONL workload whose records carry "user" (OpenAI\'s end-user id)',
        ),
    ],
)
def test_run_bench_refuses_bad_input_before_asking_a_server(over: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchError) as e:
        run_bench(BenchArgs(**{"target": "http://127.0.0.1:9", **over}))
    assert str(e.value) == message


def test_run_bench_against_the_stub() -> None:
    with stub("--tokens", "4", seconds=60) as url:
        result = run_bench(BenchArgs(target=url, workload="random", requests=6, concurrency=2))
    assert (result["summary"]["requests_sent"], result["summary"]["requests_ok"]) == (6, 6)
    assert (result["partial"], result["errors"], result["error_samples"]) == (False, {}, [])
    assert result["summary"]["ttft_ms"]["count"] == 6
    assert error_rate_problem(result, 0.0) is None


def test_session_header_hint_names_what_the_router_reads() -> None:
    assert SESSION_HEADER_HINT == (
        "name the header the router reads, e.g. --session-header x-tenant-id (vllm-router's consistent_hash "
        "reads x-session-id, x-user-id, x-tenant-id, x-correlation-id, x-request-id or x-trace-id)"
    )


def test_error_rate_problem() -> None:
    ok = {"summary": {"requests_sent": 100}, "errors": {"http_500": 5}}
    assert error_rate_problem(ok, 0.05) is None  # at the bound is not above it
    assert error_rate_problem({"summary": {"requests_sent": 0}, "errors": {}}, 0.05) is None
    result = {
        "summary": {"requests_sent": 10},
        "errors": {"http_400": 3, "timeout": 1},
        "error_samples": [
            {
                "error": "http_400",
                "count": 3,
                "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            },
            {"error": "timeout", "count": 1, "message": ""},
        ],
    }
    assert error_rate_problem(result, 0.05) == (
        "4 of 10 requests failed (40.0%, above --max-error-rate 5.0%); first distinct errors:\n"
        "  http_400 (3x): This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.\n"
        "  timeout (1x)\n"
        "  (the server's max_model_len is 4096 tokens: shorten the workload's prompts and --max-tokens, or raise "
        "model.max_model_len)"
    )


def test_write_result(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r.json"
    path.parent.mkdir()
    write_result({"label": "awq", "at": Path("/x")}, str(path))
    assert path.read_text() == '{\n  "label": "awq",\n  "at": "/x"\n}\n'
    assert json.loads(path.read_text()) == {"label": "awq", "at": "/x"}


def test_known_ceiling_reads_the_calibration_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert known_ceiling() is None  # never calibrated
    ceiling = tmp_path / "vllmtune" / "bench-ceiling.json"
    ceiling.parent.mkdir()
    ceiling.write_text(json.dumps({"non_streaming_c16_req_s": 412.5, "streaming_c16_req_s": 300.0}))
    assert known_ceiling() == 412.5
    for broken in (
        "{not json",
        json.dumps({"streaming_c16_req_s": 300.0}),
        json.dumps({"non_streaming_c16_req_s": "x"}),
    ):
        ceiling.write_text(broken)
        assert known_ceiling() is None
