"""The profile schema: pydantic models with ``extra="forbid"``.

Every field has a description: they become ``vllmtune schema`` (editor completion) and the
reference in ``vllmtune explain``. Checks that need several fields or the vLLM version live in
``vllmtune.profile.checks`` so that they can report every problem at once with its location.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from vllmtune.modelfacts.sizes import parse_size

# Kubernetes object names (DNS-1123 label) -- we use the profile name for containers,
# compose services and every Kubernetes object, so it has to satisfy the strictest of them.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?([kKmMgGtT]i?)?[bB]?$")
DURATION_RE = re.compile(r"^([0-9]+)(s|m|h|d)$")
# Names whose value is probably a secret when it looks random (KEY alone: MY_KEY, KEY_ID, ...).
SECRET_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
# The variables vllmtune itself fills from server.hf_token / server.api_key.
MANAGED_SECRET_VARS = {"HF_TOKEN": "hf_token", "HUGGING_FACE_HUB_TOKEN": "hf_token", "VLLM_API_KEY": "api_key"}


def parse_duration(text: str) -> int:
    """'30s' / '15m' / '24h' / '7d' (a validated Duration) -> seconds."""
    n, unit = int(text[:-1]), text[-1]
    return n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _not_an_option(value: str) -> str:
    # vLLM's argparse would read a value starting with "-" as another option.
    if value.startswith("-"):
        raise ValueError(f"{value!r} starts with '-', which vLLM would read as a flag")
    if "\x00" in value:
        raise ValueError("contains a NUL character, which no command line can carry")
    return value


ArgValue = Annotated[str, AfterValidator(_not_an_option)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are frozen after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


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
    )
    revision: ArgValue | None = Field(default=None, description="Model revision (branch, tag, sha).")
    served_name: str | None = Field(
        default=None,
        description="Name clients use in the OpenAI API 'model' field (default: the model id "
        "as vLLM does). Also a Kubernetes label value, so letters, digits, '-', '_', '.'.",
    )
    max_model_len: int | None = Field(
        default=None, gt=0, description="Context length (prompt + output tokens) per request."
    )
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = Field(
        default=None, description="Weights/activations dtype (vLLM default: auto)."
    )
    trust_remote_code: bool | None = Field(default=None, description="Allow custom model code from the hub.")
    tokenizer: ArgValue | None = Field(default=None, description="Tokenizer id or path if not the model's.")


Duration = Annotated[str, Field(pattern=DURATION_RE.pattern)]


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
        default=None, gt=0, description="Token budget per scheduler step (too high OOMs, too low wastes throughput)."
    )
    max_num_seqs: int | None = Field(default=None, gt=0, description="Maximum concurrent sequences.")
    chunked_prefill: bool | None = Field(
        default=None, description="Split long prefills across steps (vLLM decides when unset)."
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
    )
    checkpoint: ArgValue | None = Field(
        default=None,
        description="Quantized checkpoint to load instead of model.id (hub id or path).",
        examples=["hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"],
    )
    kv_cache_dtype: str | None = Field(
        default=None, description="KV cache dtype (auto, fp8, fp8_e4m3, ...), as the version allows."
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
    )
    num_tokens: int = Field(default=5, gt=0, le=64, description="Tokens proposed per step.")
    prompt_lookup_max: int | None = Field(default=None, ge=1, description="ngram: longest n-gram to match.")
    prompt_lookup_min: int | None = Field(default=None, ge=1, description="ngram: shortest n-gram to match.")
    draft_tensor_parallel_size: int | None = Field(
        default=None, ge=1, description="Tensor parallel size of the draft model (1 or the target's)."
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

    adapters: list[LoraAdapter] = Field(min_length=1, description="Adapters to serve (name and source).")
    max_loras: int | None = Field(default=None, ge=1, description="Adapters active in one batch (vLLM default 1).")
    max_lora_rank: int | None = Field(
        default=None, ge=1, description="Largest adapter rank (vLLM default 16): set it to your adapters' r."
    )
    max_cpu_loras: int | None = Field(default=None, ge=1, description="Adapters kept in CPU memory.")


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
        default=None, description="Fraction of GPU memory vLLM may use, in (0, 1]."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs one model is split across.")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="Pipeline stages.")
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

    port: int = Field(default=8000, ge=1, le=65535, description="Port vLLM listens on (host and container).")
    host: str = Field(default="0.0.0.0", description="Address vLLM binds inside its container.")
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


Restart = Literal["no", "always", "unless-stopped", "on-failure"]


class DockerDeploy(Strict):
    """docker run settings."""

    container_name: str | None = Field(
        default=None, description="Container name (default: the profile name).", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
    )
    restart: Restart = Field(default="unless-stopped", description="Restart policy.")
    hf_cache: ArgValue = Field(
        default="~/.cache/huggingface", description="Host directory mounted as the Hugging Face cache."
    )
    bind_address: str = Field(
        default="127.0.0.1",
        description="Host address the port is published on (0.0.0.0 exposes it).",
        pattern=r"^[0-9a-fA-F:.]+$",
    )


class ComposeDeploy(Strict):
    """docker compose settings."""

    restart: Restart = Field(default="unless-stopped", description="Restart policy.")
    hf_cache: ArgValue = Field(default="hf-cache", description="Named volume or host path for the Hugging Face cache.")
    start_period: Duration = Field(
        default="30m", description="Healthcheck grace period: long enough to download the model."
    )


class Toleration(Strict):
    """A Kubernetes toleration."""

    key: str | None = Field(default=None, description="Taint key to tolerate.", examples=["nvidia.com/gpu"])
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Exists (any value) or Equal.")
    value: str | None = Field(default=None, description="Taint value (with operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate (all when unset)."
    )


class ServerResources(Strict):
    """CPU and host memory for the vLLM container (Kubernetes requests/limits)."""

    cpu: str | None = Field(
        default=None,
        description="CPU request (no limit: CFS throttling stalls the engine loop). Default: 2 + 2 per GPU.",
        pattern=r"^[0-9]+(\.[0-9]+)?m?$",
    )
    memory: str | None = Field(
        default=None,
        description="Host memory request and limit. Default: 1.2 x the weights per pod + /dev/shm + 8Gi "
        "(32Gi + /dev/shm when vllmtune does not know the model's size).",
        pattern=SIZE_RE.pattern,
    )


class NetworkPolicySettings(Strict):
    """A NetworkPolicy for the vLLM pods."""

    enabled: bool = Field(
        default=False,
        description="Admit traffic to vLLM only on its port, and only from the prompt-cache proxy (when on) "
        "and the pods in allow_from.",
    )
    allow_from: list[dict[str, str]] = Field(
        default_factory=list,
        description="Pod label selectors also admitted (e.g. your gateway or Prometheus: {app: prometheus}).",
    )


class PvcSettings(Strict):
    """The model cache volume."""

    size: str = Field(default="100Gi", description="Requested size.", pattern=SIZE_RE.pattern)
    storage_class: str | None = Field(default=None, description="StorageClass (cluster default when unset).")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"] = Field(
        default="ReadWriteOnce", description="ReadWriteMany lets replicas share one download."
    )


class ProbeSettings(Strict):
    """Health probes on /health."""

    startup_timeout: Duration | None = Field(
        default=None,
        description="How long start-up (download + load) may take. Default: derived from the model's "
        "size (download at 100 MB/s unless an init container or Job downloads it, load at 500 MB/s, "
        "10 min for compilation and warm-up, x1.5), 30m for a model vllmtune does not know.",
    )
    period_seconds: int = Field(default=10, ge=1, description="Probe period.")


class AutoscalingSettings(Strict):
    """Replicas that follow the load: a KEDA ScaledObject or a HorizontalPodAutoscaler."""

    engine: Literal["keda", "hpa"] = Field(
        default="keda",
        description="keda (ScaledObject with a Prometheus trigger; can scale to zero) or hpa "
        "(autoscaling/v2 on a Pods metric served by prometheus-adapter).",
    )
    min_replicas: int = Field(default=1, ge=0, description="Fewest replicas (0: scale to zero, KEDA only).")
    max_replicas: int = Field(ge=1, description="Most replicas.")
    metric: Literal["queue", "ttft"] = Field(
        default="queue",
        description="queue: requests waiting per replica (vllm:num_requests_waiting); "
        "ttft: p95 time to first token in seconds (KEDA only).",
    )
    target: float | None = Field(
        default=None, gt=0, description="Value per replica to hold: default 5 waiting requests, or 1.0 s TTFT."
    )
    prometheus_url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Prometheus that KEDA queries.",
        pattern=r"^https?://[^\s]+$",
    )
    cooldown: Duration = Field(default="5m", description="Quiet time before scaling in.")


class MonitoringSettings(Strict):
    """Prometheus scraping of vLLM's (and the cache proxy's) /metrics, and a Grafana dashboard."""

    scrape: Literal["annotations", "podmonitor", "servicemonitor", "none"] = Field(
        default="annotations",
        description="annotations (prometheus.io/* on the pods), podmonitor or servicemonitor "
        "(Prometheus operator, monitoring.coreos.com/v1), or none.",
    )
    interval: Duration = Field(default="15s", description="Scrape interval.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels your Prometheus selects monitors by (e.g. release: kube-prometheus-stack).",
    )
    dashboard: bool = Field(
        default=False,
        description="Also render the Grafana dashboard as a ConfigMap labelled grafana_dashboard=1 "
        "(`-t grafana` prints the JSON alone).",
    )


class KubernetesDeploy(Strict):
    """Kubernetes settings."""

    namespace: str | None = Field(
        default=None, description="Namespace (kubectl's current one when unset).", pattern=NAME_RE.pattern
    )
    replicas: int = Field(default=1, ge=0, description="Deployment replicas.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on every object.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        description="Pod tolerations (default tolerates the nvidia.com/gpu taint).",
    )
    pvc: PvcSettings = Field(default_factory=PvcSettings, description="Model cache PersistentVolumeClaim.")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Service type."
    )
    probes: ProbeSettings = Field(default_factory=ProbeSettings, description="Probe timing.")
    resources: ServerResources = Field(
        default_factory=ServerResources, description="CPU and host memory of the vLLM container."
    )
    network_policy: NetworkPolicySettings = Field(
        default_factory=NetworkPolicySettings, description="Restrict who reaches the vLLM pods."
    )
    model_download: Literal["server", "init-container", "job"] = Field(
        default="server",
        description="Who downloads the weights: server (vLLM at start-up), init-container (each pod, "
        "before vLLM starts, outside the startup probe), job (one Job fills a shared cache; "
        "pods wait for it and run offline: use pvc.access_mode ReadWriteMany).",
    )
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="Scale replicas on queue length or TTFT (KEDA or HPA)."
    )
    monitoring: MonitoringSettings = Field(
        default_factory=MonitoringSettings, description="Prometheus scraping and the Grafana dashboard."
    )


class DeploySection(Strict):
    """Target-specific settings."""

    docker: DockerDeploy = Field(default_factory=DockerDeploy, description="docker run script and `vllmtune up`.")
    compose: ComposeDeploy = Field(default_factory=ComposeDeploy, description="docker compose file.")
    kubernetes: KubernetesDeploy = Field(default_factory=KubernetesDeploy, description="Kubernetes manifests.")


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
        default_factory=PromptCacheSection, description="Lever 1: the prompt-result cache proxy in front of vLLM."
    )
    prefix_caching: bool | None = Field(
        default=None,
        description="Lever 2: KV prefix caching. Rendered only when set (vLLM's own default "
        "otherwise: on since 0.8.0).",
    )
    batching: BatchingSection = Field(
        default_factory=BatchingSection, description="Lever 3: continuous batching knobs (token budget, sequences)."
    )
    quantization: QuantizationSection = Field(
        default_factory=QuantizationSection, description="Lever 4: quantized checkpoint, method, KV cache dtype."
    )
    speculative: SpeculativeSection | None = Field(default=None, description="Lever 5 (off when absent).")
    lora: LoraSection | None = Field(default=None, description="Multi-LoRA adapters served with the base model.")
    resources: ResourcesSection = Field(
        default_factory=ResourcesSection, description="GPUs, memory share, tensor/pipeline parallelism, /dev/shm."
    )
    server: ServerSection = Field(
        default_factory=ServerSection, description="Port, host, secrets by reference, env, extra vLLM flags."
    )
    deploy: DeploySection = Field(
        default_factory=DeploySection, description="Per-target settings: docker, compose, kubernetes."
    )
