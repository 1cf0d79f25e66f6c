"""The profile schema: pydantic models with ``extra="forbid"``.

Every field has a description: they become ``vllmtune schema`` (editor completion) and the
reference in ``vllmtune explain``. Checks that need several fields or the vLLM version live in
``vllmtune.profile.checks`` so that they can report every problem at once with its location.

A field whose value becomes one vLLM argument names that argument's argparse dest, and each
lever's field its lever (``vllmtune.levers``), in ``json_schema_extra`` (written by
``vllmtune.profile.fieldmeta.meta``): the JSON schema shows them and ``fieldmeta`` reads them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from vllmtune.modelfacts.sizes import parse_size
from vllmtune.profile.base import ENV_NAME_RE, NAME_RE, SIZE_RE, ArgValue, Duration, Strict
from vllmtune.profile.base import LABEL_VALUE_RE as LABEL_VALUE_RE
from vllmtune.profile.base import MANAGED_SECRET_VARS as MANAGED_SECRET_VARS
from vllmtune.profile.base import SECRET_NAME_RE as SECRET_NAME_RE
from vllmtune.profile.base import parse_duration as parse_duration
from vllmtune.profile.deploy import DeploySection
from vllmtune.profile.engine import ROUTER_POLICIES as ROUTER_POLICIES
from vllmtune.profile.engine import ROUTER_VERSION as ROUTER_VERSION
from vllmtune.profile.engine import (
    CompilationSection,
    KvOffloadSection,
    ParallelismSection,
    RoutingSection,
    SchedulingSection,
)
from vllmtune.profile.engine import RouterPolicy as RouterPolicy
from vllmtune.profile.fieldmeta import meta


class SecretKeyRef(Strict):
    """A key inside a Kubernetes Secret."""

    name: str = Field(description="Name of the Kubernetes Secret.", pattern=NAME_RE.pattern)
    key: str = Field(description="Key inside the Secret.", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class SecretRef(Strict):
    """A secret given by reference, never by value: the name of an environment variable on
    the machine that runs docker/compose, and/or a Kubernetes Secret key."""

    env: str | None = Field(
        default=None,
        description="Environment variable (on the machine running docker or compose) that holds the secret.",
        pattern=ENV_NAME_RE.pattern,
        examples=["HF_TOKEN"],
    )
    secret: SecretKeyRef | None = Field(
        default=None,
        description="Kubernetes Secret key that holds the secret (default: Secret "
        "'<name>-secrets', key named after the field).",
    )


class VllmSection(Strict):
    """Which vLLM to run. The version decides the image tag and which flags exist."""

    version: str = Field(
        description="vLLM release, e.g. '0.32.0' (quote it in YAML). Decides the image tag "
        "v<version> and which flags are rendered, in that version's spelling.",
        examples=["0.32.0"],
    )
    image: str = Field(
        default="vllm/vllm-openai",
        description="Container image repository (without tag).",
        pattern=r"^[a-z0-9]+([._/:-][a-z0-9]+)*$",
    )


class ModelSection(Strict):
    """The model to serve."""

    id: ArgValue = Field(
        min_length=1,
        description="Hugging Face model id or a local directory (local runtime).",
        examples=["meta-llama/Llama-3.1-8B-Instruct"],
        json_schema_extra=meta("model"),
    )
    revision: ArgValue | None = Field(
        default=None, description="Model revision (branch, tag, sha).", json_schema_extra=meta("revision")
    )
    served_name: str | None = Field(
        default=None,
        description="Name clients use in the OpenAI API 'model' field (default: the model id "
        "as vLLM does). Also a Kubernetes label value, so letters, digits, '-', '_', '.'.",
        json_schema_extra=meta("served_model_name"),
    )
    max_model_len: int | None = Field(
        default=None,
        gt=0,
        description="Context length (prompt + output tokens) per request.",
        json_schema_extra=meta("max_model_len"),
    )
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = Field(
        default=None, description="Weights/activations dtype (vLLM default: auto).", json_schema_extra=meta("dtype")
    )
    trust_remote_code: bool | None = Field(
        default=None, description="Allow custom model code from the hub.", json_schema_extra=meta("trust_remote_code")
    )
    tokenizer: ArgValue | None = Field(
        default=None, description="Tokenizer id or path if not the model's.", json_schema_extra=meta("tokenizer")
    )


class PromptCacheSection(Strict):
    """Lever 1: answer identical deterministic requests from a cache, without the model."""

    enabled: bool = Field(default=False, description="Deploy the prompt-result cache proxy.")
    backend: Literal["memory", "redis"] = Field(default="memory", description="Where cached responses live.")
    redis_url: SecretRef | None = Field(
        default=None,
        description="Redis URL by reference (it may contain a password). Without it, "
        "backend redis deploys its own Redis next to the proxy.",
    )
    ttl: Duration = Field(default="24h", description="How long an answer stays cached: 30s, 15m, 24h, 7d.")
    max_temperature: float = Field(
        default=0.1, ge=0, le=2, description="Only requests at or below this temperature are cached."
    )
    skip_pii: bool = Field(default=True, description="Never cache a request/response that looks like it carries PII.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port clients use: the proxy's (vLLM stays behind it).")
    image: str = Field(
        default="vllmtune/cache-proxy",
        description="Proxy image repository, tagged with the vllmtune version (vllmtune cache build-image "
        "builds it; up builds it when missing).",
        pattern=r"^[a-z0-9]+([._/:-][a-z0-9]+)*$",
    )


class BatchingSection(Strict):
    """Lever 3: continuous batching is always on; these are its knobs."""

    max_num_batched_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Token budget per scheduler step (too high OOMs, too low wastes throughput).",
        json_schema_extra=meta("max_num_batched_tokens"),
    )
    max_num_seqs: int | None = Field(
        default=None, gt=0, description="Maximum concurrent sequences.", json_schema_extra=meta("max_num_seqs")
    )
    chunked_prefill: bool | None = Field(
        default=None,
        description="Split long prefills across steps (vLLM decides when unset).",
        json_schema_extra=meta("enable_chunked_prefill"),
    )


QuantScheme = Literal["W4A16", "W4A16_ASYM", "W8A16", "W8A8", "FP8", "FP8_DYNAMIC"]


class QuantizeRecipe(Strict):
    """How ``vllmtune render -t quantize-job`` / ``-t quantize-script`` produce
    ``quantization.checkpoint`` from ``model.id`` with llm-compressor (the maintained successor
    of AutoAWQ). The result is a compressed-tensors checkpoint: vLLM reads its method from it."""

    scheme: QuantScheme = Field(
        default="W4A16",
        description="Quantization scheme: W4A16 (4-bit weights, 16-bit activations: the AWQ/GPTQ "
        "kind), W8A8 (int8), FP8 / FP8_DYNAMIC (Hopper/Ada and newer).",
    )
    algorithm: Literal["awq", "gptq", "rtn"] = Field(
        default="awq",
        description="awq or gptq (calibrated), rtn (round to nearest: no calibration, what FP8_DYNAMIC uses).",
    )
    calibration_dataset: ArgValue = Field(
        default="HuggingFaceH4/ultrachat_200k",
        description="Calibration text: a Hugging Face dataset id, or a local .jsonl/.json/.txt file.",
    )
    calibration_split: str = Field(default="train_sft", description="Dataset split (hub datasets).")
    calibration_samples: int = Field(default=512, ge=1, le=100_000, description="Calibration samples.")
    max_seq_length: int = Field(default=2048, ge=16, description="Tokens per calibration sample.")
    ignore: list[str] = Field(
        default_factory=lambda: ["lm_head"], description="Modules left unquantized (names or re: patterns)."
    )
    llmcompressor: str = Field(
        default="llmcompressor==0.14.0.1",
        description="pip requirement installed in the job (pin it: recipes change between releases).",
        pattern=r"^[A-Za-z0-9_.\-\[\],<>=!~ ]+$",
    )
    image: str | None = Field(
        default=None,
        description="Job image (default: the profile's vLLM image, which has torch and transformers).",
        pattern=r"^[a-z0-9]+([._/:-][a-z0-9]+)*$",
    )
    gpus: int = Field(default=1, ge=0, description="GPUs for the job (0: CPU, only for tiny models).")


class QuantizationSection(Strict):
    """Lever 4: serve a quantized checkpoint. Always re-measure quality."""

    method: str | None = Field(
        default=None,
        description="Quantization method the pinned vLLM accepts (awq, gptq, fp8, "
        "compressed-tensors, ...). Unset: vLLM reads it from the checkpoint's config.",
        examples=["awq"],
        json_schema_extra=meta("quantization"),
    )
    checkpoint: ArgValue | None = Field(
        default=None,
        description="Quantized checkpoint to load instead of model.id (hub id or path).",
        examples=["hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"],
    )
    kv_cache_dtype: str | None = Field(
        default=None,
        description="KV cache dtype (auto, fp8, fp8_e4m3, ...), as the version allows.",
        json_schema_extra=meta("kv_cache_dtype"),
    )
    recipe: QuantizeRecipe | None = Field(
        default=None,
        description="Produce the checkpoint yourself: `vllmtune render -t quantize-job` renders the "
        "llm-compressor Job that writes quantization.checkpoint.",
    )


class SpeculativeSection(Strict):
    """Lever 5: speculative decoding. Same output distribution, 1.3-2x faster decode."""

    method: str = Field(
        description="draft_model, ngram, eagle, eagle3, mtp, ... as the pinned version supports.",
        examples=["draft_model", "ngram"],
    )
    model: ArgValue | None = Field(
        default=None,
        description="Draft model / EAGLE head (same family and tokenizer as the target).",
        examples=["meta-llama/Llama-3.2-1B-Instruct"],
        json_schema_extra=meta("speculative_model"),
    )
    num_tokens: int = Field(
        default=5,
        gt=0,
        le=64,
        description="Tokens proposed per step.",
        json_schema_extra=meta("num_speculative_tokens"),
    )
    prompt_lookup_max: int | None = Field(
        default=None,
        ge=1,
        description="ngram: longest n-gram to match.",
        json_schema_extra=meta("ngram_prompt_lookup_max"),
    )
    prompt_lookup_min: int | None = Field(
        default=None,
        ge=1,
        description="ngram: shortest n-gram to match.",
        json_schema_extra=meta("ngram_prompt_lookup_min"),
    )
    draft_tensor_parallel_size: int | None = Field(
        default=None,
        ge=1,
        description="Tensor parallel size of the draft model (1 or the target's).",
        json_schema_extra=meta("speculative_draft_tensor_parallel_size"),
    )


class LoraAdapter(Strict):
    """One LoRA adapter served next to the base model."""

    name: str = Field(
        description="Name clients put in the OpenAI 'model' field.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=128,
        examples=["sql-lora"],
    )
    source: ArgValue = Field(
        description="Hugging Face id or local directory of the adapter.", examples=["yard1/llama-2-7b-sql-lora-test"]
    )


class LoraSection(Strict):
    """Multi-LoRA: several fine-tunes share one base model's GPUs."""

    adapters: list[LoraAdapter] = Field(
        default_factory=list,
        description="Adapters to serve (name and source). May be empty with runtime_updates: adapters are "
        "then loaded while the server runs.",
        json_schema_extra=meta("lora_modules"),
    )
    runtime_updates: bool = Field(
        default=False,
        description="Let clients load and unload adapters while the server runs (/v1/load_lora_adapter, "
        "/v1/unload_lora_adapter): sets VLLM_ALLOW_RUNTIME_LORA_UPDATING=True with --enable-lora. Anyone who "
        "reaches the API can then change what the server serves: set server.api_key.",
    )
    max_loras: int | None = Field(
        default=None,
        ge=1,
        description="Adapters active in one batch (vLLM default 1).",
        json_schema_extra=meta("max_loras"),
    )
    max_lora_rank: int | None = Field(
        default=None,
        ge=1,
        description="Largest adapter rank (vLLM default 16): set it to your adapters' r.",
        json_schema_extra=meta("max_lora_rank"),
    )
    max_cpu_loras: int | None = Field(
        default=None, ge=1, description="Adapters kept in CPU memory.", json_schema_extra=meta("max_cpu_loras")
    )


