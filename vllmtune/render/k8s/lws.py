"""A server across nodes: a LeaderWorkerSet whose leader is the Ray head and runs vLLM."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan
from vllmtune.render.k8s.base import ROLE_LABEL, WORKER_SH, harden, object_meta, scrape_annotations, template_meta
from vllmtune.render.k8s.server import budget_annotations, pod_spec, server_container, server_env, server_volumes


def lws_name(plan: DeploymentPlan) -> str:
    """The LeaderWorkerSet's name. Not the Service's: the LWS controller creates a headless
    Service named after the LWS for its pods' DNS (LWS_LEADER_ADDRESS), and skips it when a
    Service of that name already exists -- the workers would never find the leader."""
    return f"{plan.name}-group"


def leader_worker_set(plan: DeploymentPlan) -> dict[str, Any]:
    """One server across ``nodes`` pods: a LeaderWorkerSet whose leader is the Ray head and
    runs vLLM (pipeline parallel across the group's pods, tensor parallel inside each)."""
    mn = plan.multi_node
    assert mn is not None
    _, volumes = server_volumes(plan)
    meta = object_meta(plan, lws_name(plan))
    meta["annotations"] = budget_annotations(plan)
    leader_labels = {**meta["labels"], ROLE_LABEL: "leader"}
    worker_labels = {**meta["labels"], ROLE_LABEL: "worker"}
    mounts, _ = server_volumes(plan)
    worker: dict[str, Any] = {
        "name": "ray-worker",
        "image": plan.image,
        "command": ["bash", "-c", WORKER_SH, "vllmtune-worker"],
        "env": server_env(plan),
        "volumeMounts": mounts,
    }
    harden(worker, plan.k8s_server_hardening, plan.gpus)
    spec: dict[str, Any] = {}
    if plan.autoscaling is None:
        spec["replicas"] = plan.k8s_replicas
    spec["leaderWorkerTemplate"] = {
        "size": mn.nodes,
        # A lost pod breaks the whole Ray group: restart the group together.
        "restartPolicy": "RecreateGroupOnPodRestart",
        "leaderTemplate": {
            "metadata": template_meta(plan, leader_labels, scrape_annotations(plan, plan.port)),
            "spec": pod_spec(plan, [server_container(plan)], volumes),
        },
        "workerTemplate": {
            "metadata": {"labels": worker_labels},
            "spec": pod_spec(plan, [worker], volumes),
        },
    }
    # Workers are created with the leader (not after it is ready: the leader waits for them).
    spec["startupPolicy"] = "LeaderCreated"
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta, "spec": spec}
