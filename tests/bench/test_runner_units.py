"""bench.runner's helpers called directly: Record, error_message and error_counts, and
scrape_metrics / server_info over a replaced ``get`` (no sockets) fed the Prometheus text
format 0.0.4 as vLLM's prometheus_client writes it, and vLLM's /v1/models and /version."""

from __future__ import annotations

import asyncio
import math

import pytest

from vllmtune.bench import runner
from vllmtune.bench.metrics import Scrape
from vllmtune.bench.runner import Record, error_counts, error_message, scrape_metrics, server_info

METRICS = b"""\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 120.0
vllm:prompt_tokens_total{engine="1",model_name="m"} 30.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 64.0 1700000000000
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 3.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.001",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.5",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="m"} 1.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.5
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 3.0
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="a b} c"} 2.0
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 5.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
vllm:prefix_cache_hits_total 7
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0
# TYPE vllm:spec_decode_num_draft_tokens_total counter
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 30.0
# TYPE vllm:spec_decode_num_accepted_tokens_total counter
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 6.0
# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 4.0
python_gc_objects_collected_total{generation="0"} 12.0
"""


def _serve(monkeypatch: pytest.MonkeyPatch, pages: dict[str, tuple[int, bytes]]) -> dict[str, list[str]]:
    asked: dict[str, list[str]] = {"urls": []}

    async def get(url: str, timeout: float = 5.0, **_seam: object) -> tuple[int, bytes]:  # connect= on newer main
        asked["urls"].append(url)
        return pages.get(url, (0, b""))

    monkeypatch.setattr(runner, "get", get)
    return asked


def test_scrape_metrics_sums_label_sets_and_reads_the_value_not_the_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, {"http://h:8000/metrics": (200, METRICS)})
    assert asyncio.run(scrape_metrics("http://h:8000")) == Scrape(
        {
            "vllm:prompt_tokens_total": 150.0,
            "vllm:generation_tokens_total": 64.0,  # the sample's value, not its timestamp
            "vllm:time_to_first_token_seconds_sum": 1.5,
            "vllm:time_to_first_token_seconds_count": 3.0,
            "vllm:num_preemptions_total": 2.0,  # a "}" inside a label value
            "vllm:request_success_total": 6.0,
            "vllm:prefix_cache_hits_total": 7.0,
            "vllm:spec_decode_num_drafts_total": 10.0,
            "vllm:spec_decode_num_draft_tokens_total": 30.0,
            "vllm:spec_decode_num_accepted_tokens_total": 6.0,
        },
        {"vllm:time_to_first_token_seconds": {0.001: 1.0, 0.5: 3.0, math.inf: 4.0}},
    )


def test_a_page_that_is_not_the_prometheus_format_or_no_page_reads_as_no_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for page in (
        (200, b'vllm:prefix_cache_queries_total{engine="0"\n'),  # unclosed labels
        (200, b'vllm:prompt_tokens_cached_total{engine="0"} not-a-number\n'),
        (404, b"not found"),
    ):
        _serve(monkeypatch, {"http://h:8000/metrics": page})
        assert asyncio.run(scrape_metrics("http://h:8000")) == Scrape()


def test_server_info_models_version_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _serve(
        monkeypatch,
        {
            "http://h:8000/v1/models": (
                200,
                b'{"object":"list","data":[{"id":"org/m","object":"model"},{"id":"lora1"}]}',
            ),
            "http://h:8000/version": (200, b'{"version":"0.9.2"}'),
        },
    )
    assert asyncio.run(server_info("http://h:8000", "")) == {
        "models": ["org/m", "lora1"],
        "vllm_version": "0.9.2",
        "reachable": True,
    }
    assert asked["urls"] == ["http://h:8000/v1/models", "http://h:8000/version"]
    asked = _serve(monkeypatch, {"http://h:8000/openai/v1/models": (200, b'{"data":[{"id":"m"}]}')})
    assert asyncio.run(server_info("http://h:8000", "/openai/v1")) == {"models": ["m"], "reachable": True}
    _serve(monkeypatch, {"http://h:8000/v1/models": (200, b"[]"), "http://h:8000/version": (404, b"")})
    assert asyncio.run(server_info("http://h:8000", "")) == {"reachable": True}
    _serve(monkeypatch, {"http://h:8000/version": (200, b"{bad")})
    assert asyncio.run(server_info("http://h:8000", "")) == {"reachable": True}
    _serve(monkeypatch, {})
    assert asyncio.run(server_info("http://h:8000", "")) == {"reachable": False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error":{"message":"max_tokens is too large","type":"BadRequestError","code":400}}',
            "max_tokens is too large",
        ),
        (
            b'{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError"}',
            "The model `x` does not exist.",
        ),
        (b'{"error":"Unauthorized"}', "Unauthorized"),
        (b"  Internal\n  Server\tError ", "Internal Server Error"),
        (b'{"error":{"code":500}}', '{"error":{"code":500}}'),
        (b"\xff oops", "\ufffd oops"),
    ],
)
def test_error_message(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_error_message_is_cut_to_the_limit() -> None:
    assert error_message(b"x" * 301) == "x" * 297 + "..."
    assert error_message(b"x" * 300) == "x" * 300
    assert error_message(b"abcdefgh", limit=6) == "abc..."


def test_error_counts_leave_out_requests_never_sent() -> None:
    records = [
        Record(0, 0.0),
        Record(1, 0.0, error="http_500"),
        Record(2, 0.0, error="timeout"),
        Record(3, 0.0, error="http_500"),
        Record(4, 0.0, error="not_sent"),
    ]
    assert error_counts(records) == {"http_500": 2, "timeout": 1}
    assert error_counts([]) == {}


def test_record_defaults() -> None:
    r = Record(index=3, scheduled=0.25)
    assert (r.index, r.scheduled, r.status, r.error, r.error_detail, r.text, r.warmup, r.x_cache) == (
        3, 0.25, 0, None, "", "", False, ""
    )  # fmt: skip
    assert all(math.isnan(v) for v in (r.start, r.first_token, r.end))
    assert (r.chunk_times, r.chunk_tokens, r.prompt_tokens, r.completion_tokens, r.cached_tokens) == ([], [], 0, 0, 0)
    assert Record(0, 0.0).chunk_times is not Record(1, 0.0).chunk_times
