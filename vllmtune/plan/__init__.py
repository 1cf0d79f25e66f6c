"""Profile -> one frozen DeploymentPlan. Every default is resolved here.

Renderers and runtimes only read the plan: they never see ``None`` meaning "decide later",
never look at the profile and never consult the flag catalog. The vLLM argv is built here,
in the pinned version's spelling, from one table that maps profile fields to vLLM's
argparse ``dest`` names (``FIELD_FLAGS``).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vllmtune import __version__
from vllmtune.errors import Problem, ProfileError
from vllmtune.flags import (
    Flag,
    FlagSet,
    describe_versions,
    flagset,
    version_key,
    versions_with_dest,
    versions_with_value,
)
from vllmtune.levers import LEVERS
from vllmtune.modelfacts.sizes import parse_size
from vllmtune.plan.settings import (
    VLLM_DEFAULT,
    Default,
    LoraAdapterSettings,
    LoraSettings,
    SpeculativeSettings,
    VllmSettings,
    or_default,
    value_or,
)
from vllmtune.profile.loader import LoadedProfile
from vllmtune.profile.models import SecretRef, parse_duration

__all__ = [
    "VLLM_DEFAULT",
    "Default",
    "DeploymentPlan",
    "LoraAdapterSettings",
    "LoraSettings",
    "SpeculativeSettings",
    "VllmSettings",
    "build_plan",
    "load_plan",
    "value_or",
]

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


@dataclass(frozen=True)
class Health:
    """How to tell the server is up."""

    path: str
    startup_seconds: int
    period_seconds: int


@dataclass(frozen=True)
class Sidecar:
    """A service deployed next to vLLM (the prompt-cache proxy, its Redis). Renderers treat
    every sidecar alike; ``args`` may name other services as ``{vllm}`` / ``{redis}``, which
    each target resolves to its own host names."""

    role: str  # cache | redis
    image: str
    args: tuple[str, ...]
    port: int
    publish: bool  # reachable from outside (the proxy), or internal (redis)
    health_path: str | None
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[SecretEnv, ...] = ()
    command: tuple[str, ...] = ()  # entrypoint override (empty: the image's own)
    hardening: Hardening = Hardening(None, False, (), "100m", "128Mi", "128Mi")
    admits: tuple[str, ...] = ()  # NetworkPolicy: the only roles that may reach it (empty: no policy)

    def resolved_args(self, hosts: dict[str, str]) -> list[str]:
        """``args`` with ``{vllm}`` / ``{redis}`` replaced by this target's host names."""
        out = []
        for a in self.args:
            for key, host in hosts.items():
                a = a.replace("{" + key + "}", host)
            out.append(a)
        return out


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
    k8s_network_policy: bool = False  # a NetworkPolicy for the vLLM pods
    k8s_network_policy_from: tuple[tuple[tuple[str, str], ...], ...] = ()  # extra admitted pod labels
    gpu_memory_bytes: int | None = None  # resources.gpu_memory: one GPU's total, for `fit` / `validate`

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
        return replace(self, args=tuple(args), port=vllm.port, vllm=vllm)

    def single_node_only(self, what: str) -> str | None:
        """The message for a target that cannot span nodes, or None for a one-node plan."""
        mn = self.multi_node
        if mn is None:
            return None
        return (
            f"{mn.where}: resources.nodes: {what} runs on one machine, but this profile spans {mn.nodes} "
            "nodes; render it for Kubernetes (-t kubernetes: a LeaderWorkerSet), or set nodes: 1"
        )

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


# profile field path -> vLLM argparse dest. The single place a lever meets a flag.
FIELD_FLAGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("model", "revision"), "revision"),
    (("model", "tokenizer"), "tokenizer"),
    (("model", "served_name"), "served_model_name"),
    (("model", "max_model_len"), "max_model_len"),
    (("model", "dtype"), "dtype"),
    (("model", "trust_remote_code"), "trust_remote_code"),
    (("prefix_caching",), "enable_prefix_caching"),
    (("batching", "max_num_batched_tokens"), "max_num_batched_tokens"),
    (("batching", "max_num_seqs"), "max_num_seqs"),
    (("batching", "chunked_prefill"), "enable_chunked_prefill"),
    (("quantization", "method"), "quantization"),
    (("quantization", "kv_cache_dtype"), "kv_cache_dtype"),
    (("resources", "gpu_memory_utilization"), "gpu_memory_utilization"),
    (("resources", "tensor_parallel_size"), "tensor_parallel_size"),
    (("resources", "pipeline_parallel_size"), "pipeline_parallel_size"),
    (("lora", "max_loras"), "max_loras"),
    (("lora", "max_lora_rank"), "max_lora_rank"),
    (("lora", "max_cpu_loras"), "max_cpu_loras"),
)
# Values equal to vLLM's own default are not rendered (never force what was not asked).
SKIP_DEFAULTS = {"tensor_parallel_size": 1, "pipeline_parallel_size": 1}
VALUE_SETS = {"quantization": "quantization", "kv_cache_dtype": "kv_cache_dtype"}


