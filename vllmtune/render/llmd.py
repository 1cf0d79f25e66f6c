"""``-t llm-d``: Helm values for llm-d's modelservice chart (llm-d-modelservice).

The profile's server is the decode pool. Its container is given whole (``modelCommand:
custom``: the image's entrypoint as ``command``, the plan's argv as ``args``), so the chart
adds no vLLM flag of its own; the chart adds the GPUs (``decode.parallelism.tensor`` x
``dataLocal``: the typed tensor parallel size) and ``HF_HOME`` on the model volume, where vLLM
downloads the model. A profile has no prefill/decode split, so the prefill pool and the routing
proxy (the sidecar that steers P/D traffic) are off and vLLM listens on ``routing.servicePort``;
the Gateway, InferencePool and scheduler come from llm-d's infrastructure charts, which select
the pods by ``modelArtifacts.labels``. A multi-node server is the chart's ``multinode`` mode: a
LeaderWorkerSet of ``decode.parallelism.workers`` pods, one pod template for all, so each pod
runs its part by its LeaderWorkerSet index (0: the Ray head, then vLLM, as -t kubernetes' leader;
the others: Ray workers joining it); the chart requests ``tensor`` GPUs per pod. The chart passes
env values through Helm's ``tpl``: ``{{`` in them is escaped. Checked against the chart's ``values.schema.json``
(tests/render/test_exporters.py).
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
from vllmtune.render.k8s.base import NODE_SH, escape_var_refs, secret_env
from vllmtune.render.k8s.server import multi_node_env

if TYPE_CHECKING:
    from vllmtune.plan import DeploymentPlan

TARGET = "llm-d"

_LOCAL = lambda p: p.model_host_path is not None  # noqa: E731

COVERAGE: Coverage = {
    **COMMON,
    "name": "fullnameOverride",
    "vllm.version": "decode.containers[0].image (v<version>)",
    "vllm.image": "decode.containers[0].image",
    "model.id": Reported(LOCAL_MODEL, _LOCAL, "modelArtifacts.name and uri (hf://), and the container args"),
    "model.served_name": "the container args (--served-model-name)",
    "model.revision": "the container args (--revision)",
    "model.tokenizer": "the container args (--tokenizer)",
    "model.max_model_len": "the container args",
    "model.dtype": "the container args",
    "model.trust_remote_code": "the container args",
    "prompt_cache.*": Reported(
        "the chart has no place for the prompt-cache proxy; deploy it beside the release "
        "(vllmtune render -t kubernetes renders it)",
        lambda p: p.prompt_cache is not None,
    ),
    "prefix_caching": "the container args",
    "batching.*": "the container args",
    "quantization.method": "the container args",
    "quantization.checkpoint": Reported(LOCAL_MODEL, _LOCAL, "modelArtifacts and the container args"),
    "quantization.kv_cache_dtype": "the container args",
    "speculative.*": "the container args (--speculative-config)",
    "lora.*": Reported(LOCAL_ADAPTER, local_adapters, "the container args (--enable-lora, --lora-modules, ...)"),
    "sleep_mode": "the container args",
    "parallelism.data": "decode.parallelism.data and dataLocal (one pod: the chart requests tensor x dataLocal GPUs)",
    "parallelism.*": "the container args",
    "scheduling.*": "the container args",
    "compilation.*": "the container args",
    "kv_offload.*": "the container args (native); the container args and env (lmcache: LMCACHE_*)",
    "resources.gpus": Reported(
        "the chart requests tensor x dataLocal GPUs per pod, here tensor_parallel_size x parallelism.data",
        lambda p: p.gpus > 0 and p.gpus != p.vllm.tensor_parallel_size * p.vllm.data_parallel_size,
        "accelerator.type, and decode.parallelism.tensor (the chart requests that many GPUs)",
    ),
    "resources.gpu_memory_utilization": "the container args",
    "resources.tensor_parallel_size": "decode.parallelism.tensor and the container args",
    "resources.pipeline_parallel_size": Reported(
        "the chart counts GPUs as tensor x dataLocal per pod; a pipeline's GPUs on one node are not requested",
        lambda p: p.vllm.pipeline_parallel_size > 1 and p.multi_node is None,
        "the container args (across nodes: one stage per pod of decode.parallelism.workers)",
    ),
    "resources.nodes": "multinode (a LeaderWorkerSet) and decode.parallelism.workers",
    "resources.shm_size": "decode.volumes (dshm, an emptyDir in memory at /dev/shm)",
    "server.port": "routing.servicePort and the container args",
    "server.host": "the container args",
    "server.api_key.*": "decode.containers[0].env (VLLM_API_KEY from its Secret)",
    "server.hf_token.*": "decode.containers[0].env (HF_TOKEN from its Secret)",
    "server.env": "decode.containers[0].env",
    "server.secret_env": "decode.containers[0].env (valueFrom.secretKeyRef)",
    "server.extra_args": "the container args",
    "deploy.kubernetes.namespace": Reported(
        "a Helm release's namespace is helm install --namespace", lambda p: p.k8s_namespace is not None
    ),
    "deploy.kubernetes.replicas": "decode.replicas",
    "deploy.kubernetes.labels": "modelArtifacts.labels (the pods' labels)",
    "deploy.kubernetes.node_selector": "decode.nodeSelector",
    "deploy.kubernetes.tolerations.*": "decode.tolerations",
    "deploy.kubernetes.pvc.size": "modelArtifacts.size (the model volume)",
    "deploy.kubernetes.pvc.storage_class": Reported(
        "the chart's model volume for hf:// is an emptyDir; a claim is named as pvc://CLAIM/path instead",
        lambda p: p.k8s_pvc_storage_class is not None,
    ),
    "deploy.kubernetes.pvc.access_mode": Reported(
        "as pvc.storage_class", lambda p: p.k8s_pvc_access_mode != "ReadWriteOnce"
    ),
    "deploy.kubernetes.service_type": Reported(
        "llm-d serves through the Gateway and its InferencePool, not a Service type",
        lambda p: p.k8s_service_type != "ClusterIP",
    ),
    "deploy.kubernetes.probes.*": Reported(
        "the chart's multinode mode has one pod template for leader and workers, and a worker serves no /health",
        lambda p: p.multi_node is not None,
        "decode.containers[0].startupProbe",
    ),
    "deploy.kubernetes.resources.*": "decode.containers[0].resources",
    "deploy.kubernetes.network_policy.*": Reported(
        "the chart renders no NetworkPolicy", lambda p: p.k8s_network_policy
    ),
    "deploy.kubernetes.model_download": Reported(
        "vLLM downloads the model at start-up here", lambda p: p.k8s_model_download != "server"
    ),
    "deploy.kubernetes.autoscaling.*": Reported(
        "the chart's decode.autoscaling holds only `enabled` (its autoscaler is configured outside the chart)",
        lambda p: p.autoscaling is not None,
    ),
    "deploy.kubernetes.monitoring.scrape": Reported(
        "the chart renders a PodMonitor, or annotations on the pods; no ServiceMonitor",
        lambda p: p.monitoring.scrape == "servicemonitor",
        "decode.monitoring.podmonitor, or decode.podAnnotations (prometheus.io/*)",
    ),
    "deploy.kubernetes.monitoring.interval": "decode.monitoring.podmonitor.interval",
    "deploy.kubernetes.monitoring.labels": "decode.monitoring.podmonitor.labels",
    "deploy.kubernetes.monitoring.dashboard": Reported(
        "vllmtune render -t grafana prints the dashboard", lambda p: p.monitoring.dashboard
    ),
}


def llmd_warnings(plan: DeploymentPlan) -> tuple[str, ...]:
    """The profile fields these values do not carry, as warnings."""
    return warnings_for(TARGET, COVERAGE, plan)


def _env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in plan.env] + multi_node_env(plan) + secret_env(plan.secret_env)


def _helm_literal(text: str) -> str:
    """``text`` as a Go template that prints it (the chart passes env values through ``tpl``)."""
    return text.replace("{{", '{{ "{{" }}')


def values(plan: DeploymentPlan) -> dict[str, Any]:
    """The values mapping (``helm install -f``)."""
    h = plan.k8s_server_hardening
    period = plan.health.period_seconds
    container: dict[str, Any] = {
        "name": "vllm",
        "image": plan.image,
        "modelCommand": "custom",
        "command": list(plan.entrypoint),
        "args": list(plan.args),
        "env": _env(plan),
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        # the chart adds the GPUs from decode.parallelism
        "resources": {
            "limits": {"memory": h.memory_limit},
            "requests": {"cpu": h.cpu_request, "memory": h.memory_request},
        },
        "startupProbe": {
            "httpGet": {"path": plan.health.path, "port": plan.port},
            "periodSeconds": period,
            "failureThreshold": plan.health.startup_failures,
        },
        "mountModelVolume": True,
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    mn = plan.multi_node
    if mn is not None:  # every pod: the leader's part or a worker's, by its LeaderWorkerSet index
        container["command"] = ["bash", "-c", NODE_SH, "vllmtune-node"]
        container["args"] = [*plan.entrypoint, *plan.args]
        del container["startupProbe"]  # the one template: a worker pod never serves /health
    decode: dict[str, Any] = {
        "create": True,
        "replicas": plan.k8s_replicas,
        "parallelism": {
            "tensor": plan.vllm.tensor_parallel_size,
            "data": plan.vllm.data_parallel_size,
            "dataLocal": plan.vllm.data_parallel_size,
            "workers": mn.nodes if mn else 1,
        },
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}}],
    }
    if plan.k8s_node_selector:
        decode["nodeSelector"] = dict(plan.k8s_node_selector)
    if plan.k8s_tolerations:
        decode["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    m = plan.monitoring
    if m.scrape == "podmonitor":
        monitor: dict[str, Any] = {"enabled": True, "portName": "http", "path": "/metrics", "interval": m.interval}
        if m.labels:
            monitor["labels"] = dict(m.labels)
        decode["monitoring"] = {"podmonitor": monitor}
    elif m.scrape == "annotations":
        decode["podAnnotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(plan.port),
            "prometheus.io/path": "/metrics",
        }
    artifacts: dict[str, Any] = {
        "name": plan.model,
        "uri": f"hf://{plan.model}",
        "size": plan.k8s_pvc_size,
        "labels": {"llm-d.ai/inference-serving": "true", **dict(plan.k8s_extra_labels)},
    }
    escape_var_refs(decode)  # Kubernetes expands $(VAR) in command, args and env values
    for var in container["env"]:  # the chart renders env through Helm's tpl: {{ would be a template action
        if "value" in var:
            var["value"] = _helm_literal(var["value"])
    return {
        "fullnameOverride": plan.name,
        "multinode": mn is not None,
        "accelerator": {"type": "nvidia" if plan.gpus else "cpu"},
        "modelArtifacts": artifacts,
        "routing": {"servicePort": plan.port, "proxy": {"enabled": False}},
        "decode": decode,
        "prefill": {"create": False},
    }


def render_llmd(plan: DeploymentPlan) -> str:
    """The values file for ``helm install RELEASE llm-d-modelservice/llm-d-modelservice -f THIS_FILE``."""
    body = values(plan)
    warnings = llmd_warnings(plan)
    apply = "helm install RELEASE llm-d-modelservice/llm-d-modelservice -f THIS_FILE"
    return header(TARGET, plan, apply, warnings) + dump_yaml(body)
