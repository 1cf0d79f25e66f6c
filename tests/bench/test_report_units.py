"""bench.report called directly: the result JSON of fixed records (every figure derived by hand
from the records' times), the per-request lines, reading a result file (whole refusals), and
the comparison's columns, workload warnings, text and markdown tables and CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vllmtune.bench.metrics import Scrape
from vllmtune.bench.report import (
    COLUMNS,
    COST_COLUMNS,
    DEFINITIONS,
    CompareError,
    build_result,
    columns_for,
    compare_rows,
    load_result,
    normalize,
    request_lines,
    rows_csv,
    table_lines,
    workload_mismatch,
    workload_warnings,
)
from vllmtune.bench.runner import Options, Record
from vllmtune.bench.slo import parse_slo
from vllmtune.bench.stats import summarize
from vllmtune.bench.workloads import Case
from vllmtune.errors import VllmtuneError


def test_normalize() -> None:
    assert normalize("  Crème   Brûlée!  ") == "creme brulee"
    assert normalize("Paris.") == normalize("paris") == "paris"
    assert normalize("a-b_c") == "a b_c"  # \w keeps the underscore
    assert normalize("ＦＵＬＬ width") == "full width"  # NFKD folds compatibility forms


def _records() -> list[Record]:
    ok = Record(0, 0.0, start=0.0, first_token=0.125, end=0.5, status=200, chunk_times=[0.125, 0.25, 0.5],
                chunk_tokens=[1, 2, 3], prompt_tokens=10, completion_tokens=6, cached_tokens=4, text="Paris.")  # fmt: skip
    ok2 = Record(1, 0.0, start=0.5, first_token=0.625, end=1.0, status=200, chunk_times=[0.625, 1.0],
                 chunk_tokens=[1, 1], prompt_tokens=20, completion_tokens=2, text="Lyon", x_cache="MISS")  # fmt: skip
    failed = Record(2, 0.0, start=1.0, end=1.125, status=500, error="http_500", error_detail="boom")
    unsent = Record(3, 0.0, error="not_sent")
    return [ok, ok2, failed, unsent]


def _opts() -> Options:
    cases = [Case((("user", "Capital of France?"),), 8, expected="paris"), Case((("user", "x"),), 8, expected="Nice")]
    return Options(url="http://h:8000/v1", model="m", cases=cases, concurrency=2, seed=5)


def test_build_result_whole() -> None:
    res = build_result(
        _opts(), _records(), 2.0, label="base", workload="mixed", before=Scrape({"vllm:a": 1.0}), after=Scrape({"vllm:a": 4.0, "vllm:b": 2.0}),
        meta={"workload_format": "built-in"}, partial=False, ceiling=None,
    )  # fmt: skip
    e2e, ttft = [500.0, 500.0], [125.0, 125.0]  # times are binary fractions: exact in ms
    itl_chunk = [125.0, 250.0, 375.0]  # the gaps between chunk times
    itl_token = [62.5, 250 / 3, 375.0]  # each gap over the tokens its later chunk carried
    tpot = [75.0, 375.0]  # (end - first token) / (completion tokens - 1)
    assert res["summary"] == {
        "requests_sent": 3,
        "requests_ok": 2,
        "wall_s": 2.0,
        "request_throughput": 1.0,
        "output_token_throughput": 4.0,
        "tokens_per_call": 4.0,
        "prompt_tokens_per_call": 15.0,
        "cached_prompt_tokens": 4,
        "e2e_ms": summarize(e2e),
        "ttft_ms": summarize(ttft),
        "itl_chunk_ms": summarize(itl_chunk),
        "itl_token_ms": summarize(itl_token),
        "tokens_per_chunk": summarize([1.0, 2.0, 3.0, 1.0, 1.0]),
        "tpot_ms": summarize(tpot),
    }
    assert res["summary"]["e2e_ms"] == {
        "count": 2,
        "mean": 500.0,
        "p50": 500.0,
        "p90": 500.0,
        "p99": 500.0,
        "min": 500.0,
        "max": 500.0,
    }
    assert {k: v for k, v in res.items() if k != "summary"} == {
        "version": 1,
        "label": "base",
        "partial": False,
        "config": {
            "endpoint": "http://h:8000/v1", "model": "m", "workload": "mixed", "seed": 5, "requests": 2, "warmup": 0,
            "concurrency": 2, "rate": None, "arrivals": "closed-loop", "burstiness": None, "duration": None,
            "stream": True, "api": "chat", "ignore_eos": False, "session_header": None,
            "workload_format": "built-in",
        },
        "server_metrics": {"vllm:a": 3.0, "vllm:b": 2.0},
        "spec_decode": None,
        "server_histograms": {},
        "quality": {"cases": 2, "exact": 0.0, "normalized": 0.5},  # "Paris." ~ "paris"; "Lyon" is not "Nice"
        "slo": None,
        "errors": {"http_500": 1},
        "error_samples": [{"error": "http_500", "message": "boom", "count": 1}],
        "warnings": [],
        "definitions": DEFINITIONS,
        "samples": {"e2e_ms": e2e, "ttft_ms": ttft},
    }  # fmt: skip


def test_build_result_warnings_and_goodput() -> None:
    opts = _opts()
    opts.rate = 4.0
    records = _records()
    for r, scheduled in zip(records, (-0.125, 0.375, 0.875), strict=False):
        r.scheduled = scheduled  # each sent 125 ms after its slot
    res = build_result(
        opts, records, 2.0, label="", workload="mixed", before=Scrape(), after=Scrape(), meta={}, partial=True, ceiling=1.2,
        slo=parse_slo("ttft_p99=150ms,e2e_p50=400ms"),
    )  # fmt: skip
    assert res["summary"]["schedule_lag_p50_ms"] == 125.0
    assert res["warnings"] == [
        "could not hold the target rate of 4.0/s: requests left a median 125 ms late (raise --concurrency or lower --rate)",
        "1 req/s is close to this client's ceiling (1 req/s, vllmtune bench --calibrate): the client may be the bottleneck",
    ]
    assert res["config"]["arrivals"] == "constant"
    assert res["slo"]["good_requests"] == 0  # e2e 500 ms > 400 ms for both
    assert res["summary"]["goodput"] == 0.0
    assert [(o["objective"], o["met"], o["requests_within"]) for o in res["slo"]["objectives"]] == [
        ("ttft_p99", True, 2),
        ("e2e_p50", False, 0),
    ]


def test_request_lines_whole() -> None:
    lines = request_lines(_records())
    assert lines[0] == {
        "index": 0, "scheduled_ms": 0.0, "sent_ms": 0.0, "ttft_ms": 125.0, "e2e_ms": 500.0, "status": 200,
        "error": None, "error_detail": None, "prompt_tokens": 10, "completion_tokens": 6, "cached_tokens": 4,
        "chunk_tokens": [1, 2, 3], "chunk_gaps_ms": [125.0, 250.0], "x_cache": None,
    }  # fmt: skip
    assert lines[1]["x_cache"] == "MISS"
    assert (lines[2]["ttft_ms"], lines[2]["e2e_ms"], lines[2]["error_detail"]) == (None, 125.0, "boom")
    assert lines[3] == {
        "index": 3, "scheduled_ms": 0.0, "sent_ms": None, "ttft_ms": None, "e2e_ms": None, "status": 0,
        "error": "not_sent", "error_detail": None, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
        "chunk_tokens": [], "chunk_gaps_ms": [], "x_cache": None,
    }  # fmt: skip


def test_load_result_and_its_refusals(tmp_path: Path) -> None:
    good = tmp_path / "a.json"
    whole = {"version": 1, "summary": SUMMARY, "samples": {"e2e_ms": [], "ttft_ms": []}, "label": "a"}
    good.write_text(json.dumps(whole))
    assert load_result(str(good)) == {**whole, "_path": str(good)}
    assert issubclass(CompareError, VllmtuneError)
    cases = {
        "missing.json": None,
        "bad.json": "{nope",
        "old.json": json.dumps({"version": 0, "summary": {}}),
        "list.json": "[]",
        "empty.json": json.dumps({"version": 1, "summary": {}}),
        "partial.json": json.dumps(
            {"version": 1, "summary": {k: v for k, v in SUMMARY.items() if k != "ttft_ms"}, "samples": {"e2e_ms": []}}
        ),
    }
    messages = []
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(CompareError) as err:
            load_result(str(path))
        messages.append(str(err.value))
    assert messages == [
        f"{tmp_path}/missing.json: cannot read: No such file or directory",
        f"{tmp_path}/bad.json: not a vllmtune bench result (invalid JSON: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))",
        f"{tmp_path}/old.json: not a vllmtune bench result (write one with vllmtune bench -o FILE)",
        f"{tmp_path}/list.json: not a vllmtune bench result (write one with vllmtune bench -o FILE)",
        f"{tmp_path}/empty.json: an incomplete vllmtune bench result: no summary.request_throughput, "
        "summary.output_token_throughput, summary.tokens_per_call, summary.e2e_ms, summary.ttft_ms, "
        "samples.e2e_ms, samples.ttft_ms; write it again with vllmtune bench -o FILE (compare and ladder read "
        "these keys)",
        f"{tmp_path}/partial.json: an incomplete vllmtune bench result: no summary.ttft_ms, samples.ttft_ms; "
        "write it again with vllmtune bench -o FILE (compare and ladder read these keys)",
    ]


SUMMARY = {
    "request_throughput": 2.0, "output_token_throughput": 32.0, "tokens_per_call": 16.0,
    "e2e_ms": {"count": 0}, "ttft_ms": {"count": 0},
}  # fmt: skip


def _result(path: str, workload: str, seed: int, requests: int, sha: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"workload": workload, "seed": seed, "requests": requests}
    if sha:
        config["workload_sha256"] = sha
    return {"_path": path, "config": config}


def test_workload_mismatch_and_warnings() -> None:
    same = [_result("a.json", "mixed", 0, 100), _result("b.json", "mixed", 0, 100)]
    assert workload_mismatch(same) is None
    assert workload_warnings(same) == []
    other = [
        _result("a.json", "w.jsonl", 0, 100, "0123456789abcdef"),
        _result("b.json", "w.jsonl", 0, 100, "fedcba9876543210"),
    ]
    listing = (
        "a.json: w.jsonl (sha256 0123456789ab), seed 0, 100 requests; "
        "b.json: w.jsonl (sha256 fedcba987654), seed 0, 100 requests"
    )
    assert workload_mismatch(other) == listing
    assert workload_warnings(other) == [
        "these results ran different workloads, so the comparison is not like for like: " + listing
    ]
    assert workload_mismatch([_result("a.json", "mixed", 0, 100), _result("b.json", "mixed", 1, 100)]) == (
        "a.json: mixed, seed 0, 100 requests; b.json: mixed, seed 1, 100 requests"
    )


def test_workload_mismatch_tells_session_headers_apart() -> None:
    def with_header(path: str, header: str | None) -> dict[str, Any]:
        res = _result(path, "t.jsonl", 0, 10)
        res["config"]["session_header"] = header
        return res

    old = _result("old.json", "t.jsonl", 0, 10)  # from before the header was recorded: none sent
    assert workload_mismatch([old, with_header("b.json", None)]) is None
    assert workload_mismatch([with_header("a.json", "X-Tenant-Id"), with_header("b.json", "x-tenant-id")]) is None
    assert workload_mismatch([with_header("a.json", "x-tenant-id"), with_header("b.json", None)]) == (
        "a.json: t.jsonl, seed 0, 10 requests, session header x-tenant-id; b.json: t.jsonl, seed 0, 10 requests"
    )
    assert workload_mismatch([with_header("a.json", "x-tenant-id"), with_header("b.json", "x-user-id")]) == (
        "a.json: t.jsonl, seed 0, 10 requests, session header x-tenant-id; "
        "b.json: t.jsonl, seed 0, 10 requests, session header x-user-id"
    )


ROWS: list[dict[str, Any]] = [
    {"config": "base", "p50_ms": 500.0, "p99_ms": 900.0, "ttft_p50_ms": 100.0, "ttft_p99_ms": 150.0,
     "tokens_per_call": 4.0, "output_tok_s": 1234.5, "req_s": 1.0, "goodput": None, "relative_cost": 1.0,
     "errors": 0, "quality": 0.5},
    {"config": "fp8", "p50_ms": 400.0, "p99_ms": 700.0, "ttft_p50_ms": 80.0, "ttft_p99_ms": None,
     "tokens_per_call": 4.25, "output_tok_s": 2000.0, "req_s": 2.0, "goodput": 1.5, "relative_cost": 0.5,
     "errors": 1, "quality": 0.25, "quality_delta": -0.25, "quality_regression": True,
     "p50_delta_ms_ci95": [-120.0, -80.0], "ttft_p50_delta_ms_ci95": [-30.0, -10.0]},
]  # fmt: skip


def test_columns_for() -> None:
    assert columns_for(ROWS) == COLUMNS
    assert columns_for([*ROWS, {"usd_per_1k_requests": 1.0}]) == COLUMNS + COST_COLUMNS
    assert [c[0] for c in COST_COLUMNS] == ["$/1k req", "$/1M out tok"]


def test_table_lines_text_and_markdown() -> None:
    assert table_lines(ROWS, markdown=False) == [
        "Config  p50 ms  p99 ms  TTFT p50  TTFT p99  Tokens/call  Output tok/s  Quality    Relative cost",
        "base    500     900     100       150       4.0          1,234         0.500      1.00x",
        "fp8     400     700     80        -         4.2          2,000         0.250 (!)  0.50x",
        "",
        "vs base:",
        "  fp8: p50 -100 ms (95% CI -120 .. -80), TTFT p50 -20 ms (95% CI -30 .. -10)",
        "  fp8: QUALITY DROP -0.250 vs base",
    ]
    assert table_lines(ROWS[:1], markdown=True) == [
        "| Config | p50 ms | p99 ms | TTFT p50 | TTFT p99 | Tokens/call | Output tok/s | Quality | Relative cost |",
        "|---|---|---|---|---|---|---|---|---|",
        "| base | 500 | 900 | 100 | 150 | 4.0 | 1,234 | 0.500 | 1.00x |",
    ]
    no_ci = [ROWS[0], {**ROWS[1], "p50_delta_ms_ci95": None, "quality_regression": False}]
    assert table_lines(no_ci, markdown=False)[-1].startswith("fp8 ")  # no CI and no reason: no "vs base" section


def test_compare_rows_of_too_few_requests_has_null_cis_and_says_why() -> None:
    def res(label: str, e2e: list[float], ttft: list[float]) -> dict[str, Any]:
        summary = {**SUMMARY, "e2e_ms": {"p50": e2e[1]}, "ttft_ms": {"p50": ttft[1]}}
        return {
            "label": label,
            "_path": f"{label}.json",
            "summary": summary,
            "samples": {"e2e_ms": e2e, "ttft_ms": ttft},
        }

    rows = compare_rows(
        [res("a", [500.0, 510.0, 520.0], [90.0, 100.0, 110.0]), res("b", [400.0, 410.0, 420.0], [80.0, 85.0, 90.0])],
        None,
    )
    assert {k: v for k, v in rows[1].items() if "ci95" in k} == {
        "p50_delta_ms_ci95": None,
        "p50_delta_ms_ci95_note": "too few requests for a p50 CI: 3 < 6",
        "ttft_p50_delta_ms_ci95": None,
        "ttft_p50_delta_ms_ci95_note": "too few requests for a p50 CI: 3 < 6",
    }
    json.dumps(rows, allow_nan=False)  # valid JSON: raises on a NaN
    assert table_lines(rows, markdown=False)[-3:] == [
        "",
        "vs a:",
        "  b: p50 -100 ms (too few requests for a p50 CI: 3 < 6), TTFT p50 -15 ms (too few requests for a p50 CI: 3 < 6)",
    ]
    six = [500.0] * 6  # constant samples: every bootstrap replicate of the difference is -100
    rows = compare_rows([res("a", six, six), res("b", [400.0] * 6, [400.0] * 6)], None)
    assert rows[1]["p50_delta_ms_ci95"] == [-100.0, -100.0]
    assert "p50_delta_ms_ci95_note" not in rows[1]


def test_rows_csv() -> None:
    assert rows_csv(ROWS).splitlines() == [
        "config,errors,goodput,output_tok_s,p50_delta_ms_ci95,p50_ms,p99_ms,quality,quality_delta,"
        "quality_regression,relative_cost,req_s,tokens_per_call,ttft_p50_delta_ms_ci95,ttft_p50_ms,ttft_p99_ms",
        "base,0,,1234.5,,500.0,900.0,0.5,,,1.0,1.0,4.0,,100.0,150.0",
        'fp8,1,1.5,2000.0,"[-120.0, -80.0]",400.0,700.0,0.25,-0.25,True,0.5,2.0,4.25,"[-30.0, -10.0]",80.0,',
    ]