def entrypoint_for(version: str) -> tuple[str, ...]:
    """The vllm/vllm-openai image ENTRYPOINT of a version."""
    if version_key(version) >= SERVE_ENTRYPOINT_SINCE:
        return ("vllm", "serve")
    return ("python3", "-m", "vllm.entrypoints.openai.api_server")


_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)i?[bB]?$")


REDIS_IMAGE = "redis:7.4.2-alpine"  # an exact release: a floating tag changes under a running Deployment
REDIS_MAXMEMORY = "1gb"
REDIS_MEMORY = "1536Mi"  # maxmemory 1gb + Redis' own overhead and fragmentation headroom


def docker_size(text: str) -> str:
    """'16Gi' / '16g' / '16G' -> docker's '16g' (binary units, as docker uses)."""
    m = _SIZE.match(text)
    assert m, text  # the profile pattern already guaranteed it
    return m.group(1) + m.group(2).lower()


def k8s_quantity(docker: str) -> str:
    """docker's '16g' -> Kubernetes' '16Gi'."""
    m = _SIZE.match(docker)
    assert m, docker
    unit = m.group(2).upper()
    return m.group(1) + (unit + "i" if unit else "")


def _gib(docker: str) -> float:
    """docker's '16g' -> 16.0 (GiB)."""
    m = _SIZE.match(docker)
    assert m, docker
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[m.group(2).lower()]
    return float(m.group(1)) * float(1 << (10 * power)) / float(1 << 30)


