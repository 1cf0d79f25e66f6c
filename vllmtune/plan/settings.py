"""The vLLM server's settings, typed, beside the argv the plan renders.

Every consumer that needs to know a vLLM setting (fit, drift, diff, the runtimes, the
exporters) reads it here; nobody parses the argv back by flag spelling. A value the profile
does not set is :data:`VLLM_DEFAULT` (vLLM decides), never ``None``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Default(enum.Enum):
    """The marker of a setting left to vLLM's own default."""

    VLLM = "vLLM default"

    def __repr__(self) -> str:
        return "VLLM_DEFAULT"

    def __str__(self) -> str:
        return self.value


VLLM_DEFAULT = Default.VLLM


def or_default(value: T | None) -> T | Default:
    """A profile value, or :data:`VLLM_DEFAULT` when unset."""
    return VLLM_DEFAULT if value is None else value


def value_or(value: T | Default, fallback: T) -> T:
    """The setting, or ``fallback`` (what vLLM's default amounts to) when left to vLLM."""
    return fallback if isinstance(value, Default) else value


@dataclass(frozen=True)
class SpeculativeSettings:
    """Speculative decoding (lever 5) as resolved for the pinned version."""

    method: str
    model: str | Default  # the draft model (ngram: none)
    num_tokens: int
    prompt_lookup_max: int | Default
    prompt_lookup_min: int | Default
    draft_tensor_parallel_size: int | Default


@dataclass(frozen=True)
class LoraAdapterSettings:
    """One adapter: its served name and what vLLM loads (a hub id or the container path)."""

    name: str
    source: str


@dataclass(frozen=True)
class LoraSettings:
    """Multi-LoRA serving."""

    adapters: tuple[LoraAdapterSettings, ...]
    max_loras: int | Default
    max_lora_rank: int | Default
    max_cpu_loras: int | Default
    runtime_updates: bool  # clients load/unload adapters (VLLM_ALLOW_RUNTIME_LORA_UPDATING)


@dataclass(frozen=True)
class VllmSettings:
    """Every vLLM setting the plan resolves, typed. ``flags`` maps each vLLM ``dest`` the
    plan rendered to its spelling in the pinned version (for messages and comparisons)."""

    model: str  # what vLLM loads: hub id, checkpoint, or the container path of a local dir
    served_names: tuple[str, ...]  # the base model's name, then the LoRA adapters'
    host: str
    port: int
    revision: str | Default
    tokenizer: str | Default
    max_model_len: int | Default
    dtype: str | Default
    trust_remote_code: bool | Default
    tensor_parallel_size: int
    pipeline_parallel_size: int
    distributed_executor_backend: str | Default  # "ray" across nodes
    gpu_memory_utilization: float | Default
    max_num_seqs: int | Default
    max_num_batched_tokens: int | Default
    enable_chunked_prefill: bool | Default
    enable_prefix_caching: bool | Default
    quantization: str | Default
    kv_cache_dtype: str | Default
    block_size: int | Default  # server.extra_args only (no profile field)
    kv_cache_memory_bytes: int | Default  # server.extra_args only
    enforce_eager: bool | Default  # compilation.enforce_eager
    data_parallel_size: int
    enable_expert_parallel: bool | Default
    enable_eplb: bool | Default
    async_scheduling: bool | Default
    long_prefill_token_threshold: int | Default
    scheduling_policy: str | Default  # "priority" / "fcfs"
    cudagraph_capture_sizes: tuple[int, ...] | Default
    performance_mode: str | Default
    enable_sleep_mode: bool | Default
    kv_offloading_backend: str | Default  # kv_offload.backend
    kv_offloading_bytes: int | Default  # kv_offload.size: host memory of the offloaded KV
    speculative: SpeculativeSettings | Default
    lora: LoraSettings | Default
    extra: tuple[tuple[str, str], ...]  # server.extra_args as (dest, value): "on"/"off" for switches
    flags: tuple[tuple[str, str], ...]  # dest -> flag spelling, for what the argv holds

    @property
    def served_name(self) -> str:
        return self.served_names[0]

    def flag(self, dest: str) -> str | None:
        """How the plan spelt ``dest`` in the argv (None: not rendered)."""
        return dict(self.flags).get(dest)
