"""Sidecars (the cache proxy, its Redis, the router): a Deployment, a Service and a NetworkPolicy each,
all alike, driven by the plan's Sidecar data."""

from __future__ import annotations

from typing import Any

from vllmtune.containers import image_build_hint
from vllmtune.plan import LABEL_PREFIX, DeploymentPlan, Sidecar
from vllmtune.render.k8s.base import (
    POD_READER,
    harden,
    network_policy,
    object_meta,
    pod_security_context,
    pod_selector,
    scrape_annotations,
    secret_env,
    service_account_with_role,
    template_meta,
)


def sidecar_objects(plan: DeploymentPlan, sc: Sidecar) -> list[dict[str, Any]]:
    """A sidecar's Deployment and Service (reaching vLLM through its Service name)."""
    name = plan.sidecar_name(sc.role)
    meta = object_meta(plan, name, sc.role)
    labels = meta["labels"]
    selector = pod_selector(labels)
    container: dict[str, Any] = {"name": sc.role, "image": sc.image}
    command = sc.k8s_command if sc.k8s_command is not None else sc.command
    if command:
        container["command"] = list(command)
    hosts = {"vllm": plan.name, "redis": plan.sidecar_name("redis"), "router": plan.sidecar_name("router")}
    container["args"] = sc.resolved_args(hosts, plan.port, kubernetes=True)
    container["ports"] = [{"name": sc.port_name, "containerPort": sc.port, "protocol": "TCP"}]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sc.env]
    env += secret_env(sc.secret_env)
    if sc.k8s_pod_reader:  # its args name its own namespace
        env.append({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}})
    if env:
        container["env"] = env
    port_name = sc.port_name
    h = sc.health
    check = {"httpGet": {"path": h.path, "port": port_name}} if h.path else {"tcpSocket": {"port": port_name}}
    probe = {**check, "periodSeconds": h.probe_period_seconds}
    container["readinessProbe"] = probe
    container["livenessProbe"] = {**probe, "failureThreshold": h.liveness_failures}
    harden(container, sc.hardening)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": sc.k8s_pod_reader,
        "securityContext": pod_security_context(sc.hardening),
        "containers": [container],
    }
    if sc.k8s_pod_reader:
        pod["serviceAccountName"] = name
    if sc.hardening.writable_paths:  # a read-only root: what the process writes is an emptyDir
        names = [f"writable-{i}" for i in range(len(sc.hardening.writable_paths))]
        container["volumeMounts"] = [
            {"name": n, "mountPath": path} for n, path in zip(names, sc.hardening.writable_paths, strict=True)
        ]
        pod["volumes"] = [{"name": n, "emptyDir": {"sizeLimit": sc.hardening.writable_size}} for n in names]
    annotations = scrape_annotations(plan, sc.port) if sc.health_path else {}
    dep_meta = meta
    hint = image_build_hint(sc)
    if hint:  # the proxy image is on no registry until someone pushes it there
        dep_meta = {**meta, "annotations": {f"{LABEL_PREFIX}/image-build": hint}}
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": dep_meta,
        "spec": {
            "replicas": sc.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": template_meta(plan, labels, annotations),
                "spec": pod,
            },
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
    objects = [*(service_account_with_role(meta, [POD_READER]) if sc.k8s_pod_reader else []), dep, svc]
    if sc.admits:
        sources = [pod_selector(plan.sidecar_labels(r)) for r in sc.admits]
        objects.append(network_policy(plan, meta, selector, sc.port, sources))
    return objects
