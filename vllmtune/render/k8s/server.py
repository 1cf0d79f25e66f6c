"""The one-node server: its Deployment, Service, pod, container, probes and NetworkPolicy."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import CONTAINER_HF_CACHE, DeploymentPlan, k8s_quantity
from vllmtune.render.k8s.base import (
    LEADER_SH,
    ROLE_LABEL,
    cache_claim_name,
    harden,
    network_policy,
    object_meta,
    plan_secret_env,
    pod_security_context,
    pod_selector,
    scrape_annotations,
    template_meta,
)
from vllmtune.render.k8s.download import init_containers


def server_env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plan.env]
    if plan.k8s_hf_offline:
        # The Job downloaded everything: never let a replica start a second download.
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
    return env + multi_node_env(plan) + plan_secret_env(plan)


def multi_node_env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """What every pod of a multi-node server needs (none for one node): its own address for
    vLLM, the NCCL/GLOO interfaces, and what the Ray scripts read (leader and workers alike)."""
    mn = plan.multi_node
    if mn is None:
        return []
    env: list[dict[str, Any]] = []
    if mn.host_ip_from_pod:
        env.append({"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    env += [{"name": k, "value": v} for k, v in mn.socket_env]
    env += [
        {"name": "VLLMTUNE_NODES", "value": str(mn.nodes)},
        {"name": "VLLMTUNE_RAY_PORT", "value": str(mn.ray_port)},
        {"name": "VLLMTUNE_RAY_WAIT_SECONDS", "value": str(mn.ray_wait_seconds)},
    ]
    return env


def server_volumes(plan: DeploymentPlan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumeMounts, volumes) of a server pod: /dev/shm, the HF cache claim, local dirs."""
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}}
    ]
    for i, m in enumerate(plan.mounts):
        if m.target == CONTAINER_HF_CACHE:
            mounts.append({"name": "hf-cache", "mountPath": m.target})
            volumes.append({"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}})
        else:  # a local model or adapter directory: it must exist on the node
            name = f"model-{i}"
            mounts.append({"name": name, "mountPath": m.target, "readOnly": m.read_only})
            volumes.append({"name": name, "hostPath": {"path": m.source, "type": "Directory"}})
    return mounts, volumes


def _probes(plan: DeploymentPlan) -> dict[str, Any]:
    h = plan.health
    probe = {"httpGet": {"path": h.path, "port": "http"}, "periodSeconds": h.period_seconds}
    # The startup probe gives a first start (download unless done before + load + warm-up)
    # its whole budget; liveness/readiness only begin once it has passed.
    return {
        "startupProbe": {**probe, "failureThreshold": h.startup_failures},
        "readinessProbe": {**probe, "failureThreshold": h.readiness_failures},
        "livenessProbe": {
            **probe,
            "failureThreshold": h.liveness_failures,
            "timeoutSeconds": h.liveness_timeout_seconds,
        },
    }


def pod_spec(plan: DeploymentPlan, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {  # vLLM never calls the API server
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(plan.k8s_server_hardening),
    }
    init = init_containers(plan)
    if init:
        spec["initContainers"] = init
    spec["containers"] = containers
    spec["volumes"] = volumes
    if plan.k8s_node_selector:
        spec["nodeSelector"] = dict(plan.k8s_node_selector)
    if plan.gpus and plan.k8s_tolerations:
        spec["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    return spec


def server_container(plan: DeploymentPlan) -> dict[str, Any]:
    env = server_env(plan)
    mounts, _ = server_volumes(plan)
    container: dict[str, Any] = {"name": "vllm", "image": plan.image}
    if plan.multi_node:
        container["command"] = ["bash", "-c", LEADER_SH, "vllmtune-leader"]
        args = [*plan.entrypoint, *plan.args]
    else:
        args = list(plan.args)
    container["args"] = args
    container["ports"] = [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}]
    if env:
        container["env"] = env
    harden(container, plan.k8s_server_hardening, plan.gpus)
    container["volumeMounts"] = mounts
    container.update(_probes(plan))
    return container


def budget_annotations(plan: DeploymentPlan) -> dict[str, str]:
    return {"vllmtune.io/startup-budget": plan.startup_budget}


def deployment(plan: DeploymentPlan) -> dict[str, Any]:
    """The vLLM Deployment (one node per replica)."""
    _, volumes = server_volumes(plan)
    meta = object_meta(plan, plan.name)
    meta["annotations"] = budget_annotations(plan)
    labels = dict(meta["labels"])
    spec: dict[str, Any] = {}
    if plan.autoscaling is None:  # else the autoscaler owns the count: apply must not reset it
        spec["replicas"] = plan.k8s_replicas
    # GPUs and a ReadWriteOnce cache cannot be held by two pods at once: a rolling
    # update would wait forever for the new pod, so replace instead.
    spec["strategy"] = {"type": "Recreate"}
    spec["selector"] = {"matchLabels": pod_selector(labels)}
    spec["template"] = {
        "metadata": template_meta(plan, labels, scrape_annotations(plan, plan.port)),
        "spec": pod_spec(plan, [server_container(plan)], volumes),
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def service(plan: DeploymentPlan) -> dict[str, Any]:
    """The Service in front of the server (the leader pods of a multi-node server)."""
    meta = object_meta(plan, plan.name)
    selector = pod_selector(meta["labels"])
    if plan.multi_node:
        selector[ROLE_LABEL] = "leader"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": plan.k8s_service_type,
            "selector": selector,
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def server_network_policy(plan: DeploymentPlan) -> dict[str, Any]:
    """deploy.kubernetes.network_policy: vLLM admits the proxy (so that no client bypasses the
    cache and its key check) and the pods the profile lists."""
    meta = object_meta(plan, plan.name)
    sources = [pod_selector(plan.sidecar_labels(sc.role)) for sc in plan.sidecars if sc.fronts_server]
    sources += [dict(sel) for sel in plan.k8s_network_policy_from]
    if plan.inference_pool is not None:  # the endpoint picker reads each server's /metrics
        from vllmtune.render.k8s.gateway import EPP_COMPONENT

        sources.append(pod_selector(object_meta(plan, plan.inference_pool.epp_service, EPP_COMPONENT)["labels"]))
    pol = network_policy(plan, meta, pod_selector(meta["labels"]), plan.port, sources)
    if not sources:  # nobody named: the port stays open to every pod, every other port closed
        pol["spec"]["ingress"] = [{"ports": [{"port": plan.port, "protocol": "TCP"}]}]
    return pol
