"""vLLM's Prometheus /metrics: what bench reads before and after a run, and the deltas it reports.

The exposition text is parsed by prometheus_client's own parser (the one the Prometheus project
maintains for its text format), never by hand. A snapshot keeps the counters vllmtune reports
and the buckets of a few latency histograms, each summed over label sets (engines, models,
finish reasons); the result holds their differences between the two snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

COUNTERS = (
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
    "vllm:prompt_tokens_cached_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:num_preemptions_total",
    "vllm:request_success_total",
    # speculative decoding (vLLM v1: vllm/v1/spec_decode/metrics.py)
    "vllm:spec_decode_num_drafts_total",
    "vllm:spec_decode_num_draft_tokens_total",
    "vllm:spec_decode_num_accepted_tokens_total",
)
HISTOGRAMS = ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds")
SPEC_DRAFTS = "vllm:spec_decode_num_drafts_total"
SPEC_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens_total"
SPEC_ACCEPTED = "vllm:spec_decode_num_accepted_tokens_total"


@dataclass(frozen=True)
class Scrape:
    """One /metrics page: the counters in COUNTERS and the cumulative buckets (le -> count) of
    the histograms in HISTOGRAMS, each summed over label sets; empty when there was no page."""

    values: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


def parse(text: str) -> Scrape:
    """The series vllmtune reads from a /metrics page; ValueError when it is not the Prometheus
    text format (prometheus_client's parser decides)."""
    values: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    bucket_names = {h + "_bucket": h for h in HISTOGRAMS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in COUNTERS:
                values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
            elif sample.name in bucket_names and "le" in sample.labels:
                per_le = buckets.setdefault(bucket_names[sample.name], {})
                le = float(sample.labels["le"])  # "+Inf" -> inf
                per_le[le] = per_le.get(le, 0.0) + float(sample.value)
    return Scrape(values, buckets)


def counter_deltas(before: Scrape, after: Scrape) -> dict[str, float]:
    """Each counter's growth over the run (the result's ``server_metrics``)."""
    return {k: after.values[k] - before.values.get(k, 0.0) for k in after.values}


def histogram_deltas(before: Scrape, after: Scrape) -> dict[str, list[list[float]]]:
    """Per histogram, ``[[le, cumulative count over the run], ...]`` sorted by le (the last is
    +Inf, the requests the server finished in between); JSON writes inf as ``Infinity``."""
    out: dict[str, list[list[float]]] = {}
    for name in HISTOGRAMS:
        if name not in after.buckets:
            continue
        old = before.buckets.get(name, {})
        out[name] = [[le, n - old.get(le, 0.0)] for le, n in sorted(after.buckets[name].items())]
    return out


def spec_decode(server: dict[str, float]) -> dict[str, Any] | None:
    """Speculative decoding over the run from the counter deltas, or None when the server
    exposes no ``vllm:spec_decode_*`` series. acceptance_rate = accepted / draft tokens;
    mean_acceptance_length = 1 + accepted / drafts (vLLM's definition: the tokens each
    verification step yields, the bonus token included); None when there was nothing to divide."""
    if SPEC_DRAFTS not in server and SPEC_DRAFT_TOKENS not in server:
        return None
    drafts = int(server.get(SPEC_DRAFTS, 0.0))
    draft_tokens = int(server.get(SPEC_DRAFT_TOKENS, 0.0))
    accepted = int(server.get(SPEC_ACCEPTED, 0.0))
    return {
        "drafts": drafts,
        "draft_tokens": draft_tokens,
        "accepted_tokens": accepted,
        "acceptance_rate": accepted / draft_tokens if draft_tokens else None,
        "mean_acceptance_length": 1 + accepted / drafts if drafts else None,
    }
