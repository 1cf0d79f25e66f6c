"""bench.metrics: two /metrics pages as vLLM 0.32 writes them (prometheus_client's exposition,
two engines), and what the result reports from them: the counters' growth, speculative decoding
and the latency histograms' bucket deltas (whole values asserted)."""

from __future__ import annotations

import json
import math

from vllmtune.bench.metrics import Scrape, counter_deltas, histogram_deltas, parse, spec_decode
from vllmtune.bench.report import build_result
from vllmtune.bench.runner import Options
from vllmtune.bench.workloads import Case


def page(drafts: int, draft_tokens: int, accepted: int, ttft: tuple[int, int, int], e2e: tuple[int, int]) -> str:
    """A /metrics page; the TTFT histogram split over two engines, e2e on one."""
    lo, mid, total = ttft
    return f"""\
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{{engine="0",model_name="demo"}} {drafts}.0
# HELP vllm:spec_decode_num_draft_tokens_total Number of draft tokens.
# TYPE vllm:spec_decode_num_draft_tokens_total counter
vllm:spec_decode_num_draft_tokens_total{{engine="0",model_name="demo"}} {draft_tokens}.0
# HELP vllm:spec_decode_num_accepted_tokens_total Number of accepted tokens.
# TYPE vllm:spec_decode_num_accepted_tokens_total counter
vllm:spec_decode_num_accepted_tokens_total{{engine="0",model_name="demo"}} {accepted}.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.1",model_name="demo"}} {lo}.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="1.0",model_name="demo"}} {mid}.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="demo"}} {total}.0
vllm:time_to_first_token_seconds_count{{engine="0",model_name="demo"}} {total}.0
vllm:time_to_first_token_seconds_sum{{engine="0",model_name="demo"}} 1.25
vllm:time_to_first_token_seconds_bucket{{engine="1",le="0.1",model_name="demo"}} 1.0
vllm:time_to_first_token_seconds_bucket{{engine="1",le="1.0",model_name="demo"}} 1.0
vllm:time_to_first_token_seconds_bucket{{engine="1",le="+Inf",model_name="demo"}} 1.0
vllm:time_to_first_token_seconds_count{{engine="1",model_name="demo"}} 1.0
vllm:time_to_first_token_seconds_sum{{engine="1",model_name="demo"}} 0.05
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{{engine="0",le="2.5",model_name="demo"}} {e2e[0]}.0
vllm:e2e_request_latency_seconds_bucket{{engine="0",le="+Inf",model_name="demo"}} {e2e[1]}.0
vllm:e2e_request_latency_seconds_count{{engine="0",model_name="demo"}} {e2e[1]}.0
vllm:e2e_request_latency_seconds_sum{{engine="0",model_name="demo"}} 9.0
"""


BEFORE = parse(page(drafts=4, draft_tokens=12, accepted=3, ttft=(1, 2, 2), e2e=(2, 2)))
AFTER = parse(page(drafts=24, draft_tokens=72, accepted=18, ttft=(3, 7, 8), e2e=(7, 8)))


def test_a_run_reports_spec_decode_and_the_histograms_bucket_deltas() -> None:
    opts = Options(url="http://h:8000/v1", model="demo", cases=[Case((("user", "x"),), 8)], concurrency=1)
    res = build_result(
        opts, [], 1.0, label="spec", workload="rag", before=BEFORE, after=AFTER, meta={}, partial=False, ceiling=None
    )
    assert res["server_metrics"] == {
        "vllm:spec_decode_num_drafts_total": 20.0,
        "vllm:spec_decode_num_draft_tokens_total": 60.0,
        "vllm:spec_decode_num_accepted_tokens_total": 15.0,
        "vllm:time_to_first_token_seconds_count": 6.0,
        "vllm:time_to_first_token_seconds_sum": 0.0,
    }
    assert res["spec_decode"] == {
        "drafts": 20,
        "draft_tokens": 60,
        "accepted_tokens": 15,
        "acceptance_rate": 0.25,  # accepted / draft tokens
        "mean_acceptance_length": 1.75,  # 1 + accepted / drafts
    }
    # the second engine's buckets did not move: the deltas are engine 0's
    assert res["server_histograms"] == {
        "vllm:time_to_first_token_seconds": [[0.1, 2.0], [1.0, 5.0], [math.inf, 6.0]],
        "vllm:e2e_request_latency_seconds": [[2.5, 5.0], [math.inf, 6.0]],
    }
    assert json.loads(json.dumps(res["server_histograms"]))["vllm:e2e_request_latency_seconds"][-1] == [math.inf, 6.0]


def test_the_first_scrape_sums_engines_and_an_absent_page_counts_from_zero() -> None:
    assert BEFORE.buckets["vllm:time_to_first_token_seconds"] == {0.1: 2.0, 1.0: 3.0, math.inf: 3.0}
    assert histogram_deltas(Scrape(), BEFORE) == {
        "vllm:time_to_first_token_seconds": [[0.1, 2.0], [1.0, 3.0], [math.inf, 3.0]],
        "vllm:e2e_request_latency_seconds": [[2.5, 2.0], [math.inf, 2.0]],
    }
    assert histogram_deltas(BEFORE, Scrape()) == {}


def test_no_spec_decode_series_is_null_and_no_drafts_divides_nothing() -> None:
    plain = parse('# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{engine="0"} 5.0\n')
    assert spec_decode(counter_deltas(Scrape(), plain)) is None
    idle = counter_deltas(BEFORE, BEFORE)
    assert spec_decode(idle) == {
        "drafts": 0,
        "draft_tokens": 0,
        "accepted_tokens": 0,
        "acceptance_rate": None,
        "mean_acceptance_length": None,
    }
