"""``-t production-stack``: Helm values for the vllm-project production-stack chart (vllm-stack).

The chart puts the model and ``extraArgs`` into the container's command, and ``env`` into its
environment, where Kubernetes expands ``$(VAR)``: those values are escaped (``$$``).
One ``servingEngineSpec.modelSpec[]`` entry runs the profile's server. The chart itself passes
``vllm serve MODEL --host 0.0.0.0 --port PORT`` and always one of ``--enable-prefix-caching`` /
``--no-enable-prefix-caching`` (off when ``vllmConfig.enablePrefixCaching`` is absent). The
settings the chart has keys for (max model len, dtype, TP, max num seqs, GPU memory share) are
read from the plan's typed settings into ``vllmConfig``; every other flag of the plan's argv
follows in ``vllmConfig.extraArgs``, in the pinned version's spelling, after the chart's own
flags (prefix caching and chunked prefill too, so that the version's spelling is the one vLLM
keeps). A multi-node server is the chart's ``raySpec``: a KubeRay RayCluster whose head runs
vLLM (``--distributed-executor-backend ray``) once ``replicaCount`` workers (nodes - 1) have
joined; the chart sets ``VLLM_HOST_IP`` on each pod, the plan's NCCL/GLOO interfaces go in
``env``; one RayCluster is one replica (the chart's ScaledObject is for Deployments only). The
chart has no place for the prompt-cache proxy: ``vllmtune render -t kubernetes`` renders it.
Checked against the chart's own ``values.schema.json`` (tests/render/test_exporters.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vllmtune.plan import Default, k8s_quantity
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
from vllmtune.render.k8s.base import k8s_literal

if TYPE_CHECKING:
    from vllmtune.plan import DeploymentPlan

TARGET = "production-stack"
GPU_RESOURCE = "nvidia.com/gpu"


# vllmConfig keys the chart turns into `--flag value` (its template), and the setting each holds.
VALUE_KEYS = (
    ("maxModelLen", "max_model_len"),
    ("dtype", "dtype"),
    ("tensorParallelSize", "tensor_parallel_size"),
    ("maxNumSeqs", "max_num_seqs"),
    ("gpuMemoryUtilization", "gpu_memory_utilization"),
)


def _ray(plan: DeploymentPlan) -> bool:
    """A multi-node server: the chart's raySpec."""
    return plan.multi_node is not None


RAY_NO_KEDA = "the chart's RayCluster (raySpec) is not autoscaled: its ScaledObject is for Deployments only"

