"""The plan's data: frozen dataclasses every renderer and runtime reads (built by
:mod:`vllmtune.plan.planner`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from vllmtune.flags import (
    version_key,
)
from vllmtune.plan.settings import (
    VllmSettings,
)

CONTAINER_HF_CACHE = "/root/.cache/huggingface"
CONTAINER_MODELS = "/models"
CONTAINER_ADAPTERS = "/adapters"
RAY_PORT = 6379
RAY_WAIT_SECONDS = 600
# Start-up budget when vllmtune knows the model's size (documented on probes.startup_timeout).
DOWNLOAD_BYTES_PER_S = 100e6
LOAD_BYTES_PER_S = 500e6
WARMUP_SECONDS = 600
BUDGET_MARGIN = 1.5
DEFAULT_STARTUP_SECONDS = 1800
# The image's ENTRYPOINT changed in v0.11.1 (see shared/vllm-flags); args follow it.
SERVE_ENTRYPOINT_SINCE = (0, 11, 1)
LABEL_PREFIX = "vllmtune.io"


def entrypoint_for(version: str) -> tuple[str, ...]:
    """The vllm/vllm-openai image ENTRYPOINT of a version."""
    if version_key(version) >= SERVE_ENTRYPOINT_SINCE:
        return ("vllm", "serve")
    return ("python3", "-m", "vllm.entrypoints.openai.api_server")


@dataclass(frozen=True)
class SecretEnv:
    """A secret environment variable of the server, resolved from a reference."""

    name: str  # variable inside the container
    source_env: str  # variable on the machine running docker/compose
    k8s_secret: str
    k8s_key: str
    field: str  # profile key path, for messages


@dataclass(frozen=True)
class Mount:
    """A host path or named volume mounted into the server container."""

    source: str  # host path ("~" allowed, expanded by the target) or a volume name
    target: str
    read_only: bool = False
    kind: str = "bind"  # bind | volume | cache (the HF cache: target-specific source)


@dataclass(frozen=True)
class Shm:
    """Shared memory: tensor/pipeline parallel workers exchange tensors through /dev/shm."""

    ipc_host: bool  # docker/compose: --ipc=host (used when parallel and no size given)
    size: str  # normalised like "16g"; Kubernetes uses the same size for its emptyDir


@dataclass(frozen=True)
class Hardening:
    """A container's Kubernetes securityContext and resources, resolved here so that no
    renderer decides them. Every container drops all capabilities, may not escalate and runs
    under the runtime's default seccomp profile; the rest depends on what its image allows."""

    run_as_user: int | None  # None: the image's own user (vLLM's image runs as root)
    read_only_root: bool
    writable_paths: tuple[str, ...]  # emptyDir mounts under a read-only root
    cpu_request: str
    memory_request: str
    memory_limit: str
    writable_size: str = "64Mi"  # sizeLimit of each writable emptyDir


@dataclass(frozen=True)
class Health:
    """How to tell the server is up."""

    path: str
    startup_seconds: int
    period_seconds: int
    readiness_failures: int = 3
    liveness_failures: int = 6
    liveness_timeout_seconds: int = 5
    check_timeout_seconds: int = 5  # compose's healthcheck timeout
    check_retries: int = 3  # compose's healthcheck retries

    @property
    def startup_failures(self) -> int:
        """The startup probe's failureThreshold: the whole start-up budget in periods."""
        return max(1, math.ceil(self.startup_seconds / self.period_seconds))


@dataclass(frozen=True)
class SidecarHealth:
    """How a sidecar is checked: HTTP ``path`` on its port, or (compose) a shell ``command``
    and (Kubernetes) a TCP connect when it has no HTTP endpoint."""

    path: str | None
    command: str | None  # compose CMD-SHELL text (unescaped), when there is no path
    interval_seconds: int
    timeout_seconds: int
    retries: int
    probe_period_seconds: int = 10  # Kubernetes readiness / liveness period
    liveness_failures: int = 6


