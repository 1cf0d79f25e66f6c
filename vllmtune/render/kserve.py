"""``-t kserve``: a KServe ``LLMInferenceService`` (serving.kserve.io/v1alpha2).

The vLLM container (``main``) is given whole: the image's entrypoint as ``command`` and the
plan's argv as ``args``, so that KServe's preset configuration adds nothing to what vLLM gets;
vLLM downloads the model itself (``storageInitializer.enabled: false``, ``model.uri`` names it
as ``hf://``). Several replicas (or autoscaling) get KServe's router: a Gateway route and the
inference scheduler, which picks the replica by load and prefix. A multi-node server is
``spec.worker`` (KServe makes a LeaderWorkerSet of ``template``, the leader, and ``worker``) with
``spec.parallelism`` (tensor inside a node, pipeline across): the leader is the Ray head and runs
vLLM once every node has joined, the workers join it, as -t kubernetes does. Checked against the
CRD's openAPIV3Schema (tests/render/test_exporters.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vllmtune.plan import k8s_quantity
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render.coverage import (
    COMMON,
    LOCAL_ADAPTER,
    LOCAL_MODEL,
    Coverage,
    Reported,
    header,
    local_adapters,
    warnings_for,
)
from vllmtune.render.k8s.base import LEADER_SH, WORKER_SH, escape_var_refs, secret_env
from vllmtune.render.k8s.server import multi_node_env

if TYPE_CHECKING:
    from vllmtune.plan import DeploymentPlan

TARGET = "kserve"
API_VERSION = "serving.kserve.io/v1alpha2"
GPU_RESOURCE = "nvidia.com/gpu"

_LOCAL = lambda p: p.model_host_path is not None  # noqa: E731

COVERAGE: Coverage = {
    **COMMON,
    "name": "metadata.name",
    "vllm.version": "the container image tag (v<version>)",
    "vllm.image": "spec.template.containers[main].image",
    "model.id": Reported(LOCAL_MODEL, _LOCAL, "spec.model.uri (hf://) and the container args"),
    "model.served_name": "spec.model.name and the container args",
    "model.revision": "the container args (--revision)",
    "model.tokenizer": "the container args (--tokenizer)",
    "model.max_model_len": "the container args",
    "model.dtype": "the container args",
    "model.trust_remote_code": "the container args",
    "prompt_cache.*": Reported(
        "an LLMInferenceService has no place for the prompt-cache proxy; deploy it beside "
        "(vllmtune render -t kubernetes renders it)",
        lambda p: p.prompt_cache is not None,
    ),
    "prefix_caching": "the container args",
    "batching.*": "the container args",
    "quantization.method": "the container args",
    "quantization.checkpoint": Reported(LOCAL_MODEL, _LOCAL, "spec.model.uri and the container args"),
    "quantization.kv_cache_dtype": "the container args",
    "speculative.*": "the container args (--speculative-config)",
    "lora.*": Reported(LOCAL_ADAPTER, local_adapters, "the container args (--enable-lora, --lora-modules, ...)"),
    "sleep_mode": "the container args",
    "parallelism.*": "the container args",
    "scheduling.*": "the container args",
    "compilation.*": "the container args",
    "kv_offload.*": "the container args (native); the container args and env (lmcache: LMCACHE_*)",
    "resources.gpus": "spec.template.containers[main].resources (nvidia.com/gpu)",
    "resources.gpu_memory_utilization": "the container args",
    "resources.tensor_parallel_size": "spec.parallelism.tensor and the container args",
    "resources.pipeline_parallel_size": "spec.parallelism.pipeline and the container args",
    "resources.nodes": "spec.worker (the worker pods, Ray workers) and spec.parallelism.pipeline",
    "resources.shm_size": "spec.template.volumes (dshm, an emptyDir in memory at /dev/shm)",
    "server.port": "the container args and port",
    "server.host": "the container args",
    "server.api_key.*": "spec.template.containers[main].env (VLLM_API_KEY from its Secret)",
    "server.hf_token.*": "spec.template.containers[main].env (HF_TOKEN from its Secret)",
    "server.env": "spec.template.containers[main].env",
    "server.secret_env": "spec.template.containers[main].env (valueFrom.secretKeyRef)",
    "server.extra_args": "the container args",
    "deploy.kubernetes.namespace": "metadata.namespace",
    "deploy.kubernetes.replicas": "spec.replicas (spec.scaling when autoscaled)",
    "deploy.kubernetes.labels": "metadata.labels and spec.labels",
    "deploy.kubernetes.node_selector": "spec.template.nodeSelector",
    "deploy.kubernetes.tolerations.*": "spec.template.tolerations",
    "deploy.kubernetes.pvc.*": Reported("KServe keeps the model's storage (the model cache is its own)"),
    "deploy.kubernetes.service_type": Reported(
        "KServe exposes the server through its Gateway route, not a Service type",
        lambda p: p.k8s_service_type != "ClusterIP",
    ),
    "deploy.kubernetes.probes.*": "spec.template.containers[main].startupProbe",
    "deploy.kubernetes.resources.*": "spec.template.containers[main].resources",
    "deploy.kubernetes.network_policy.*": Reported(
        "an LLMInferenceService renders no NetworkPolicy (vllmtune render -t kubernetes does)",
        lambda p: p.k8s_network_policy,
    ),
    "deploy.kubernetes.model_download": Reported(
        "vLLM downloads the model at start-up here", lambda p: p.k8s_model_download != "server"
    ),
    "deploy.kubernetes.autoscaling.engine": Reported(
        "an LLMInferenceService autoscales with KEDA only",
        lambda p: p.autoscaling is not None and p.autoscaling.engine != "keda",
        "spec.scaling.keda",
    ),
    "deploy.kubernetes.autoscaling.min_replicas": "spec.scaling.minReplicas",
    "deploy.kubernetes.autoscaling.max_replicas": "spec.scaling.maxReplicas",
    "deploy.kubernetes.autoscaling.metric": "spec.scaling.keda.triggers[0].metadata.query",
    "deploy.kubernetes.autoscaling.target": "spec.scaling.keda.triggers[0].metadata.threshold",
    "deploy.kubernetes.autoscaling.prometheus_url": "spec.scaling.keda.triggers[0].metadata.serverAddress",
    "deploy.kubernetes.autoscaling.cooldown": "spec.scaling.keda.cooldownPeriod",
    "deploy.kubernetes.monitoring.scrape": Reported(
        "KServe sets up its own metrics scraping; only prometheus.io annotations are carried",
        lambda p: p.monitoring.scrape in ("podmonitor", "servicemonitor"),
        "spec.annotations (prometheus.io/*)",
    ),
    "deploy.kubernetes.monitoring.interval": Reported(
        "as monitoring.scrape", lambda p: p.monitoring.scrape in ("podmonitor", "servicemonitor")
    ),
    "deploy.kubernetes.monitoring.labels": Reported("as monitoring.scrape", lambda p: bool(p.monitoring.labels)),
    "deploy.kubernetes.monitoring.dashboard": Reported(
        "vllmtune render -t grafana prints the dashboard", lambda p: p.monitoring.dashboard
    ),
}


def kserve_warnings(plan: DeploymentPlan) -> tuple[str, ...]:
    """The profile fields this manifest does not carry, as warnings."""
    return warnings_for(TARGET, COVERAGE, plan)


def _env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in plan.env] + multi_node_env(plan) + secret_env(plan.secret_env)


def _resources(plan: DeploymentPlan) -> dict[str, Any]:
    h = plan.k8s_server_hardening
    requests: dict[str, str] = {"cpu": h.cpu_request, "memory": h.memory_request}
    limits: dict[str, str] = {"memory": h.memory_limit}
    if plan.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(plan.gpus)
    return {"requests": requests, "limits": limits}


def _scaling(plan: DeploymentPlan) -> dict[str, Any] | None:
    from vllmtune.render.k8s.autoscaling import autoscaling_queries

    a = plan.autoscaling
    if a is None or a.engine != "keda":
        return None
    threshold = str(int(a.target)) if float(a.target).is_integer() else repr(a.target)
    trigger = {
        "type": "prometheus",
        "metadata": {
            "serverAddress": a.prometheus_url,
            "query": autoscaling_queries(plan)["metric"],
            "threshold": threshold,
        },
    }
    return {
        "minReplicas": a.min_replicas,
        "maxReplicas": a.max_replicas,
        "keda": {"pollingInterval": a.polling_seconds, "cooldownPeriod": a.cooldown_seconds, "triggers": [trigger]},
    }


def _pod(plan: DeploymentPlan, container: dict[str, Any]) -> dict[str, Any]:
    """A pod spec of the server (the leader's template, or a worker's)."""
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}}],
    }
    if plan.k8s_node_selector:
        pod["nodeSelector"] = dict(plan.k8s_node_selector)
    if plan.k8s_tolerations:
        pod["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    return pod


def manifest(plan: DeploymentPlan) -> dict[str, Any]:
    """The LLMInferenceService object."""
    period = plan.health.period_seconds
    container: dict[str, Any] = {
        "name": "main",
        "image": plan.image,
        "command": list(plan.entrypoint),
        "args": list(plan.args),
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "env": _env(plan),
        "resources": _resources(plan),
        "startupProbe": {
            "httpGet": {"path": plan.health.path, "port": plan.port},
            "periodSeconds": period,
            "failureThreshold": plan.health.startup_failures,
        },
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if not container["env"]:
        del container["env"]
    template = _pod(plan, container)
    worker: dict[str, Any] | None = None
    if plan.multi_node is not None:
        # the leader: the Ray head, then vLLM (the plan's command line as the script's arguments)
        container["command"] = ["bash", "-c", LEADER_SH, "vllmtune-leader"]
        container["args"] = [*plan.entrypoint, *plan.args]
        worker_container: dict[str, Any] = {
            "name": "main",
            "image": plan.image,
            "command": ["bash", "-c", WORKER_SH, "vllmtune-worker"],
            "env": _env(plan),
            "resources": _resources(plan),
            "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        }
        worker = _pod(plan, worker_container)
    metadata: dict[str, Any] = {"name": plan.name}
    if plan.k8s_namespace is not None:
        metadata["namespace"] = plan.k8s_namespace
    metadata["labels"] = {**dict(plan.labels), **dict(plan.k8s_extra_labels)}
    spec: dict[str, Any] = {"model": {"uri": f"hf://{plan.model}", "name": plan.served_name}}
    v = plan.vllm
    parallelism = {
        k: n for k, n in (("tensor", v.tensor_parallel_size), ("pipeline", v.pipeline_parallel_size)) if n > 1
    }
    if parallelism:
        spec["parallelism"] = parallelism
    if worker is not None:
        spec["worker"] = worker
    scaling = _scaling(plan)
    if scaling is not None:
        spec["scaling"] = scaling
    else:
        spec["replicas"] = plan.k8s_replicas
    if plan.k8s_extra_labels:
        spec["labels"] = dict(plan.k8s_extra_labels)
    if plan.monitoring.scrape == "annotations":
        spec["annotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(plan.port),
            "prometheus.io/path": "/metrics",
        }
    spec["storageInitializer"] = {"enabled": False}
    spec["template"] = template
    if scaling is not None or plan.k8s_replicas > 1:
        spec["router"] = {"route": {}, "gateway": {}, "scheduler": {}}
    doc = {"apiVersion": API_VERSION, "kind": "LLMInferenceService", "metadata": metadata, "spec": spec}
    escape_var_refs(doc)  # Kubernetes expands $(VAR) in command, args and env values
    return doc


def render_kserve(plan: DeploymentPlan) -> str:
    """The manifest for ``kubectl apply -f``."""
    body = manifest(plan)
    warnings = kserve_warnings(plan)
    apply = "kubectl apply -f THIS_FILE (a cluster with KServe's LLMInferenceService CRDs and controller)"
    return header(TARGET, plan, apply, warnings) + dump_yaml(body)
