"""The profile's engine sections beyond the five levers (issue 21): data/expert parallelism,
the scheduler, CUDA graphs, KV offload, and the router in front of the replicas. Split from
``profile.models`` (which re-exports them) to keep each module under the house's 600 lines."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator

from vllmtune.modelfacts.sizes import parse_size
from vllmtune.profile.base import Strict
from vllmtune.profile.fieldmeta import meta

# The vllm-project router (PyPI ``vllm-router``, a Rust binary in the wheel): the version
# pinned here and its own policy names, read from ``vllm-router --help`` of that version.
ROUTER_VERSION = "0.1.17"
RouterPolicy = Literal[
    "random", "round_robin", "cache_aware", "kv_aware", "power_of_two", "consistent_hash", "sticky_least_loaded"
]
ROUTER_POLICIES: tuple[str, ...] = get_args(RouterPolicy)
# The Gateway API Inference Extension's endpoint picker, a release whose flags (--pool-name,
# --config-file) and EndpointPickerConfig the rendered Deployment uses (its chart's own).
EPP_IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp:v1.2.1"


class RoutingSection(Strict):
    """A router in front of the replicas: with round-robin each replica holds its own copy of
    every shared prefix; a cache-aware router sends a prefix back to the replica that has it."""

    router: Literal["vllm-router"] = Field(
        default="vllm-router", description=f"The router: the vllm-project router (vllm-router {ROUTER_VERSION})."
    )
    policy: RouterPolicy = Field(
        default="cache_aware",
        description="The router's own policy name (vllm-router --policy): cache_aware sends a prefix to the "
        "replica that served it, round_robin ignores prefixes. vllm-router 0.1.17 reads the prefix of "
        "/v1/completions prompts only (chat requests reach it without routing text), and consistent_hash "
        "keys on a session header (x-session-id, x-user-id, x-tenant-id, ...): measured on two replicas, "
        "consistent_hash on x-tenant-id got 1.4-1.9x round_robin's prefix-cache hits, cache_aware 0.97-1.13x.",
    )
    port: int = Field(default=8100, ge=1, le=65535, description="Port the router listens on (clients use it).")
    gateway: Literal["inference-extension"] | None = Field(
        default=None,
        description="For Kubernetes Gateway users: also render the Gateway API Inference Extension's "
        "InferencePool of the server pods and its endpoint picker (EPP, Deployment and Service NAME-epp) "
        "that picks a pod per request by queue depth, KV-cache use and prefix-cache affinity.",
    )
    epp_image: str = Field(
        default=EPP_IMAGE,
        description="The endpoint picker's image (gateway: inference-extension), with its tag.",
        pattern=r"^[a-z0-9]+([._/:-][a-z0-9]+)*$",
    )
    image: str = Field(
        default="vllmtune/vllm-router",
        description=f"Router image repository, tagged with the router version ({ROUTER_VERSION}): python with "
        f"pip install vllm-router=={ROUTER_VERSION} (the project publishes the wheel, not an image).",
        pattern=r"^[a-z0-9]+([._/:-][a-z0-9]+)*$",
    )


class ParallelismSection(Strict):
    """Data and expert parallelism (tensor and pipeline parallelism are in ``resources``). One server
    then uses data x tensor_parallel_size x pipeline_parallel_size GPUs."""

    data: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Data-parallel engine ranks: full copies of the model inside one server, each with "
        "resources.tensor_parallel_size x pipeline_parallel_size GPUs. More throughput, not a longer context.",
        json_schema_extra=meta("data_parallel_size"),
    )
    expert: bool | None = Field(
        default=None,
        description="Expert parallelism for mixture-of-experts models: the experts are spread over the "
        "data x tensor parallel GPUs instead of each GPU holding a slice of every expert.",
        json_schema_extra=meta("enable_expert_parallel"),
    )
    eplb: bool | None = Field(
        default=None,
        description="Expert-parallel load balancing: replicate hot experts across GPUs (needs expert: true).",
        json_schema_extra=meta("enable_eplb"),
    )


class SchedulingSection(Strict):
    """How vLLM's scheduler orders and overlaps work."""

    async_: bool | None = Field(
        default=None,
        alias="async",
        description="Asynchronous scheduling: schedule step n+1 while step n runs on the GPU, hiding the "
        "CPU's scheduling time between steps.",
        json_schema_extra=meta("async_scheduling"),
    )
    long_prefill_token_threshold: int | None = Field(
        default=None,
        gt=0,
        description="A prompt longer than this many tokens counts as a long prefill; vLLM caps how many "
        "run at once so that short requests are not starved.",
        json_schema_extra=meta("long_prefill_token_threshold"),
    )
    priority: bool | None = Field(
        default=None,
        description="Serve requests by their 'priority' request field (lower first, then arrival) instead "
        "of first come, first served: --scheduling-policy priority (false: fcfs).",
        json_schema_extra=meta("scheduling_policy"),
    )


class CompilationSection(Strict):
    """torch.compile and CUDA graphs."""

    enforce_eager: bool | None = Field(
        default=None,
        description="Run the model eagerly: no CUDA graphs (saves their memory and the capture time at "
        "start-up, costs decode speed).",
        json_schema_extra=meta("enforce_eager"),
    )
    cudagraph_capture_sizes: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Batch sizes to capture CUDA graphs for (vLLM picks a ladder by default). Rendered in "
        "the pinned version's spelling: --cuda-graph-sizes (0.9.0 .. 0.11.0), --cudagraph-capture-sizes "
        "(from 0.11.1).",
        examples=[[1, 2, 4, 8, 16, 32]],
        json_schema_extra=meta("cudagraph_capture_sizes"),
    )
    performance_mode: Literal["balanced", "interactivity", "throughput"] | None = Field(
        default=None,
        description="vLLM's performance preset (from 0.17.0): interactivity favours latency, throughput "
        "favours tokens per second.",
        json_schema_extra=meta("performance_mode"),
    )

    @field_validator("cudagraph_capture_sizes")
    @classmethod
    def _positive_sizes(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(n < 1 for n in value):
            raise ValueError("batch sizes are positive integers")
        return value


class KvOffloadSection(Strict):
    """KV cache offloading to host memory: KV blocks evicted from the GPU stay in CPU memory and
    come back without recomputing the prefill."""

    backend: Literal["native", "lmcache"] = Field(
        default="native",
        description="native: vLLM's own CPU offloading (--kv-offloading-backend native, from 0.11.1). "
        "lmcache: the LMCache library inside vLLM (--kv-transfer-config with LMCacheConnectorV1, from "
        "0.8.5; configured by LMCACHE_* environment variables, no LMCache server); the server image must "
        "include the lmcache package.",
        json_schema_extra=meta("kv_offloading_backend"),
    )
    size: str = Field(
        description="Host memory for offloaded KV blocks, all tensor-parallel ranks together (64GiB, 100GB): "
        "rendered in GiB as --kv-offloading-size (native) or per rank as LMCACHE_MAX_LOCAL_CPU_SIZE "
        "(lmcache); Kubernetes' memory request grows by it.",
        examples=["64GiB"],
        json_schema_extra=meta("kv_offloading_size"),
    )

    @field_validator("size")
    @classmethod
    def _size_is_a_size(cls, value: str) -> str:
        if parse_size(value) <= 0:  # ValueError: the loader locates it (file:line: kv_offload.size)
            raise ValueError("the offload buffer needs some memory")
        return value