@dataclass(frozen=True)
class Sidecar:
    """A service deployed next to vLLM (the prompt-cache proxy, its Redis). Renderers treat
    every sidecar alike; ``args`` may name other services as ``{vllm}`` / ``{redis}``, which
    each target resolves to its own host names."""

    role: str  # cache | redis | router: names the container, service and component
    image: str
    args: tuple[str, ...]
    port: int
    publish: bool  # reachable from outside (the proxy), or internal (redis)
    health: SidecarHealth
    port_name: str  # the Kubernetes port name ("http" is what the monitors scrape)
    replicas: int  # Kubernetes replicas
    before_server: bool  # started before vLLM (Redis), or once vLLM answers (the proxy)
    waits_for: tuple[str, ...] = ()  # compose depends_on (healthy): "vllm" or sidecar roles
    fronts_server: bool = False  # the server's NetworkPolicy admits it (clients come through it)
    built_here: bool = False  # its image is on no registry: built from the installed package
    note: str = ""  # a comment above it in the docker script
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[SecretEnv, ...] = ()
    command: tuple[str, ...] = ()  # entrypoint override (empty: the image's own)
    hardening: Hardening = Hardening(None, False, (), "100m", "128Mi", "128Mi")
    admits: tuple[str, ...] = ()  # NetworkPolicy: the only roles that may reach it (empty: no policy)
    # Kubernetes' args when they differ from the other targets' (the router finds the server
    # pods by label there, with a ServiceAccount that may list pods: ``k8s_pod_reader``)
    k8s_args: tuple[str, ...] | None = None
    k8s_command: tuple[str, ...] | None = None  # Kubernetes' entrypoint when it differs
    k8s_pod_reader: bool = False
    local_args: tuple[str, ...] | None = None  # ``up --runtime local``'s args when they differ
    local_install: str = ""  # how to install ``command`` for ``up --runtime local``
    build_hint: str = ""  # how to build an image that is on no registry (empty: the proxy's own command)

    @property
    def health_path(self) -> str | None:
        return self.health.path

    def resolved_args(
        self, hosts: dict[str, str], vllm_port: int, kubernetes: bool = False, local: bool = False
    ) -> list[str]:
        """``args`` (Kubernetes: ``k8s_args``, local: ``local_args``, when set) with ``{vllm}`` /
        ``{replicaN}`` / ``{redis}`` / ``{router}`` replaced by this target's host names and
        ``{vllm_port}`` by the port vLLM listens on (``up --port`` moves it: never baked in)."""
        hosts = {**hosts, "vllm_port": str(vllm_port)}
        out = []
        args = self.args
        if kubernetes and self.k8s_args is not None:
            args = self.k8s_args
        elif local and self.local_args is not None:
            args = self.local_args
        for a in args:
            for key, host in hosts.items():
                a = a.replace("{" + key + "}", host)
            out.append(a)
        return out


SERVER_SERVICE = "vllm"  # the first server's compose service name (and a sidecar's {vllm})


@dataclass(frozen=True)
class DockerReplica:
    """One vLLM server of a plan on one Docker engine (the script, compose, ``up --runtime
    docker``): one, or every replica when a router is in front of them. The first keeps the
    plan's names; replica i (from 1) is NAME-(i+1), as the local runtime names its logs."""

    container: str  # docker container name
    service: str  # compose service name
    host_port: int  # published on docker_bind; vLLM listens on the plan's port inside
    gpu_device_ids: tuple[str, ...]  # its own GPUs ("0", "1"); () = the plan's GPU count, any devices
    labels: tuple[tuple[str, str], ...]  # the plan's labels, plus vllmtune.io/replica when 2+


@dataclass(frozen=True)
class InferencePool:
    """The Gateway API Inference Extension's pool of the server pods (``routing.gateway``)."""

    name: str
    target_port: int
    epp_service: str  # the endpoint picker's Service and Deployment (and its ServiceAccount, ConfigMap)
    epp_port: int  # its ext-proc (gRPC) port, which the gateway calls
    failure_mode: str  # FailOpen | FailClose: what the gateway does when the picker does not answer
    epp_image: str
    epp_health_port: int  # gRPC health (service "inference-extension")
    epp_metrics_port: int
    epp_config_file: str  # its EndpointPickerConfig, a file of its ConfigMap mounted at /config
    epp_scorers: tuple[tuple[str, int], ...]  # the config's scorer plugins and their weights
    epp_hardening: Hardening
    epp_replicas: int
    epp_probe_period_seconds: int  # readiness and liveness (gRPC health)
    epp_liveness_failures: int


@dataclass(frozen=True)
class PromptCachePlan:
    """Reserved slot for the prompt-result cache proxy (lever 1)."""

    backend: str
    ttl_seconds: int
    max_temperature: float
    skip_pii: bool
    redis_url: SecretEnv | None