COVERAGE: Coverage = {
    **COMMON,
    "name": "servingEngineSpec.modelSpec[0].name",
    "vllm.version": "servingEngineSpec.modelSpec[0].tag (v<version>)",
    "vllm.image": "servingEngineSpec.modelSpec[0].repository",
    "model.id": Reported(
        LOCAL_MODEL, lambda p: p.model_host_path is not None, "servingEngineSpec.modelSpec[0].modelURL"
    ),
    "model.revision": "vllmConfig.extraArgs (--revision)",
    "model.tokenizer": "vllmConfig.extraArgs (--tokenizer)",
    "model.served_name": "vllmConfig.extraArgs (--served-model-name)",
    "model.max_model_len": "vllmConfig.maxModelLen",
    "model.dtype": "vllmConfig.dtype",
    "model.trust_remote_code": "vllmConfig.extraArgs (--trust-remote-code)",
    "prompt_cache.*": Reported(
        "the chart has no place for the prompt-cache proxy; deploy it beside the release "
        "(vllmtune render -t kubernetes renders it)",
        lambda p: p.prompt_cache is not None,
    ),
    "prefix_caching": Reported(
        "the chart always passes --enable-prefix-caching or --no-enable-prefix-caching, and without "
        "a setting it turns prefix caching off (vLLM's own default is on since 0.8.0): set prefix_caching",
        lambda p: isinstance(p.vllm.enable_prefix_caching, Default),
        "vllmConfig.enablePrefixCaching",
    ),
    "batching.max_num_seqs": "vllmConfig.maxNumSeqs",
    "batching.max_num_batched_tokens": "vllmConfig.extraArgs (--max-num-batched-tokens)",
    "batching.chunked_prefill": "vllmConfig.extraArgs (the pinned version's spelling)",
    "quantization.method": "vllmConfig.extraArgs (--quantization)",
    "quantization.checkpoint": Reported(
        LOCAL_MODEL, lambda p: p.model_host_path is not None, "servingEngineSpec.modelSpec[0].modelURL"
    ),
    "quantization.kv_cache_dtype": "vllmConfig.extraArgs (--kv-cache-dtype)",
    "speculative.*": "vllmConfig.extraArgs (--speculative-config)",
    "lora.*": Reported(LOCAL_ADAPTER, local_adapters, "vllmConfig.extraArgs (--enable-lora, --lora-modules, ...)"),
    "sleep_mode": "vllmConfig.extraArgs",
    "parallelism.*": "vllmConfig.extraArgs",
    "scheduling.*": "vllmConfig.extraArgs",
    "compilation.*": "vllmConfig.extraArgs",
    "kv_offload.*": "vllmConfig.extraArgs (native); lmcacheConfig (lmcache: enabled, cpuOffloadingBufferSize per rank)",
    "resources.gpus": "servingEngineSpec.modelSpec[0].resources (nvidia.com/gpu)",
    "resources.gpu_memory_utilization": "vllmConfig.gpuMemoryUtilization",
    "resources.tensor_parallel_size": "vllmConfig.tensorParallelSize (the chart then mounts /dev/shm)",
    "resources.pipeline_parallel_size": "vllmConfig.extraArgs (--pipeline-parallel-size)",
    "resources.nodes": "servingEngineSpec.modelSpec[0].raySpec (a RayCluster) and replicaCount (nodes - 1 workers)",
    "resources.shm_size": "servingEngineSpec.modelSpec[0].shmSize",
    "server.port": "servingEngineSpec.containerPort",
    "server.host": Reported("the chart always binds 0.0.0.0", lambda p: p.host != "0.0.0.0"),
    "server.api_key.*": "servingEngineSpec.vllmApiKey (secretName, secretKey)",
    "server.hf_token.*": "servingEngineSpec.modelSpec[0].hf_token (secretName, secretKey)",
    "server.env": "servingEngineSpec.modelSpec[0].env",
    "server.secret_env": "servingEngineSpec.modelSpec[0].env (valueFrom.secretKeyRef)",
    "server.extra_args": "vllmConfig.extraArgs",
    "deploy.kubernetes.namespace": Reported(
        "a Helm release's namespace is helm install --namespace", lambda p: p.k8s_namespace is not None
    ),
    "deploy.kubernetes.replicas": Reported(
        "with raySpec, replicaCount counts the Ray workers: the chart runs one RayCluster, one replica",
        lambda p: _ray(p) and p.k8s_replicas > 1,
        "servingEngineSpec.modelSpec[0].replicaCount",
    ),
    "deploy.kubernetes.labels": "servingEngineSpec.modelSpec[0].labels and podLabels",
    "deploy.kubernetes.node_selector": "servingEngineSpec.modelSpec[0].nodeSelectorTerms",
    "deploy.kubernetes.tolerations.*": "servingEngineSpec.tolerations",
    "deploy.kubernetes.pvc.size": "servingEngineSpec.modelSpec[0].pvcStorage",
    "deploy.kubernetes.pvc.storage_class": "servingEngineSpec.modelSpec[0].storageClass",
    "deploy.kubernetes.pvc.access_mode": "servingEngineSpec.modelSpec[0].pvcAccessMode",
    "deploy.kubernetes.service_type": "routerSpec.serviceType (clients reach the router)",
    "deploy.kubernetes.probes.*": Reported(
        "the chart's RayCluster head has probes of its own (every node joined, then /health)",
        _ray,
        "servingEngineSpec.startupProbe",
    ),
    "deploy.kubernetes.resources.*": "servingEngineSpec.modelSpec[0].resources",
    "deploy.kubernetes.network_policy.*": Reported(
        "the chart renders no NetworkPolicy", lambda p: p.k8s_network_policy
    ),
    "deploy.kubernetes.model_download": Reported(
        "the chart's server downloads the model itself", lambda p: p.k8s_model_download != "server"
    ),
    "deploy.kubernetes.autoscaling.engine": Reported(
        "the chart autoscales with KEDA only", lambda p: p.autoscaling is not None and p.autoscaling.engine != "keda"
    ),
    "deploy.kubernetes.autoscaling.min_replicas": Reported(
        RAY_NO_KEDA,
        lambda p: p.autoscaling is not None and _ray(p),
        "servingEngineSpec.modelSpec[0].keda.minReplicaCount",
    ),
    "deploy.kubernetes.autoscaling.max_replicas": Reported(
        RAY_NO_KEDA,
        lambda p: p.autoscaling is not None and _ray(p),
        "servingEngineSpec.modelSpec[0].keda.maxReplicaCount",
    ),
    "deploy.kubernetes.autoscaling.cooldown": Reported(
        RAY_NO_KEDA,
        lambda p: p.autoscaling is not None and _ray(p),
        "servingEngineSpec.modelSpec[0].keda.cooldownPeriod",
    ),
    "deploy.kubernetes.autoscaling.metric": Reported(
        "the chart's values.schema.json types keda.triggers as an object, but KEDA needs a list: "
        "the chart's own trigger is used (vllm:num_requests_waiting, threshold 5)",
        lambda p: p.autoscaling is not None,
    ),
    "deploy.kubernetes.autoscaling.target": Reported("as autoscaling.metric", lambda p: p.autoscaling is not None),
    "deploy.kubernetes.autoscaling.prometheus_url": Reported(
        "as autoscaling.metric", lambda p: p.autoscaling is not None
    ),
    "deploy.kubernetes.monitoring.scrape": "servingEngineSpec.serviceMonitor, or podAnnotations (prometheus.io/*)",
    "deploy.kubernetes.monitoring.interval": "servingEngineSpec.serviceMonitor.interval",
    "deploy.kubernetes.monitoring.labels": "servingEngineSpec.serviceMonitor.additionalLabels",
    "deploy.kubernetes.monitoring.dashboard": Reported(
        "the chart ships its own dashboards (vllmtune render -t grafana prints vllmtune's)",
        lambda p: p.monitoring.dashboard,
    ),
}