class ResourcesSection(Strict):
    """Accelerators and memory."""

    gpus: int = Field(default=1, ge=0, description="GPUs per server (0 = CPU build of vLLM).")
    gpu_type: str | None = Field(
        default=None,
        description="The GPU model this profile is for (H100-80GB, A100-80GB, L4, ...): `vllmtune validate` then "
        "fails when the model does not fit, and `vllmtune fit` uses it by default.",
        examples=["H100-80GB"],
    )
    gpu_memory: str | None = Field(
        default=None,
        description="Total memory of one GPU as torch reports it (23.58GiB, 80GB, 24576MiB), for GPUs outside "
        "`vllmtune fit`'s catalog or to override its figure: `fit` and `validate` then plan for it.",
        examples=["23.58GiB"],
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        description="Fraction of GPU memory vLLM may use, in (0, 1].",
        json_schema_extra=meta("gpu_memory_utilization"),
    )
    tensor_parallel_size: int = Field(
        default=1, ge=1, description="GPUs one model is split across.", json_schema_extra=meta("tensor_parallel_size")
    )
    pipeline_parallel_size: int = Field(
        default=1, ge=1, description="Pipeline stages.", json_schema_extra=meta("pipeline_parallel_size")
    )
    nodes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Machines one server spans (Kubernetes only: a LeaderWorkerSet with Ray). "
        "resources.gpus is then per node; as vLLM recommends, tensor_parallel_size = GPUs per node "
        "and pipeline_parallel_size = nodes.",
    )
    shm_size: str | None = Field(
        default=None,
        description="Size of /dev/shm (e.g. 16g). Default: 16g when tensor/pipeline parallel, "
        "else 2g (docker uses --ipc=host when parallel and no size is set).",
        pattern=SIZE_RE.pattern,
    )

    @field_validator("gpu_memory")
    @classmethod
    def _gpu_memory_is_a_size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)  # ValueError: the loader locates it (file:line: resources.gpu_memory)
        return value


