"""Pre-downloading the weights: an init container, or one Job whose marker the servers wait for."""

from __future__ import annotations

import hashlib
from typing import Any

from vllmtune.plan import CONTAINER_HF_CACHE, DeploymentPlan
from vllmtune.render.k8s.base import (
    DOWNLOAD_PY,
    WAIT_PY,
    cache_claim_name,
    harden,
    object_meta,
    plan_secret_env,
    pod_security_context,
    stable_labels,
)


def downloads_digest(plan: DeploymentPlan) -> str:
    """Short digest of what is downloaded: names the download Job and its marker file."""
    return hashlib.sha256("\n".join(plan.downloads).encode()).hexdigest()[:10]


def download_job_name(plan: DeploymentPlan) -> str:
    """A Job's pod template is immutable: a new set of downloads is a new Job."""
    return f"{plan.name}-download-{downloads_digest(plan)}"


def download_marker(plan: DeploymentPlan) -> str:
    """File the download Job writes when done; named after what it downloaded, so that a
    changed model waits for a new download."""
    return f"{CONTAINER_HF_CACHE}/.vllmtune/{plan.name}-{downloads_digest(plan)}.done"


def _download_container(plan: DeploymentPlan, marker: bool) -> dict[str, Any]:
    env = [{"name": "VLLMTUNE_MARKER", "value": download_marker(plan)}] if marker else []
    env += plan_secret_env(plan, only=("HF_TOKEN",))
    container: dict[str, Any] = {
        "name": "download",
        "image": plan.image,
        "command": ["python3", "-c", DOWNLOAD_PY],
        "args": list(plan.downloads),
    }
    if env:
        container["env"] = env
    container["volumeMounts"] = [{"name": "hf-cache", "mountPath": CONTAINER_HF_CACHE}]
    return harden(container, plan.k8s_download_hardening)


def init_containers(plan: DeploymentPlan) -> list[dict[str, Any]]:
    if not plan.downloads or plan.k8s_model_download == "server":
        return []
    if plan.k8s_model_download == "init-container":
        return [_download_container(plan, marker=False)]
    wait = {
        "name": "wait-for-model",
        "image": plan.image,
        "command": ["python3", "-c", WAIT_PY],
        "env": [
            {"name": "VLLMTUNE_MARKER", "value": download_marker(plan)},
            {"name": "VLLMTUNE_JOB", "value": download_job_name(plan)},
        ],
        "volumeMounts": [{"name": "hf-cache", "mountPath": CONTAINER_HF_CACHE}],
    }
    return [harden(wait, plan.k8s_download_hardening)]


def download_job(plan: DeploymentPlan) -> dict[str, Any]:
    """One Job that fills the shared cache; server pods wait for its marker file."""
    meta = object_meta(plan, download_job_name(plan), "download")
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(plan.k8s_download_hardening),
        "restartPolicy": "OnFailure",
        "containers": [_download_container(plan, marker=True)],
        "volumes": [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}}],
    }
    if plan.k8s_node_selector:  # GPU nodes are usually tainted: tolerate what the servers do
        pod["nodeSelector"] = dict(plan.k8s_node_selector)
        if plan.k8s_tolerations:
            pod["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": plan.k8s_download_backoff_limit,
            "template": {"metadata": {"labels": stable_labels(meta["labels"])}, "spec": pod},
        },
    }