def production_stack_warnings(plan: DeploymentPlan) -> tuple[str, ...]:
    """The profile fields these values do not carry, as warnings."""
    return warnings_for(TARGET, COVERAGE, plan)


# kv_offload.backend lmcache: the chart's lmcacheConfig writes the same --kv-transfer-config
# (LMCacheConnectorV1, kv_both) and, from cpuOffloadingBufferSize, LMCACHE_LOCAL_CPU and
# LMCACHE_MAX_LOCAL_CPU_SIZE (helm/templates/deployment-vllm-multi.yaml) -- only when the size's
# integer part is above 0 (`gt (int ...) 0`): a smaller size stays in env.
LMCACHE_CHART_ENV = ("LMCACHE_LOCAL_CPU", "LMCACHE_MAX_LOCAL_CPU_SIZE")


def _lmcache_config(plan: DeploymentPlan) -> dict[str, Any] | None:
    """lmcacheConfig for kv_offload.backend lmcache (None: another backend, or none)."""
    if plan.vllm.kv_offloading_backend != "lmcache":
        return None
    gib = float(dict(plan.env)["LMCACHE_MAX_LOCAL_CPU_SIZE"])
    if gib < 1:
        return {"enabled": True}
    return {"enabled": True, "cpuOffloadingBufferSize": int(gib) if gib.is_integer() else gib}


def _vllm_config(plan: DeploymentPlan) -> dict[str, Any]:
    """vllmConfig: the settings the chart has keys for, typed; the rest of the plan's argv in
    ``extraArgs`` (without what the chart passes itself: the model, from modelURL)."""
    s = plan.vllm
    config: dict[str, Any] = {}
    if not isinstance(s.enable_prefix_caching, Default):
        # The chart writes --enable-prefix-caching, or --no-enable-prefix-caching, which not every
        # version has (0.33: --disable-prefix-caching); the argv's own flag, in the version's
        # spelling, follows in extraArgs and wins (argparse keeps the last).
        off = s.enable_prefix_caching is False and s.flag("enable_prefix_caching") == "--no-enable-prefix-caching"
        config["enablePrefixCaching"] = not off
    taken = {"model"}
    for key, dest in VALUE_KEYS:
        value = getattr(s, dest)
        if not isinstance(value, Default):
            config[key] = value
            taken.add(dest)
    if _lmcache_config(plan) is not None:
        taken.add("kv_transfer_config")  # lmcacheConfig renders it
    spelled = {s.flag(dest) for dest in taken} - {None}
    args, skip = [], False
    for word in plan.args:  # drop the taken flags with their values
        if skip:
            skip = False
        elif word in spelled:
            skip = True
        else:
            args.append(k8s_literal(word))
    config["extraArgs"] = args
    return config


def _secret_ref(plan: DeploymentPlan, var: str) -> dict[str, str] | None:
    for e in plan.secret_env:
        if e.name == var:
            return {"secretName": e.k8s_secret, "secretKey": e.k8s_key}
    return None