class ServerSection(Strict):
    """The OpenAI-compatible server."""

    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Port vLLM listens on (host and container).",
        json_schema_extra=meta("port"),
    )
    host: str = Field(
        default="0.0.0.0", description="Address vLLM binds inside its container.", json_schema_extra=meta("host")
    )
    api_key: SecretRef | None = Field(
        default=None, description="API key clients must send, by reference (never inline)."
    )
    hf_token: SecretRef | None = Field(default=None, description="Hugging Face token for gated models, by reference.")
    env: dict[str, ArgValue] = Field(
        default_factory=dict,
        description="Extra environment variables (not secrets: use references for those).",
    )
    secret_env: dict[str, SecretRef] = Field(
        default_factory=dict,
        description="Other secret environment variables of the server, by reference: NAME: {env: HOST_VAR} "
        "and/or {secret: {name: S, key: K}} (default: Secret '<name>-secrets', key NAME in lowercase "
        "with '-' for '_').",
        examples=[{"WANDB_API_KEY": {"env": "WANDB_API_KEY"}}],
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="Escape hatch: more vLLM flags, checked against the pinned version.",
        examples=[["--enable-auto-tool-choice", "--tool-call-parser", "llama3_json"]],
    )

    @field_validator("env", "secret_env")
    @classmethod
    def _env_names(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            if not ENV_NAME_RE.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value


class Profile(Strict):
    """A vllmtune profile: one model served by one pinned vLLM with the five levers."""

    name: str = Field(
        description="Profile name: container, service and Kubernetes object names (lowercase letters, digits, '-').",
        pattern=NAME_RE.pattern,
        examples=["llama-8b"],
    )
    description: str | None = Field(default=None, description="Free text.")
    extends: str | None = Field(
        default=None,
        description="Parent profile: a path relative to this file or a built-in preset name. "
        "Mappings merge deeply, lists are replaced.",
    )
    vllm: VllmSection = Field(description="Which vLLM: the version decides the image tag and the flags.")
    model: ModelSection = Field(description="The model: hub id or local directory, context length, dtype.")
    prompt_cache: PromptCacheSection = Field(
        default_factory=PromptCacheSection,
        description="Lever 1: the prompt-result cache proxy in front of vLLM.",
        json_schema_extra=meta(lever="prompt-cache"),
    )
    prefix_caching: bool | None = Field(
        default=None,
        description="Lever 2: KV prefix caching. Rendered only when set (vLLM's own default "
        "otherwise: on since 0.8.0).",
        json_schema_extra=meta("enable_prefix_caching", lever="prefix-caching"),
    )
    routing: RoutingSection | None = Field(
        default=None,
        description="A router in front of the replicas (off when absent): needs 2+ replicas or autoscaling.",
    )
    batching: BatchingSection = Field(
        default_factory=BatchingSection,
        description="Lever 3: continuous batching knobs (token budget, sequences).",
        json_schema_extra=meta(lever="batching"),
    )
    quantization: QuantizationSection = Field(
        default_factory=QuantizationSection,
        description="Lever 4: quantized checkpoint, method, KV cache dtype.",
        json_schema_extra=meta(lever="quantization"),
    )
    speculative: SpeculativeSection | None = Field(
        default=None, description="Lever 5 (off when absent).", json_schema_extra=meta(lever="speculative")
    )
    lora: LoraSection | None = Field(default=None, description="Multi-LoRA adapters served with the base model.")
    sleep_mode: bool | None = Field(
        default=None,
        description="Let the server release its GPU memory on /sleep and take it back on /wake_up (the "
        "endpoints need VLLM_SERVER_DEV_MODE=1 in server.env): one GPU shared by several models in turn.",
        json_schema_extra=meta("enable_sleep_mode"),
    )
    parallelism: ParallelismSection = Field(
        default_factory=ParallelismSection,
        description="Data and expert parallelism: a server uses data x tensor x pipeline parallel GPUs.",
    )
    scheduling: SchedulingSection = Field(
        default_factory=SchedulingSection,
        description="Scheduler: asynchronous scheduling, long prefills, priority order.",
    )
    compilation: CompilationSection = Field(
        default_factory=CompilationSection,
        description="CUDA graphs and torch.compile: eager mode, capture sizes, performance mode.",
    )
    kv_offload: KvOffloadSection | None = Field(
        default=None,
        description="KV cache offloading to CPU memory (off when absent): pays for long shared contexts "
        "whose KV does not fit in GPU memory.",
    )
    resources: ResourcesSection = Field(
        default_factory=ResourcesSection, description="GPUs, memory share, tensor/pipeline parallelism, /dev/shm."
    )
    server: ServerSection = Field(
        default_factory=ServerSection, description="Port, host, secrets by reference, env, extra vLLM flags."
    )
    deploy: DeploySection = Field(
        default_factory=DeploySection, description="Per-target settings: docker, compose, kubernetes."
    )
