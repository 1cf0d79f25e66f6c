"""The ``deploy`` section of a profile: docker, compose and Kubernetes settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vllmtune.profile.base import NAME_RE, SIZE_RE, ArgValue, Duration, Restart, Strict


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