def _env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    lmcache = _lmcache_config(plan)
    chart = LMCACHE_CHART_ENV if lmcache is not None and "cpuOffloadingBufferSize" in lmcache else ()
    env: list[dict[str, Any]] = [{"name": k, "value": k8s_literal(v)} for k, v in plan.env if k not in chart]
    if plan.multi_node is not None:  # the chart sets VLLM_HOST_IP on every pod of its RayCluster
        env += [{"name": k, "value": v} for k, v in plan.multi_node.socket_env]
    env += [
        {"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.k8s_secret, "key": e.k8s_key}}}
        for e in plan.secret_env
        if e.name not in ("HF_TOKEN", "VLLM_API_KEY")
    ]
    return env


def _resources(plan: DeploymentPlan) -> dict[str, Any]:
    h = plan.k8s_server_hardening
    requests: dict[str, str] = {"cpu": h.cpu_request, "memory": h.memory_request}
    limits: dict[str, str] = {"memory": h.memory_limit}
    if plan.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(plan.gpus)
    return {"requests": requests, "limits": limits}


def values(plan: DeploymentPlan) -> dict[str, Any]:
    """The values mapping (``helm install -f``)."""
    repository, _, tag = plan.image.rpartition(":")
    extra = dict(plan.k8s_extra_labels)
    spec: dict[str, Any] = {
        "name": plan.name,
        "repository": repository,
        "tag": tag,
        "modelURL": k8s_literal(plan.model),
        "replicaCount": plan.k8s_replicas,
        "resources": _resources(plan),
        "pvcStorage": plan.k8s_pvc_size,
        "pvcAccessMode": [plan.k8s_pvc_access_mode],
        "shmSize": k8s_quantity(plan.shm.size),
        "vllmConfig": _vllm_config(plan),
    }
    lmcache = _lmcache_config(plan)
    if lmcache is not None:
        spec["lmcacheConfig"] = lmcache
    if plan.k8s_pvc_storage_class is not None:
        spec["storageClass"] = plan.k8s_pvc_storage_class
    if extra:
        spec["labels"] = extra
        spec["podLabels"] = extra
    hf = _secret_ref(plan, "HF_TOKEN")
    if hf is not None:
        spec["hf_token"] = hf
    mn = plan.multi_node
    if mn is not None:
        spec["replicaCount"] = mn.nodes - 1  # the Ray workers; the head is the first node
        spec["raySpec"] = {"enabled": True, "headNode": {"resources": _resources(plan)}}
    env = _env(plan)
    if env:
        spec["env"] = env
    if plan.k8s_node_selector:
        spec["nodeSelectorTerms"] = [
            {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in plan.k8s_node_selector]}
        ]
    m = plan.monitoring
    if m.scrape == "annotations":
        spec["podAnnotations"] = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(plan.port),
            "prometheus.io/path": "/metrics",
        }
    a = plan.autoscaling
    if a is not None and a.engine == "keda" and mn is None:
        spec["keda"] = {
            "enabled": True,
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": a.polling_seconds,
            "cooldownPeriod": a.cooldown_seconds,
        }
    period = plan.health.period_seconds
    engine: dict[str, Any] = {
        "containerPort": plan.port,
        "startupProbe": {
            "periodSeconds": period,
            "failureThreshold": plan.health.startup_failures,
            "httpGet": {"path": plan.health.path, "port": plan.port},
        },
        "tolerations": [dict(t) for t in plan.k8s_tolerations],
        "modelSpec": [spec],
    }
    key = _secret_ref(plan, "VLLM_API_KEY")
    if key is not None:
        engine["vllmApiKey"] = key
    if m.scrape == "servicemonitor":
        monitor: dict[str, Any] = {"enabled": True, "interval": m.interval}
        if m.labels:
            monitor["additionalLabels"] = dict(m.labels)
        engine["serviceMonitor"] = monitor
    return {"servingEngineSpec": engine, "routerSpec": {"serviceType": plan.k8s_service_type}}


def render_production_stack(plan: DeploymentPlan) -> str:
    """The values file for ``helm install RELEASE vllm/vllm-stack -f THIS_FILE``."""
    body = values(plan)
    warnings = production_stack_warnings(plan)
    apply = "helm install RELEASE vllm/vllm-stack -f THIS_FILE (the chart repo: vllm-project/production-stack)"
    return header(TARGET, plan, apply, warnings) + dump_yaml(body)
