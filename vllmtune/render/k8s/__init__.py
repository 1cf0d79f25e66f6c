"""Plan -> Kubernetes objects as dicts: the model cache claim, the server (a Deployment, or a
LeaderWorkerSet when it spans nodes), its Service, sidecars, and the optional download Job,
autoscaler (KEDA ScaledObject or HPA), Prometheus monitor and Grafana dashboard ConfigMap.

One module per object family; the shell and Python programs the pods run are package files
(vllmtune/render/scripts/)."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan
from vllmtune.profile.yamlio import dump_yaml, dump_yaml_stream
from vllmtune.render.k8s.autoscaling import (
    HPA_METRIC,
    autoscaling_queries,
    hpa,
    quantity,
    scaled_object,
)
from vllmtune.render.k8s.base import (
    DOWNLOAD_PY,
    LEADER_SH,
    ROLE_LABEL,
    SELECTOR_KEYS,
    WAIT_PY,
    WORKER_SH,
    cache_claim_name,
    escape_var_refs,
    harden,
    k8s_literal,
    network_policy,
    object_meta,
    pod_security_context,
    pod_selector,
    pvc,
    script,
    secret_env,
    security_context,
    stable_labels,
)
from vllmtune.render.k8s.download import (
    download_job,
    download_job_name,
    download_marker,
    downloads_digest,
)
from vllmtune.render.k8s.lws import (
    leader_worker_set,
    lws_name,
)
from vllmtune.render.k8s.monitoring import (
    dashboard_configmap,
    monitor,
)
from vllmtune.render.k8s.server import (
    deployment,
    server_network_policy,
    service,
)
from vllmtune.render.k8s.sidecars import (
    sidecar_objects,
)

__all__ = [
    "DOWNLOAD_PY",
    "HPA_METRIC",
    "LEADER_SH",
    "ROLE_LABEL",
    "SELECTOR_KEYS",
    "WAIT_PY",
    "WORKER_SH",
    "autoscaling_queries",
    "cache_claim_name",
    "dashboard_configmap",
    "deployment",
    "download_job",
    "download_job_name",
    "download_marker",
    "downloads_digest",
    "escape_var_refs",
    "harden",
    "hpa",
    "k8s_literal",
    "kubernetes_objects",
    "leader_worker_set",
    "lws_name",
    "monitor",
    "network_policy",
    "object_meta",
    "pod_security_context",
    "pod_selector",
    "pvc",
    "quantity",
    "render_kubernetes",
    "render_kubernetes_files",
    "scaled_object",
    "script",
    "secret_env",
    "security_context",
    "server_network_policy",
    "service",
    "sidecar_objects",
    "stable_labels",
]


def kubernetes_objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """Every object, in apply order, with every container string escaped for $(VAR)."""
    return [escape_var_refs(o) for o in _objects(plan)]


def _objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    objects = [pvc(plan)]
    if plan.k8s_model_download == "job" and plan.downloads:
        objects.append(download_job(plan))
    objects.append(leader_worker_set(plan) if plan.multi_node else deployment(plan))
    objects.append(service(plan))
    if plan.k8s_network_policy:
        objects.append(server_network_policy(plan))
    for sc in sorted(plan.sidecars, key=lambda s: not s.before_server):
        objects += sidecar_objects(plan, sc)
    if plan.inference_pool is not None:
        from vllmtune.render.k8s.gateway import endpoint_picker, inference_pool

        objects += endpoint_picker(plan, plan.inference_pool)
        objects.append(inference_pool(plan, plan.inference_pool))
    if plan.autoscaling is not None:
        objects.append(scaled_object(plan) if plan.autoscaling.engine == "keda" else hpa(plan))
    mon = monitor(plan)
    if mon is not None:
        objects.append(mon)
    if plan.monitoring.dashboard:
        objects.append(dashboard_configmap(plan))
    return objects


def _object_filename(obj: dict[str, Any]) -> str:
    """``deployment-llama-8b.yaml``: one file per object with ``-o DIR``."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def render_kubernetes(plan: DeploymentPlan) -> str:
    """All objects as one multi-document stream."""
    return dump_yaml_stream(kubernetes_objects(plan))


def render_kubernetes_files(plan: DeploymentPlan) -> dict[str, str]:
    """File name -> text, one object per file."""
    return {_object_filename(o): dump_yaml(o) for o in kubernetes_objects(plan)}