@dataclass(frozen=True)
class MultiNode:
    """One server across several machines: a LeaderWorkerSet whose pods form a Ray cluster.
    Tensor parallel inside a node, pipeline parallel across nodes."""

    nodes: int
    gpus_per_node: int
    ray_port: int
    ray_wait_seconds: int  # how long the leader waits for every node to join (then fails)
    # NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME (the pod's eth0 on common CNIs) unless server.env sets them
    socket_env: tuple[tuple[str, str], ...]
    host_ip_from_pod: bool  # VLLM_HOST_IP from the pod's IP (unless server.env sets it)
    where: str  # "profile.yaml:12" of resources.nodes, for messages of targets that cannot


@dataclass(frozen=True)
class Autoscaling:
    """Resolved autoscaling (KEDA ScaledObject or HPA)."""

    engine: str  # keda | hpa
    min_replicas: int
    max_replicas: int
    metric: str  # queue | ttft
    target: float
    prometheus_url: str
    cooldown_seconds: int
    polling_seconds: int = 15  # KEDA's pollingInterval


@dataclass(frozen=True)
class Monitoring:
    """Resolved Prometheus scraping and dashboard."""

    scrape: str  # annotations | podmonitor | servicemonitor | none
    interval: str
    labels: tuple[tuple[str, str], ...]
    dashboard: bool


