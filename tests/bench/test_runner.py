"""The load generator's accounting (TTFT, inter-chunk gaps, tokens per chunk, e2e, schedule,
warm-up, errors) driven through its transport seam: a scripted server on an event loop with
virtual time (tests/support/fake_transport.py), so every time below is exact, not measured."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.support.fake_transport import Reply, ScriptedServer, cut_short, run_virtual, sse
from vllmtune.bench import runner
from vllmtune.bench.metrics import Scrape
from vllmtune.bench.report import build_result, request_lines
from vllmtune.bench.workloads import Case


def cases(n: int, expected: str | None = None) -> list[Case]:
    return [Case(messages=(("user", f"question {i}"),), max_tokens=8, expected=expected) for i in range(n)]


def bench(replies: list[Reply], **options: Any) -> tuple[list[runner.Record], float, ScriptedServer]:
    server = ScriptedServer(replies)
    opts = runner.Options(url="http://fake:8000/v1", model="m", **{"cases": cases(1), **options})
    records, wall = run_virtual(lambda loop: runner.run(opts, connect=server.connect, clock=loop.time))
    return records, wall, server


def chunk(text: str | None, completion: int, prompt: int = 7, cached: int | None = None) -> dict[str, Any]:
    """One vLLM streamed chunk with continuous usage; text None: the role-only first chunk."""
    delta = {"role": "assistant"} if text is None else {"content": text}
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"choices": [{"index": 0, "delta": delta}], "usage": usage}


def streamed(head_after: float = 0.25) -> Reply:
    """role chunk with the head; "Hel" (1 token) 0.375 s later; "lo" (2 tokens: a speculative
    step) 0.25 s later, split across two reads; the usage-only chunk and [DONE] 0.125 s later."""
    two = sse(chunk("lo", 3, cached=4))
    return Reply(
        head_after=head_after,
        pieces=[
            (0.0, sse(chunk(None, 0))),
            (0.375, sse(chunk("Hel", 1))),
            (0.25, two[:20]),
            (0.0, two[20:]),
            (0.125, sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}, "[DONE]")),
        ],
    )


@pytest.mark.parametrize("expected", [None, "Hello"], ids=["fast-scan", "parsed"])
def test_a_streamed_answer_is_timed_chunk_by_chunk(expected: str | None) -> None:
    records, wall, server = bench([streamed()], cases=cases(1, expected), concurrency=1)
    assert records == [
        runner.Record(
            index=0,
            scheduled=0.0,
            start=0.0,
            first_token=0.625,  # the first chunk with content, not the role chunk at 0.25
            end=1.0,
            status=200,
            chunk_times=[0.625, 0.875],
            chunk_tokens=[1, 2],
            prompt_tokens=7,
            completion_tokens=3,
            cached_tokens=4,
            text="Hello" if expected else "",  # the answer is read only to score quality
        )
    ]
    assert wall == 1.0
    assert [(s.at, s.method, s.path) for s in server.sent] == [(0.0, "POST", "/v1/chat/completions")]
    assert server.sent[0].body == {
        "model": "m",
        "messages": [{"role": "user", "content": "question 0"}],
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    assert request_lines(records) == [
        {
            "index": 0,
            "scheduled_ms": 0.0,
            "sent_ms": 0.0,
            "ttft_ms": 625.0,
            "e2e_ms": 1000.0,
            "status": 200,
            "error": None,
            "error_detail": None,
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "cached_tokens": 4,
            "chunk_tokens": [1, 2],
            "chunk_gaps_ms": [250.0],
            "x_cache": None,
        }
    ]


def test_the_summary_derives_ttft_itl_tpot_and_e2e_from_the_records() -> None:
    opts = runner.Options(url="http://fake:8000/v1", model="m", cases=cases(2), concurrency=1)
    server = ScriptedServer([streamed(0.25), streamed(0.5)])
    records, wall = run_virtual(lambda loop: runner.run(opts, connect=server.connect, clock=loop.time))
    assert [(r.start, r.first_token, r.end) for r in records] == [(0.0, 0.625, 1.0), (1.0, 1.875, 2.25)]
    assert wall == 2.25
    result = build_result(
        opts,
        records,
        wall,
        label="x",
        workload="w",
        before=Scrape(),
        after=Scrape(),
        meta={},
        partial=False,
        ceiling=None,
    )
    s = result["summary"]
    # percentiles interpolate linearly between order statistics (p90 of 625, 875: 850)
    assert s["ttft_ms"] == {
        "count": 2,
        "mean": 750.0,
        "p50": 750.0,
        "p90": 850.0,
        "p99": 872.5,
        "min": 625.0,
        "max": 875.0,
    }
    assert s["e2e_ms"] == {
        "count": 2, "mean": 1125.0, "p50": 1125.0, "p90": 1225.0, "p99": 1247.5, "min": 1000.0, "max": 1250.0
    }  # fmt: skip
    assert s["itl_chunk_ms"] == {
        "count": 2,
        "mean": 250.0,
        "p50": 250.0,
        "p90": 250.0,
        "p99": 250.0,
        "min": 250.0,
        "max": 250.0,
    }
    # the 250 ms gap carried 2 tokens: 125 ms per token
    assert s["itl_token_ms"] == {
        "count": 2,
        "mean": 125.0,
        "p50": 125.0,
        "p90": 125.0,
        "p99": 125.0,
        "min": 125.0,
        "max": 125.0,
    }
    assert s["tokens_per_chunk"] == {
        "count": 4,
        "mean": 1.5,
        "p50": 1.5,
        "p90": 2.0,
        "p99": 2.0,
        "min": 1.0,
        "max": 2.0,
    }
    # (e2e - ttft) / (completion_tokens - 1) = (1000 - 625) / 2
    assert s["tpot_ms"] == {
        "count": 2,
        "mean": 187.5,
        "p50": 187.5,
        "p90": 187.5,
        "p99": 187.5,
        "min": 187.5,
        "max": 187.5,
    }
    assert (s["requests_ok"], s["wall_s"], s["request_throughput"], s["output_token_throughput"]) == (
        2,
        2.25,
        2 / 2.25,
        6 / 2.25,
    )


def answer(text: str, completion: int) -> bytes:
    return (
        b'{"choices": [{"message": {"role": "assistant", "content": "' + text.encode() + b'"}}], '
        b'"usage": {"prompt_tokens": 5, "completion_tokens": ' + str(completion).encode() + b"}}"
    )


def test_closed_loop_workers_take_the_next_request_when_free() -> None:
    # two workers; answers take 0.5, 0.75, 0.25, 0.5 s: each worker sends again as soon as it is free
    took = [0.5, 0.75, 0.25, 0.5]
    replies = [Reply(pieces=[(t, answer("ok", 2))], headers={"content-length": "1"}) for t in took]
    records, wall, server = bench(replies, cases=cases(4), concurrency=2, stream=False)
    assert [(line["sent_ms"], line["e2e_ms"], line["ttft_ms"]) for line in request_lines(records)] == [
        (0.0, 500.0, None),
        (0.0, 750.0, None),
        (500.0, 250.0, None),
        (750.0, 500.0, None),
    ]
    assert wall == 1.25
    assert [(r.completion_tokens, r.prompt_tokens, r.text, r.error) for r in records] == [(2, 5, "ok", None)] * 4
    assert [c.where for c in server.connections] == [("fake", 8000, 600.0)] * 2  # one connection per worker


def test_an_open_loop_sends_on_schedule_and_warmup_is_not_measured() -> None:
    replies = [Reply(pieces=[(0.5, answer("w", 1))])] + [Reply(pieces=[(0.125, answer("ok", 1))]) for _ in range(3)]
    records, wall, server = bench(replies, cases=cases(3), concurrency=3, rate=4.0, warmup=1, stream=False)
    # the warm-up request runs alone (0 .. 0.5); the schedule (every 0.25 s) starts when it ends
    assert [s.at for s in server.sent] == [0.0, 0.5, 0.75, 1.0]
    assert [(r.index, r.warmup, r.scheduled, r.start, r.end) for r in records] == [
        (0, False, 0.5, 0.5, 0.625),
        (1, False, 0.75, 0.75, 0.875),
        (2, False, 1.0, 1.0, 1.125),
    ]
    assert wall == 0.625  # from the end of the warm-up to the last answer


def test_a_duration_stops_issuing() -> None:
    replies = [Reply(pieces=[(0.75, answer("ok", 1))]) for _ in range(2)]
    records, wall, _ = bench(replies, cases=cases(3), concurrency=1, duration=1.0, stream=False)
    assert [(r.start, r.end, r.error) for r in records[:2]] == [(0.0, 0.75, None), (0.75, 1.5, None)]
    assert (math.isnan(records[2].start), records[2].error) == (True, "not_sent")
    assert wall == 1.5
    assert runner.error_counts(records) == {}  # a request never sent is not an error


def test_each_failure_is_recorded_with_its_time() -> None:
    error_body = b'{"error": {"message": "model  not\\nfound", "type": "NotFound", "code": 404}}'
    replies = [
        Reply(status=404, head_after=0.25, pieces=[(0.0, error_body)]),
        Reply(head_after=0.125, pieces=[(0.125, sse(chunk("a", 1)))], fail=cut_short(), fail_after_pieces=True),
        Reply(head_after=0.5, fail=ConnectionRefusedError()),
        Reply(head_after=0.25, pieces=[(0.25, sse(chunk("a", 1)))]),  # no [DONE]
        Reply(head_after=100.0),  # longer than --timeout
    ]
    records, wall, server = bench(replies, cases=cases(5), concurrency=1, timeout=4.0)
    assert [(r.start, r.end, r.status, r.error, r.error_detail) for r in records] == [
        (0.0, 0.25, 404, "http_404", "model not found"),
        (0.25, 0.5, 200, "connection", ""),
        (0.5, 1.0, 0, "connect_refused", ""),
        (1.0, 1.5, 200, "stream_incomplete", ""),
        (1.5, 5.5, 0, "timeout", ""),
    ]
    assert wall == 5.5
    assert [c.closed for c in server.connections] == [4]  # after each broken request, and at the end
    assert runner.error_samples(records) == [
        {"error": "http_404", "message": "model not found", "count": 1},
        {"error": "connection", "message": "", "count": 1},
        {"error": "connect_refused", "message": "", "count": 1},
    ]


def test_server_info_and_metrics_go_through_the_same_seam() -> None:
    models = b'{"object": "list", "data": [{"id": "m"}, {"id": "sql-lora"}]}'
    metrics = b'# HELP x\nvllm:prompt_tokens_total{model="m"} 12.0\nvllm:prompt_tokens_total{model="n"} 3.0\nother 1\n'
    server = ScriptedServer(
        [
            Reply(pieces=[(0.0, models)]),
            Reply(pieces=[(0.0, b'{"version": "0.32.0"}')]),
            Reply(pieces=[(0.0, metrics)]),
        ]
    )

    async def both() -> tuple[dict[str, Any], Scrape]:
        info = await runner.server_info("http://fake:8000", "/v1", connect=server.connect)
        return info, await runner.scrape_metrics("http://fake:8000", connect=server.connect)

    info, scraped = run_virtual(lambda loop: both())
    assert info == {"models": ["m", "sql-lora"], "vllm_version": "0.32.0", "reachable": True}
    assert scraped == Scrape({"vllm:prompt_tokens_total": 15.0}, {})
    assert [(s.method, s.path) for s in server.sent] == [
        ("GET", "/v1/models"),
        ("GET", "/version"),
        ("GET", "/metrics"),
    ]
