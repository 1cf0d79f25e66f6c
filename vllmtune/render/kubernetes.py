"""Plan -> Kubernetes objects (Deployment, Service, PersistentVolumeClaim) as dicts."""

from __future__ import annotations

import math
from typing import Any

from vllmtune.plan import CONTAINER_HF_CACHE, DeploymentPlan, Sidecar, k8s_quantity
from vllmtune.profile.yamlio import dump_yaml

SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/instance")


def _meta(plan: DeploymentPlan, name: str) -> dict[str, Any]:
    labels = dict(plan.labels)
    labels.update(plan.k8s_extra_labels)
    meta: dict[str, Any] = {"name": name}
    if plan.k8s_namespace:
        meta["namespace"] = plan.k8s_namespace
    meta["labels"] = labels
    return meta


def _selector(plan: DeploymentPlan) -> dict[str, str]:
    labels = dict(plan.labels)
    return {k: labels[k] for k in SELECTOR_KEYS}


def cache_claim_name(plan: DeploymentPlan) -> str:
    """The PVC holding the Hugging Face cache."""
    return f"{plan.name}-hf-cache"


def deployment(plan: DeploymentPlan) -> dict[str, Any]:
    """The vLLM Deployment."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plan.env]
    env += [
        {"name": s.name, "valueFrom": {"secretKeyRef": {"name": s.k8s_secret, "key": s.k8s_key}}}
        for s in plan.secret_env
    ]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}}
    ]
    for i, m in enumerate(plan.mounts):
        if m.target == CONTAINER_HF_CACHE:
            mounts.append({"name": "hf-cache", "mountPath": m.target})
            volumes.append({"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}})
        else:  # a local model directory: it must exist on the node
            name = f"model-{i}"
            mounts.append({"name": name, "mountPath": m.target, "readOnly": m.read_only})
            volumes.append({"name": name, "hostPath": {"path": m.source, "type": "Directory"}})
    period = plan.health.period_seconds
    probe = {"httpGet": {"path": plan.health.path, "port": "http"}, "periodSeconds": period}
    container: dict[str, Any] = {
        "name": "vllm",
        "image": plan.image,
        "args": list(plan.args),
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
    }
    if env:
        container["env"] = env
    if plan.gpus:
        gpus = str(plan.gpus)
        container["resources"] = {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
    container["volumeMounts"] = mounts
    # The startup probe gives a first start (model download + load) its whole budget;
    # liveness/readiness only begin once it has passed.
    container["startupProbe"] = {**probe, "failureThreshold": max(1, math.ceil(plan.health.startup_seconds / period))}
    container["readinessProbe"] = {**probe, "failureThreshold": 3}
    container["livenessProbe"] = {**probe, "failureThreshold": 6, "timeoutSeconds": 5}
    pod_spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if plan.k8s_node_selector:
        pod_spec["nodeSelector"] = dict(plan.k8s_node_selector)
    if plan.gpus and plan.k8s_tolerations:
        pod_spec["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    meta = _meta(plan, plan.name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": plan.k8s_replicas,
            # GPUs and a ReadWriteOnce cache cannot be held by two pods at once: a rolling
            # update would wait forever for the new pod, so replace instead.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector(plan)},
            "template": {"metadata": {"labels": meta["labels"]}, "spec": pod_spec},
        },
    }


def service(plan: DeploymentPlan) -> dict[str, Any]:
    """The Service in front of the Deployment."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(plan, plan.name),
        "spec": {
            "type": plan.k8s_service_type,
            "selector": _selector(plan),
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pvc(plan: DeploymentPlan) -> dict[str, Any]:
    """The model cache claim."""
    spec: dict[str, Any] = {
        "accessModes": [plan.k8s_pvc_access_mode],
        "resources": {"requests": {"storage": plan.k8s_pvc_size}},
    }
    if plan.k8s_pvc_storage_class:
        spec["storageClassName"] = plan.k8s_pvc_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(plan, cache_claim_name(plan)),
        "spec": spec,
    }


def sidecar_objects(plan: DeploymentPlan, sc: Sidecar) -> list[dict[str, Any]]:
    """A sidecar's Deployment and Service (reaching vLLM through its Service name)."""
    name = plan.sidecar_name(sc.role)
    labels = {**plan.sidecar_labels(sc.role), **dict(plan.k8s_extra_labels)}
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if plan.k8s_namespace:
        meta["namespace"] = plan.k8s_namespace
    selector = {k: labels[k] for k in SELECTOR_KEYS}
    container: dict[str, Any] = {"name": sc.role, "image": sc.image}
    if sc.command:
        container["command"] = list(sc.command)
    container["args"] = sc.resolved_args({"vllm": plan.name, "redis": plan.sidecar_name("redis")})
    container["ports"] = [
        {"name": "http" if sc.role == "cache" else sc.role, "containerPort": sc.port, "protocol": "TCP"}
    ]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sc.env]
    env += [
        {"name": s.name, "valueFrom": {"secretKeyRef": {"name": s.k8s_secret, "key": s.k8s_key}}} for s in sc.secret_env
    ]
    if env:
        container["env"] = env
    port_name = container["ports"][0]["name"]
    if sc.health_path:
        probe = {"httpGet": {"path": sc.health_path, "port": port_name}, "periodSeconds": 10}
    else:
        probe = {"tcpSocket": {"port": port_name}, "periodSeconds": 10}
    container["readinessProbe"] = probe
    container["livenessProbe"] = {**probe, "failureThreshold": 6}
    replicas = plan.k8s_replicas if sc.role == "cache" else 1
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": plan.k8s_service_type if sc.publish else "ClusterIP",
            "selector": selector,
            "ports": [{"name": port_name, "port": sc.port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }
    return [dep, svc]


def kubernetes_objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """Every object, in apply order."""
    objects = [pvc(plan), deployment(plan), service(plan)]
    for sc in sorted(plan.sidecars, key=lambda s: s.role != "redis"):
        objects += sidecar_objects(plan, sc)
    return objects


def object_filename(obj: dict[str, Any]) -> str:
    """``deployment-llama-8b.yaml``: one file per object with ``-o DIR``."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def render_kubernetes(plan: DeploymentPlan) -> str:
    """All objects as one multi-document stream."""
    return "".join("---\n" + dump_yaml(o) for o in kubernetes_objects(plan))


def render_kubernetes_files(plan: DeploymentPlan) -> dict[str, str]:
    """File name -> text, one object per file."""
    return {object_filename(o): dump_yaml(o) for o in kubernetes_objects(plan)}