@dataclass(frozen=True)
class QuantizeJob:
    """What ``-t quantize-job`` / ``-t quantize-script`` run: llm-compressor turns
    ``source`` into a compressed-tensors checkpoint at ``output``."""

    source: str  # hub id, or the container path of a local directory
    source_host_path: str | None
    revision: str | None
    output: str  # hub repo to push to, or the container path to write
    output_host_path: str | None  # local output directory (bind-mounted read-write)
    push_to_hub: bool
    scheme: str
    algorithm: str
    dataset: str  # hub dataset id, or the container path of a local file
    dataset_host_path: str | None
    split: str
    samples: int
    max_seq_length: int
    ignore: tuple[str, ...]
    requirement: str  # pip requirement of llm-compressor
    image: str
    gpus: int
    source_bytes: int | None  # 16-bit weights of the source model, when vllmtune knows it
    # One retry: a failure is usually deterministic (memory, a bad input), and each attempt
    # repeats the pip install and the calibration.
    backoff_limit: int = 1


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything needed to run one vLLM server, for every target, fully resolved."""

    name: str
    profile_hash: str
    vllm_version: str
    image: str
    entrypoint: tuple[str, ...]  # the image's ENTRYPOINT (informational; never repeated)
    model: str  # what vLLM loads: checkpoint or id, or the container path of a local dir
    model_host_path: str | None  # a local model directory (bind-mounted in containers)
    served_name: str
    args: tuple[str, ...]  # vLLM args after the entrypoint, starting with --model
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    port: int
    gpus: int
    shm: Shm
    mounts: tuple[Mount, ...]
    health: Health
    labels: tuple[tuple[str, str], ...]
    docker_container: str
    docker_restart: str
    docker_bind: str
    # the docker script, compose and ``up --runtime docker``: the servers as containers (the
    # local runtime's replicas: more than one only with a router in front)
    docker_replicas: tuple[DockerReplica, ...]
    compose_restart: str
    compose_hf_cache: str  # named volume, or a host path
    compose_start_period_seconds: int
    k8s_namespace: str | None  # None: kubectl's current namespace
    k8s_replicas: int
    k8s_extra_labels: tuple[tuple[str, str], ...]
    k8s_node_selector: tuple[tuple[str, str], ...]
    k8s_tolerations: tuple[tuple[tuple[str, str], ...], ...]
    k8s_pvc_size: str
    k8s_pvc_storage_class: str | None  # None: the cluster's default StorageClass
    k8s_pvc_access_mode: str
    k8s_service_type: str
    prompt_cache: PromptCachePlan | None
    sidecars: tuple[Sidecar, ...]
    levers: tuple[tuple[str, str, tuple[str, ...]], ...]  # (lever, state, flags) for explain
    vllm: VllmSettings  # the settings ``args`` renders, typed: read these, never parse ``args``
    served_names: tuple[str, ...] = ()  # base model name, then LoRA adapters
    multi_node: MultiNode | None = None
    k8s_model_download: str = "server"  # server | init-container | job
    downloads: tuple[str, ...] = ()  # hub repos the server loads ("id" or "id@revision")
    autoscaling: Autoscaling | None = None
    monitoring: Monitoring = Monitoring("none", "15s", (), False)
    quantize: QuantizeJob | None = None
    startup_budget: str = ""  # how health.startup_seconds was chosen, for comments and explain
    source: str = ""  # the profile file (or preset:NAME), for messages of renderers
    warnings: tuple[str, ...] = field(default=())
    k8s_server_hardening: Hardening = Hardening(None, False, (), "2", "16Gi", "16Gi")
    # download / wait-for-model containers (vLLM's image, a Python download: little memory)
    k8s_download_hardening: Hardening = Hardening(None, False, (), "500m", "2Gi", "2Gi")
    # The download Job retries a failed download (network, the Hub): it resumes from the cache.
    k8s_download_backoff_limit: int = 4
    k8s_hf_offline: bool = False  # HF_HUB_OFFLINE=1 on the server: the download Job fetched everything
    compose_hf_cache_volume: bool = False  # compose_hf_cache names a volume (else a host path)
    k8s_network_policy: bool = False  # a NetworkPolicy for the vLLM pods
    k8s_network_policy_from: tuple[tuple[tuple[str, str], ...], ...] = ()  # extra admitted pod labels
    gpu_memory_bytes: int | None = None  # resources.gpu_memory: one GPU's total, for `fit` / `validate`
    # ``up --runtime local``: servers on port, port+1, ... (2+ only with a router in front)
    local_replicas: int = 1
    inference_pool: InferencePool | None = None

    def sidecar_labels(self, role: str) -> dict[str, str]:
        """The plan's labels with the sidecar's own component."""
        return {**dict(self.labels), "app.kubernetes.io/component": role}

    def sidecar_name(self, role: str) -> str:
        """Container / service / object name of a sidecar."""
        return f"{self.name}-{role}"

    def with_endpoint(self, host: str | None = None, port: int | None = None) -> DeploymentPlan:
        """The same plan listening elsewhere (``vllmtune up --host/--port``)."""
        args = list(self.args)
        for dest, value in (("host", host), ("port", None if port is None else str(port))):
            flag = self.vllm.flag(dest)
            if value is not None and flag in args:
                args[args.index(flag) + 1] = value
        vllm = replace(
            self.vllm,
            host=host if host is not None else self.vllm.host,
            port=port if port is not None else self.vllm.port,
        )
        # the servers' published ports follow (port, port+1, ...); sidecars read it as {vllm_port}
        replicas = tuple(replace(r, host_port=vllm.port + i) for i, r in enumerate(self.docker_replicas))
        return replace(self, args=tuple(args), port=vllm.port, vllm=vllm, docker_replicas=replicas)

    def single_node_only(
        self, what: str, instead: str = "render it for Kubernetes (-t kubernetes: a LeaderWorkerSet)"
    ) -> str | None:
        """The message for a target that cannot span nodes (``instead``: the way out), or None
        for a one-node plan."""
        mn = self.multi_node
        if mn is None:
            return None
        return (
            f"{mn.where}: resources.nodes: {what} runs on one machine, but this profile spans {mn.nodes} "
            f"nodes; {instead}, or set nodes: 1"
        )

    @property
    def hf_cache_source(self) -> str:
        """The Hugging Face cache on the docker host (a path, ``~`` allowed)."""
        return next(m.source for m in self.mounts if m.kind == "cache")

    @property
    def host(self) -> str:
        """The address vLLM binds (inside its container, or on this machine for local)."""
        return self.vllm.host

    def serve_argv(self, model_path: str | None = None) -> list[str]:
        """``vllm serve`` argv for the local runtime (model positional, as every version takes)."""
        model = model_path or self.model_host_path or self.model
        # No container: local adapter directories are read where they are, not at the mount.
        hosts = {
            m.target: m.source for m in self.mounts if m.kind == "bind" and m.target.startswith(CONTAINER_ADAPTERS)
        }
        args: list[str] = []
        model_flag = self.vllm.flag("model")
        skip = False
        for arg in self.args:
            if skip or arg == model_flag:  # the model goes positional, wherever its flag stands
                skip = not skip
                continue
            name, sep, path = arg.partition("=")
            args.append(f"{name}={hosts[path]}" if sep and path in hosts else arg)
        return ["vllm", "serve", model, *args]
