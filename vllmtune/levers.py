"""The five serving levers, declared once.

Everything that names a lever reads this table: the plan (what each lever renders to), ``explain``
(what it buys), ``diff`` (changes in words), the ladder (its rungs, their titles and aliases) and
the README's lever table (checked by a test). A lever is a profile field; ``dests`` are the vLLM
argument destinations (``flags/`` spells them for the pinned version) that belong to it.

Layer: L0 (imports nothing from vllmtune).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lever:
    """One serving lever."""

    number: int  # its place in the order of return per hour of work
    key: str  # the ladder's rung name: prompt-cache, prefix-caching, ...
    name: str  # in words: "prompt cache", "prefix caching", ...
    field: str  # the profile field that holds it
    buys: str  # what it buys, one line (explain, README)
    dests: tuple[str, ...]  # the vLLM argument dests it renders to ("" when it is not a vLLM flag)
    aliases: tuple[str, ...] = ()  # short names the ladder's --rungs accepts

    @property
    def label(self) -> str:
        """``"2 prefix caching"``: how explain and the plan list it."""
        return f"{self.number} {self.name}"

    @property
    def rung_title(self) -> str:
        """``"+ prefix caching"``: the ladder row of the rung that adds it."""
        return f"+ {self.name}"

    def configured(self, doc: Mapping[str, Any]) -> bool:
        """Whether a raw profile document (after ``extends``) configures this lever."""
        value = doc.get(self.field)
        if self.field == "prompt_cache":
            return bool((value or {}).get("enabled"))
        if self.field == "prefix_caching":
            return value is True
        if self.field == "batching":
            return any(v is not None for v in (value or {}).values())
        if self.field == "quantization":
            q = value or {}
            return bool(q.get("method") or q.get("checkpoint") or q.get("kv_cache_dtype"))
        return bool(value)  # speculative


LEVERS: tuple[Lever, ...] = (
    Lever(
        1,
        "prompt-cache",
        "prompt cache",
        "prompt_cache",
        "identical deterministic requests answered from cache (5-10x cost win at a real hit rate)",
        (),
        ("cache", "prompt"),
    ),
    Lever(
        2,
        "prefix-caching",
        "prefix caching",
        "prefix_caching",
        "shared system prompts / RAG context skip prefill (TTFT -40..70%)",
        ("enable_prefix_caching",),
        ("prefix",),
    ),
    Lever(
        3,
        "batching",
        "batching",
        "batching",
        "token budget per step: too high OOMs, too low wastes throughput",
        ("max_num_batched_tokens", "max_num_seqs", "enable_chunked_prefill"),
        ("batch",),
    ),
    Lever(
        4,
        "quantization",
        "quantization",
        "quantization",
        "2-4x cheaper; may cost 1-3 quality points: re-measure quality",
        ("quantization", "kv_cache_dtype", "allow_deprecated_quantization"),
        ("quant", "awq"),
    ),
    Lever(
        5,
        "speculative",
        "speculative decoding",
        "speculative",
        "1.3-2x faster decode, identical output distribution",
        (
            "speculative_config",
            "speculative_model",
            "num_speculative_tokens",
            "ngram_prompt_lookup_max",
            "ngram_prompt_lookup_min",
            "speculative_draft_tensor_parallel_size",
        ),
        ("spec",),
    ),
)

BY_KEY: dict[str, Lever] = {lever.key: lever for lever in LEVERS}
BY_LABEL: dict[str, Lever] = {lever.label: lever for lever in LEVERS}
BY_FIELD: dict[str, Lever] = {lever.field: lever for lever in LEVERS}


def lever(key: str) -> Lever:
    """The lever of a rung name, a label ("2 prefix caching") or a profile field."""
    found = BY_KEY.get(key) or BY_LABEL.get(key) or BY_FIELD.get(key)
    if found is None:
        raise KeyError(key)
    return found


# The engine levers beyond the five (profile fields, not ladder rungs): the VllmSettings field
# each sets -> its profile field and what it buys / when it hurts, for ``vllmtune explain``.
ENGINE_LEVERS: tuple[tuple[str, str, str], ...] = (
    (
        "data_parallel_size",
        "parallelism.data",
        "buys throughput with full model copies in one server; hurts nothing per request, but each rank "
        "needs the whole tensor x pipeline GPUs and its own KV cache (no longer context)",
    ),
    (
        "enable_expert_parallel",
        "parallelism.expert",
        "buys MoE throughput (each GPU holds whole experts, not slices); hurts dense models (no effect) and "
        "small batches, where all-to-all traffic outweighs the saved memory",
    ),
    (
        "enable_eplb",
        "parallelism.eplb",
        "buys balance when a few experts are hot; costs GPU memory for the replicated experts",
    ),
    (
        "async_scheduling",
        "scheduling.async",
        "buys the scheduler's CPU time between steps (more tokens/s at small models or high QPS); hurts "
        "with features it does not support in the pinned version (vLLM then refuses or falls back)",
    ),
    (
        "long_prefill_token_threshold",
        "scheduling.long_prefill_token_threshold",
        "buys short requests' TTFT beside long prompts; too low slows the long prompts themselves",
    ),
    (
        "scheduling_policy",
        "scheduling.priority",
        "buys latency for the requests clients mark urgent; low-priority requests can wait without bound",
    ),
    (
        "enforce_eager",
        "compilation.enforce_eager",
        "buys start-up time and the CUDA graphs' memory (more KV cache); hurts decode speed, most at small batches",
    ),
    (
        "cudagraph_capture_sizes",
        "compilation.cudagraph_capture_sizes",
        "buys fast decode at exactly the batch sizes you serve; each size costs capture time and memory, "
        "and a batch above the largest runs eagerly",
    ),
    (
        "performance_mode",
        "compilation.performance_mode",
        "buys vLLM's own preset for latency (interactivity) or throughput; it overrides nothing you set",
    ),
    (
        "kv_offloading_backend",
        "kv_offload",
        "pays for long shared contexts whose KV does not fit in GPU memory (a prefix comes back from CPU "
        "memory instead of being recomputed); costs host memory and PCIe traffic, and buys nothing when "
        "the GPU's KV cache already holds the working set",
    ),
    (
        "enable_sleep_mode",
        "sleep_mode",
        "buys sharing a GPU between models in turn (/sleep frees its memory); waking up reloads weights",
    ),
)

# kv_offload.backend -> what that backend adds to the kv_offload note, for ``vllmtune explain``.
KV_OFFLOAD_BACKENDS: dict[str, str] = {
    "native": "vLLM's own CPU tier (from 0.11.1): nothing to install",
    "lmcache": "LMCache inside vLLM (from 0.8.5, before the native tier exists; more tiers through LMCACHE_* "
    "in server.env): the image needs the lmcache package, whose version must suit the pinned vLLM; it keeps "
    "whole 256-token chunks (a shorter tail is not stored) and shares nothing between replicas (LMCache's "
    "server mode, not rendered)",
}