class _Planner:
    def __init__(self, lp: LoadedProfile) -> None:
        self.lp = lp
        self.p = lp.profile
        self.version = self.p.vllm.version.lstrip("v")
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = list(lp.warnings)
        self.entrypoint = entrypoint_for(self.version)
        self.fs: FlagSet = flagset(self.version, "serve" if self.entrypoint[0] == "vllm" else "api_server")
        self.args: list[str] = []
        self.spelt: dict[str, str] = {}  # dest -> the flag spelling rendered
        self.extra: list[tuple[str, str]] = []  # server.extra_args as (dest, value)
        self.lora_adapters: list[LoraAdapterSettings] = []
        self.levers: list[tuple[str, str, tuple[str, ...]]] = []

    def err(self, path: tuple[str | int, ...], msg: str) -> None:
        self.errors.append(self.lp.problem(path, msg))

    def warn(self, path: tuple[str | int, ...], msg: str) -> None:
        self.warnings.append(self.lp.problem(path, msg))

    def _value(self, path: tuple[str, ...]) -> Any:
        obj: Any = self.p
        for part in path:
            obj = getattr(obj, part) if obj is not None else None
        return obj

    def _cannot(self, path: tuple[str, ...], dest: str, what: str) -> None:
        where = versions_with_dest(dest, "serve")
        self.err(path, f"vLLM {self.version} cannot express {what}; available in {describe_versions(where)}")

    def flag(self, path: tuple[str, ...], dest: str, value: Any) -> list[str]:
        """Render one field as argv in this version's spelling ([] when nothing to say)."""
        flag = self.fs.by_dest(dest)
        if flag is None:
            self._cannot(path, dest, f"{'.'.join(path)} (no flag for {dest})")
            return []
        out = self._flag_argv(flag, path, dest, value)
        if out:
            self.spelt[dest] = out[0]
        return out

    def _flag_argv(self, flag: Flag, path: tuple[str, ...], dest: str, value: Any) -> list[str]:
        if isinstance(value, bool):
            if flag.kind == "bool":
                return [flag.group[0] if value else flag.group[1]]
            if flag.kind == "optbool":  # old StoreBoolean: --flag True|False
                return [flag.name, str(value)]
            if flag.kind == "switch":
                # A bare switch can only turn the feature on; off is its default.
                return [flag.name] if value else []
            self._cannot(path, dest, "a true/false value")
            return []
        text = str(value)
        vs = VALUE_SETS.get(dest)
        allowed = [str(c) for c in flag.choices] if flag.choices else (self.fs.values(vs) if vs else None)
        if allowed is not None and text not in allowed:
            close = difflib.get_close_matches(text, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            others = versions_with_value(vs, text) if vs else []
            where = f" ({text} is accepted by {describe_versions(others)})" if others else ""
            self.err(
                path,
                f"{text!r} is not accepted by vLLM {self.version}{where}; {hint}choose one of: {', '.join(allowed)}",
            )
            return []
        return [flag.name, text]

    def build(self) -> DeploymentPlan:
        p = self.p
        model, host_path, mounts = self._model()
        self.args = ["--model", model]
        self.spelt["model"] = "--model"
        for path, dest in FIELD_FLAGS:
            value = self._value(path)
            if value is None or SKIP_DEFAULTS.get(dest) == value:
                continue
            self.args += self.flag(path, dest, value)
        self._deprecated_quantization()
        self._speculative()
        adapter_mounts = self._lora()
        multi_node = self._multi_node()
        self.args += ["--host", p.server.host]
        self.spelt["host"] = "--host"
        self.args += self.flag(("server", "port"), "port", p.server.port)
        self._extra_args()
        if self.errors:
            raise ProfileError(sorted(self.errors, key=lambda e: (e.file, e.line or 0)))
        self._levers()
        r = p.resources
        parallel = r.tensor_parallel_size * r.pipeline_parallel_size > 1
        shm = Shm(
            ipc_host=parallel and r.shm_size is None, size=docker_size(r.shm_size or ("16g" if parallel else "2g"))
        )
        d = p.deploy
        mounts = (Mount(source=d.docker.hf_cache, target=CONTAINER_HF_CACHE, kind="cache"), *mounts, *adapter_mounts)
        downloads = self._downloads()
        startup_seconds, budget = self._startup_budget(downloads)
        served = p.model.served_name or model
        labels = (
            ("app.kubernetes.io/name", "vllm"),
            ("app.kubernetes.io/instance", p.name),
            ("app.kubernetes.io/component", "server"),
            ("app.kubernetes.io/managed-by", "vllmtune"),
            (f"{LABEL_PREFIX}/profile", p.name),
            (f"{LABEL_PREFIX}/profile-hash", self.lp.digest),
            (f"{LABEL_PREFIX}/vllm-version", self.version),
            (f"{LABEL_PREFIX}/version", __version__),
        )
        probes = d.kubernetes.probes
        served_names = (served, *(a.name for a in (p.lora.adapters if p.lora else [])))
        return DeploymentPlan(
            name=p.name,
            profile_hash=self.lp.digest,
            vllm_version=self.version,
            image=f"{p.vllm.image}:v{self.version}",
            entrypoint=self.entrypoint,
            model=model,
            model_host_path=host_path,
            served_name=served,
            args=tuple(self.args),
            env=tuple(sorted(p.server.env.items())),
            secret_env=self._secrets(),
            port=p.server.port,
            gpus=r.gpus,
            gpu_memory_bytes=parse_size(r.gpu_memory) if r.gpu_memory else None,
            shm=shm,
            mounts=mounts,
            health=Health("/health", startup_seconds, probes.period_seconds),
            labels=labels,
            docker_container=d.docker.container_name or p.name,
            docker_restart=d.docker.restart,
            docker_bind=d.docker.bind_address,
            compose_restart=d.compose.restart,
            compose_hf_cache=d.compose.hf_cache,
            compose_start_period_seconds=parse_duration(d.compose.start_period),
            k8s_namespace=d.kubernetes.namespace,
            k8s_replicas=d.kubernetes.replicas,
            k8s_extra_labels=tuple(sorted(d.kubernetes.labels.items())),
            k8s_node_selector=tuple(sorted(d.kubernetes.node_selector.items())),
            k8s_tolerations=tuple(
                tuple((k, v) for k, v in t.model_dump(exclude_none=True).items()) for t in d.kubernetes.tolerations
            ),
            k8s_pvc_size=k8s_quantity(docker_size(d.kubernetes.pvc.size)),
            k8s_pvc_storage_class=d.kubernetes.pvc.storage_class,
            k8s_pvc_access_mode=d.kubernetes.pvc.access_mode,
            k8s_service_type=d.kubernetes.service_type,
            prompt_cache=self._prompt_cache(),
            sidecars=self._sidecars(),
            levers=tuple(self.levers),
            vllm=self._settings(model, served_names),
            served_names=served_names,
            multi_node=multi_node,
            k8s_model_download=d.kubernetes.model_download,
            downloads=downloads,
            autoscaling=self._autoscaling(),
            monitoring=self._monitoring(),
            quantize=self._quantize(),
            startup_budget=budget,
            source=self.lp.source,
            warnings=tuple(str(w) for w in self.warnings),
            k8s_server_hardening=self._server_hardening(shm),
            k8s_download_hardening=Hardening(None, False, (), "500m", "2Gi", "2Gi"),
            k8s_network_policy=d.kubernetes.network_policy.enabled,
            k8s_network_policy_from=tuple(tuple(sorted(sel.items())) for sel in d.kubernetes.network_policy.allow_from),
        )

    def _server_hardening(self, shm: Shm) -> Hardening:
        """vLLM's container: its image runs as root and writes caches (torch.compile, Triton,
        flashinfer) under its home, so it keeps the image's user and a writable root; it drops
        every capability. Memory: the weights pass through host memory while loading, and the
        memory-backed /dev/shm counts against the container's limit."""
        r = self.p.deploy.kubernetes.resources
        cpu = r.cpu or str(2 + 2 * self.p.resources.gpus)
        if r.memory:
            memory = k8s_quantity(docker_size(r.memory))
        else:
            shm_gib = _gib(shm.size)
            size = self._weights_bytes()
            if size is None:
                gib = 32 + shm_gib
            else:
                per_pod = size / max(1, self.p.resources.nodes)
                gib = math.ceil(per_pod * 1.2 / 2**30) + shm_gib + 8
            memory = f"{math.ceil(gib)}Gi"
        return Hardening(None, False, (), cpu, memory, memory)

    def _host_path(self, ident: str) -> str | None:
        """The absolute host path of a local directory or file (relative to the profile), or
        None for a Hugging Face id."""
        if not (ident.startswith(("/", "./", "../", "~/")) or ident in (".", "..")):
            return None
        base = Path(self.lp.source).parent if not self.lp.source.startswith("preset:") else Path()
        host = Path(ident).expanduser()
        host = host if host.is_absolute() else (base / host)
        return str(host.resolve(strict=False))

    def _model(self) -> tuple[str, str | None, tuple[Mount, ...]]:
        """The model vLLM loads. A local directory is bind-mounted read-only in containers."""
        ident = self.p.quantization.checkpoint or self.p.model.id
        host_path = self._host_path(ident)
        if host_path is None:
            return ident, None, ()
        target = f"{CONTAINER_MODELS}/{Path(host_path).name or 'model'}"
        return target, host_path, (Mount(source=host_path, target=target, read_only=True),)

    def _lora(self) -> tuple[Mount, ...]:
        """--enable-lora and --lora-modules name=source (local adapters are mounted)."""
        lora = self.p.lora
        if lora is None:
            return ()
        self.args += self.flag(("lora",), "enable_lora", True)
        modules, mounts = [], []
        for a in lora.adapters:
            host = self._host_path(a.source)
            loads = a.source if host is None else f"{CONTAINER_ADAPTERS}/{a.name}"
            if host is not None:
                mounts.append(Mount(source=host, target=loads, read_only=True))
            modules.append(f"{a.name}={loads}")
            self.lora_adapters.append(LoraAdapterSettings(a.name, loads))
        flag = self.fs.by_dest("lora_modules")
        if flag is None:
            self._cannot(("lora", "adapters"), "lora_modules", "LoRA adapters")
        else:
            self.args += [flag.name, *modules]
            self.spelt["lora_modules"] = flag.name
        return tuple(mounts)

    def _multi_node(self) -> MultiNode | None:
        """Across nodes vLLM runs on a Ray cluster: the leader pod is its head."""
        r = self.p.resources
        if r.nodes == 1:
            return None
        self.args += self.flag(("resources", "nodes"), "distributed_executor_backend", "ray")
        at = self.lp.problem(("resources", "nodes"), "")
        where = f"{at.file}:{at.line}" if at.line else at.file
        return MultiNode(
            nodes=r.nodes, gpus_per_node=r.gpus, ray_port=RAY_PORT, ray_wait_seconds=RAY_WAIT_SECONDS, where=where
        )

    def _downloads(self) -> tuple[str, ...]:
        """Hub repositories the server reads (weights, tokenizer, draft model, adapters): what a
        pre-download init container or Job fetches."""
        p = self.p
        out: list[str] = []
        main = p.quantization.checkpoint or p.model.id
        if self._host_path(main) is None:
            rev = p.model.revision if not p.quantization.checkpoint else None
            out.append(f"{main}@{rev}" if rev else main)
        for ident in (
            p.model.tokenizer,
            p.speculative.model if p.speculative and p.speculative.method != "ngram" else None,
            *(a.source for a in (p.lora.adapters if p.lora else [])),
        ):
            if ident and self._host_path(ident) is None and ident not in out:
                out.append(ident)
        return tuple(out)

    def _weights_bytes(self) -> int | None:
        """Size of the weights vLLM loads, when vllmtune knows the model (catalog or local dir)."""
        from vllmtune.modelfacts.models import catalog_lookup, derived_params, name_quant_hint

        ident = self.p.quantization.checkpoint or self.p.model.id
        host = self._host_path(ident)
        if host is not None:
            files = list(Path(host).glob("*.safetensors")) if Path(host).is_dir() else []
            return sum(f.stat().st_size for f in files) or None
        arch = catalog_lookup(ident)
        if arch is None:
            return None
        params = arch.params or derived_params(arch)
        hint = name_quant_hint(ident) if self.p.quantization.checkpoint else None
        bits = hint[1] if hint else 16.0
        return int(params * bits / 8)

    def _startup_budget(self, downloads: tuple[str, ...]) -> tuple[int, str]:
        """probes.startup_timeout, or one derived from the model's size."""
        probes = self.p.deploy.kubernetes.probes
        if probes.startup_timeout is not None:
            return parse_duration(probes.startup_timeout), f"startup_timeout {probes.startup_timeout} (profile)"
        size = self._weights_bytes()
        if size is None:
            return DEFAULT_STARTUP_SECONDS, "30m: model size unknown to vllmtune (set probes.startup_timeout)"
        downloads_here = self.p.deploy.kubernetes.model_download == "server" and bool(downloads)
        seconds = (size / DOWNLOAD_BYTES_PER_S if downloads_here else 0) + size / LOAD_BYTES_PER_S + WARMUP_SECONDS
        minutes = math.ceil(seconds * BUDGET_MARGIN / 60)
        what = "download at 100 MB/s + " if downloads_here else ""
        why = f"{size / 1e9:.1f} GB of weights ({what}load at 500 MB/s + 10 min warm-up) x1.5"
        if self.p.resources.nodes > 1:  # the leader first waits for the Ray cluster to form
            minutes += RAY_WAIT_SECONDS // 60
            why += f" + {RAY_WAIT_SECONDS // 60} min for the Ray cluster"
        return minutes * 60, f"{minutes}m: {why}"

    def _autoscaling(self) -> Autoscaling | None:
        a = self.p.deploy.kubernetes.autoscaling
        if a is None:
            return None
        target = a.target if a.target is not None else (5.0 if a.metric == "queue" else 1.0)
        return Autoscaling(
            engine=a.engine,
            min_replicas=a.min_replicas,
            max_replicas=a.max_replicas,
            metric=a.metric,
            target=target,
            prometheus_url=a.prometheus_url,
            cooldown_seconds=parse_duration(a.cooldown),
        )

    def _monitoring(self) -> Monitoring:
        m = self.p.deploy.kubernetes.monitoring
        return Monitoring(
            scrape=m.scrape, interval=m.interval, labels=tuple(sorted(m.labels.items())), dashboard=m.dashboard
        )

    def _quantize(self) -> QuantizeJob | None:
        q = self.p.quantization
        r = q.recipe
        if r is None or q.checkpoint is None:
            return None
        src_host = self._host_path(self.p.model.id)
        out_host = self._host_path(q.checkpoint)
        data_host = self._host_path(r.calibration_dataset)
        weights = None
        from vllmtune.modelfacts.models import catalog_lookup, derived_params

        arch = catalog_lookup(self.p.model.id) if src_host is None else None
        if arch is not None:
            weights = int((arch.params or derived_params(arch)) * 2)
        elif src_host is not None and Path(src_host).is_dir():  # the checkpoint's own size
            weights = sum(f.stat().st_size for f in Path(src_host).glob("*.safetensors")) or None
        return QuantizeJob(
            source="/work/source" if src_host else self.p.model.id,
            source_host_path=src_host,
            revision=self.p.model.revision,
            output="/work/output" if out_host else q.checkpoint,
            output_host_path=out_host,
            push_to_hub=out_host is None,
            scheme=r.scheme,
            algorithm=r.algorithm,
            dataset=f"/work/calibration/{Path(data_host).name}" if data_host else r.calibration_dataset,
            dataset_host_path=data_host,
            split=r.calibration_split,
            samples=r.calibration_samples,
            max_seq_length=r.max_seq_length,
            ignore=tuple(r.ignore),
            requirement=r.llmcompressor,
            image=r.image or f"{self.p.vllm.image}:v{self.version}",
            gpus=r.gpus,
            source_bytes=weights,
        )

    def _deprecated_quantization(self) -> None:
        method = self.p.quantization.method
        deprecated = self.fs.values("quantization_deprecated") or []
        if method and method in deprecated:
            allow = self.fs.by_dest("allow_deprecated_quantization")
            if allow is not None:
                self.args.append(allow.group[0])
                self.spelt["allow_deprecated_quantization"] = allow.group[0]
            self.warn(
                ("quantization", "method"),
                f"{method} is deprecated in vLLM {self.version} and will be removed; prefer awq, gptq or fp8",
            )

    def _speculative(self) -> None:
        s = self.p.speculative
        if s is None:
            return
        path = ("speculative", "method")
        methods = self.fs.values("speculative_methods")
        if self.fs.by_dest("speculative_config") is not None:
            if methods is not None and s.method not in methods:
                others = versions_with_value("speculative_methods", s.method)
                if others:
                    hint = f"it is available in {describe_versions(others)}; "
                else:
                    close = difflib.get_close_matches(s.method, methods, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                self.err(
                    path,
                    f"{s.method!r} is not a speculative method of vLLM "
                    f"{self.version}; {hint}choose one of: {', '.join(methods)}",
                )
                return
            config: dict[str, Any] = {"method": s.method}
            if s.model and s.method != "ngram":
                config["model"] = s.model
            config["num_speculative_tokens"] = s.num_tokens
            for key in ("prompt_lookup_max", "prompt_lookup_min", "draft_tensor_parallel_size"):
                if getattr(s, key) is not None:
                    config[key] = getattr(s, key)
            # JSON of strings and ints is also the Python literal 0.8.2 parsed.
            flag = self.fs.by_dest("speculative_config")
            assert flag is not None
            self.args += [flag.name, json.dumps(config, separators=(",", ":"))]
            self.spelt["speculative_config"] = flag.name
            return
        # Before 0.8.2: separate flags; ngram is spelled as the model "[ngram]".
        if self.fs.by_dest("speculative_model") is None:
            self._cannot(path, "speculative_config", "speculative decoding")
            return
        if s.method not in ("draft_model", "ngram"):
            where = [
                v
                for v in versions_with_dest("speculative_config")
                if s.method in (flagset(v).values("speculative_methods") or [])
            ]
            self.err(
                path, f"vLLM {self.version} cannot express method {s.method}; available in {describe_versions(where)}"
            )
            return
        self.args += self.flag(
            ("speculative", "model"), "speculative_model", "[ngram]" if s.method == "ngram" else s.model
        )
        self.args += self.flag(("speculative", "num_tokens"), "num_speculative_tokens", s.num_tokens)
        for key, dest in (
            ("prompt_lookup_max", "ngram_prompt_lookup_max"),
            ("prompt_lookup_min", "ngram_prompt_lookup_min"),
            ("draft_tensor_parallel_size", "speculative_draft_tensor_parallel_size"),
        ):
            if getattr(s, key) is not None:
                self.args += self.flag(("speculative", key), dest, getattr(s, key))

    def _extra_args(self) -> None:
        set_by_profile = {self.fs.flags[a].dest for a in self.args if a in self.fs.flags}
        for i, arg in enumerate(self.p.server.extra_args):
            if not arg.startswith("-") or arg in ("-", "--"):
                continue  # a value of the previous flag
            name = arg.split("=", 1)[0]
            flag = self.fs.flags.get(name)
            path = ("server", "extra_args", i)
            if flag is None:
                close = self.fs.suggest(name)
                hint = f"; did you mean {close}?" if close else ""
                self.err(path, f"unknown flag {name} for vLLM {self.version}{hint}")
            elif flag.dest in set_by_profile or flag.dest == "model":
                self.err(
                    path,
                    f"{name} is already set by the profile; set the profile field "
                    "instead of repeating it in extra_args",
                )
        self.args += self.p.server.extra_args
        self.extra = self._extra_values(self.p.server.extra_args)

    def _extra_values(self, extra: list[str]) -> list[tuple[str, str]]:
        """server.extra_args as (dest, value) in the pinned version's terms: the plan reads its
        own input once, so that nobody reads the argv back."""
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(extra):
            name, eq, value = extra[i].partition("=")
            flag = self.fs.flags.get(name)
            i += 1
            if flag is None or not name.startswith("-") or name in ("-", "--"):
                continue
            if not eq:
                if flag.kind == "switch":
                    value = "on"
                elif flag.kind == "bool":
                    value = "on" if name == flag.group[0] else "off"
                elif flag.takes_value:
                    values = []
                    while i < len(extra) and not (extra[i].startswith("-") and extra[i] not in ("-", "--")):
                        values.append(extra[i])
                        i += 1
                        if flag.kind not in ("multi",):
                            break
                    value = " ".join(values)
            self.spelt.setdefault(flag.dest, name)
            out.append((flag.dest, value))
        return out

    def _settings(self, model: str, served_names: tuple[str, ...]) -> VllmSettings:
        """The typed settings the argv renders (see :mod:`vllmtune.plan.settings`)."""
        p = self.p
        extra = dict(self.extra)

        def extra_int(dest: str) -> int | Default:
            text = extra.get(dest)
            return int(text) if text is not None and text.strip().isdigit() else VLLM_DEFAULT

        def extra_bool(dest: str) -> bool | Default:
            text = extra.get(dest)
            if text is None:
                return VLLM_DEFAULT
            return text.lower() in ("on", "true", "1", "yes")

        s = p.speculative
        speculative: SpeculativeSettings | Default = VLLM_DEFAULT
        if s is not None:
            speculative = SpeculativeSettings(
                method=s.method,
                model=or_default(s.model if s.method != "ngram" else None),
                num_tokens=s.num_tokens,
                prompt_lookup_max=or_default(s.prompt_lookup_max),
                prompt_lookup_min=or_default(s.prompt_lookup_min),
                draft_tensor_parallel_size=or_default(s.draft_tensor_parallel_size),
            )
        lora: LoraSettings | Default = VLLM_DEFAULT
        if p.lora is not None:
            lora = LoraSettings(
                adapters=tuple(self.lora_adapters),
                max_loras=or_default(p.lora.max_loras),
                max_lora_rank=or_default(p.lora.max_lora_rank),
                max_cpu_loras=or_default(p.lora.max_cpu_loras),
            )
        r = p.resources
        return VllmSettings(
            model=model,
            served_names=served_names,
            host=p.server.host,
            port=p.server.port,
            revision=or_default(p.model.revision),
            tokenizer=or_default(p.model.tokenizer),
            max_model_len=or_default(p.model.max_model_len),
            dtype=or_default(p.model.dtype),
            trust_remote_code=or_default(p.model.trust_remote_code),
            tensor_parallel_size=r.tensor_parallel_size,
            pipeline_parallel_size=r.pipeline_parallel_size,
            distributed_executor_backend="ray" if r.nodes > 1 else VLLM_DEFAULT,
            gpu_memory_utilization=or_default(r.gpu_memory_utilization),
            max_num_seqs=or_default(p.batching.max_num_seqs),
            max_num_batched_tokens=or_default(p.batching.max_num_batched_tokens),
            enable_chunked_prefill=or_default(p.batching.chunked_prefill),
            enable_prefix_caching=or_default(p.prefix_caching),
            quantization=or_default(p.quantization.method),
            kv_cache_dtype=or_default(p.quantization.kv_cache_dtype),
            block_size=extra_int("block_size"),
            kv_cache_memory_bytes=extra_int("kv_cache_memory_bytes"),
            enforce_eager=extra_bool("enforce_eager"),
            speculative=speculative,
            lora=lora,
            extra=tuple(self.extra),
            flags=tuple(sorted(self.spelt.items())),
        )

    def _secret(self, ref: SecretRef | None, field_path: str, container_var: str, default_key: str) -> SecretEnv | None:
        if ref is None:
            return None
        return SecretEnv(
            name=container_var,
            source_env=ref.env or container_var,
            k8s_secret=ref.secret.name if ref.secret else f"{self.p.name}-secrets",
            k8s_key=ref.secret.key if ref.secret else default_key,
            field=field_path,
        )

    def _secrets(self) -> tuple[SecretEnv, ...]:
        s = self.p.server
        found = (
            self._secret(s.api_key, "server.api_key", "VLLM_API_KEY", "api-key"),
            self._secret(s.hf_token, "server.hf_token", "HF_TOKEN", "hf-token"),
            *(
                self._secret(ref, f"server.secret_env.{name}", name, name.lower().replace("_", "-"))
                for name, ref in s.secret_env.items()
            ),
        )
        return tuple(x for x in found if x is not None)

    def _prompt_cache(self) -> PromptCachePlan | None:
        c = self.p.prompt_cache
        if not c.enabled:
            return None
        return PromptCachePlan(
            backend=c.backend,
            ttl_seconds=parse_duration(c.ttl),
            max_temperature=c.max_temperature,
            skip_pii=c.skip_pii,
            redis_url=self._secret(c.redis_url, "prompt_cache.redis_url", "VLLMTUNE_REDIS_URL", "redis-url"),
        )

    def _sidecars(self) -> tuple[Sidecar, ...]:
        """Lever 1 deployed: the cache proxy in front of vLLM (+ Redis unless given by URL)."""
        c = self.p.prompt_cache
        if not c.enabled:
            return ()
        args = [
            "--upstream",
            f"http://{{vllm}}:{self.p.server.port}",
            "--host",
            "0.0.0.0",
            "--port",
            str(c.port),
            "--backend",
            c.backend,
            "--ttl",
            str(parse_duration(c.ttl)),
            "--max-temperature",
            str(c.max_temperature),
        ]
        if not c.skip_pii:
            args.append("--no-skip-pii")
        out = []
        secret: tuple[SecretEnv, ...] = ()
        if c.backend == "redis":
            ref = self._secret(c.redis_url, "prompt_cache.redis_url", "VLLMTUNE_REDIS_URL", "redis-url")
            if ref is None:  # no URL given: run a Redis next to the proxy
                args += ["--redis-url", "redis://{redis}:6379/0"]
                # Redis refuses clients without the password (anyone who reaches it could
                # otherwise write answers the proxy serves as hits); both read it from one Secret.
                password = SecretEnv(
                    name="VLLMTUNE_REDIS_PASSWORD",
                    source_env="VLLMTUNE_REDIS_PASSWORD",
                    k8s_secret=f"{self.p.name}-redis-auth",
                    k8s_key="password",
                    field="prompt_cache.backend",
                )
                secret = (password,)
                out.append(
                    Sidecar(
                        role="redis",
                        image=REDIS_IMAGE,
                        # the password from the environment, never in argv (ps, logs, manifests)
                        command=(
                            "sh",
                            "-c",
                            'exec redis-server - "$@" <<EOF\nrequirepass $VLLMTUNE_REDIS_PASSWORD\nEOF\n',
                            "redis",
                        ),
                        secret_env=(password,),
                        args=(
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--maxmemory",
                            REDIS_MAXMEMORY,
                            "--maxmemory-policy",
                            "allkeys-lru",
                        ),
                        port=6379,
                        publish=False,
                        health_path=None,
                        # a high uid (the image runs non-root users as they are); nothing written (no save, no AOF)
                        hardening=Hardening(10001, True, ("/data",), "100m", REDIS_MEMORY, REDIS_MEMORY),
                        admits=("cache",),
                    )
                )
            else:
                secret = (ref,)  # the proxy reads VLLMTUNE_REDIS_URL
        proxy = Sidecar(
            role="cache",
            image=f"{c.image}:{__version__}",
            args=tuple(args),
            port=c.port,
            publish=True,
            health_path="/cache/stats",
            # with server.api_key the proxy checks the key itself before serving a hit
            secret_env=(*secret, *(e for e in self._secrets() if e.name == "VLLM_API_KEY")),
            # the image's USER proxy (uid 10001); the proxy writes nothing. The memory backend
            # holds up to its byte bound (256 MiB) plus Python's own ~64 MiB.
            hardening=Hardening(10001, True, ("/tmp",), "250m", "512Mi", "512Mi"),
        )
        return (proxy, *out)

    def _levers(self) -> None:
        """What each lever renders to, for ``vllmtune explain``."""
        a = self.args

        def flags_for(*dests: str) -> tuple[str, ...]:
            out = []
            for i, tok in enumerate(a):
                f = self.fs.flags.get(tok)
                if f is not None and f.dest in dests:
                    nxt = a[i + 1] if f.takes_value and f.kind != "optbool" and i + 1 < len(a) else None
                    out.append(tok if nxt is None else f"{tok} {nxt}")
            return tuple(out)

        p = self.p
        pc = p.prompt_cache
        states = {
            "prompt_cache": f"on ({pc.backend}, ttl {pc.ttl})" if pc.enabled else "off",
            "prefix_caching": {True: "on", False: "off", None: "vLLM default"}[p.prefix_caching],
            "batching": "set" if any(v is not None for v in p.batching.model_dump().values()) else "vLLM default",
            "quantization": p.quantization.method or ("checkpoint" if p.quantization.checkpoint else "off"),
            "speculative": p.speculative.method if p.speculative else "off",
        }
        self.levers = [
            (
                lever.label,
                states[lever.field],
                flags_for(*lever.dests) if lever.dests else (("proxy sidecar",) if pc.enabled else ()),
            )
            for lever in LEVERS
        ]


def build_plan(lp: LoadedProfile) -> DeploymentPlan:
    """Resolve a validated profile into a frozen plan; raise ProfileError for what the
    pinned vLLM version cannot express."""
    return _Planner(lp).build()


def load_plan(path: str) -> DeploymentPlan:
    """Load, validate and plan a profile file in one step."""
    from vllmtune.profile.loader import load_profile

    return build_plan(load_profile(path))
