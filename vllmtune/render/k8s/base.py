"""What every Kubernetes object family shares: metadata and selectors, hardening, secrets,
the model cache claim, NetworkPolicies, $(VAR) escaping and the shipped scripts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from vllmtune.plan import LABEL_PREFIX, DeploymentPlan, Hardening, SecretEnv

# Pods of the server, of each sidecar and of the download Job differ by component: every
# selector includes it, so no Service or controller ever picks another component's pods.
SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
ROLE_LABEL = "vllmtune.io/role"  # leader | worker, in a LeaderWorkerSet


@cache
def script(name: str) -> str:
    """A program shipped in vllmtune/render/scripts/ (run in the vLLM image)."""
    return resources.files("vllmtune.render").joinpath("scripts", name).read_text(encoding="utf-8")


# Fixed programs run in the vLLM image (which has python3 and huggingface_hub). User data
# (repository ids, paths) reaches them as arguments and environment, never as code.
DOWNLOAD_PY = script("download_weights.py")
WAIT_PY = script("wait_for_model.py")
# Multi-node: the leader pod is the Ray head and runs vLLM once every node has joined; the
# workers join the head (LWS_LEADER_ADDRESS is set by LeaderWorkerSet) and block.
LEADER_SH = script("ray_leader.sh")
WORKER_SH = script("ray_worker.sh")
# The same pod template for leader and workers (llm-d's chart): LeaderWorkerSet numbers the
# pods (LWS_WORKER_INDEX 0 is the leader), and each runs its part.
NODE_SH = 'if [ "${LWS_WORKER_INDEX:-0}" = 0 ]; then\n' + LEADER_SH + "else\n" + WORKER_SH + "fi\n"


def object_meta(plan: DeploymentPlan, name: str, component: str = "server") -> dict[str, Any]:
    """metadata of one object: name, namespace, the plan's labels with this component."""
    labels = dict(plan.labels)
    labels["app.kubernetes.io/component"] = component
    labels.update(plan.k8s_extra_labels)
    meta: dict[str, Any] = {"name": name}
    if plan.k8s_namespace:
        meta["namespace"] = plan.k8s_namespace
    meta["labels"] = labels
    return meta


def pod_selector(labels: dict[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in SELECTOR_KEYS}


def cache_claim_name(plan: DeploymentPlan) -> str:
    """The PVC holding the Hugging Face cache."""
    return f"{plan.name}-hf-cache"


def secret_env(secrets: Iterable[SecretEnv]) -> list[dict[str, Any]]:
    """Container env entries reading secrets from their Kubernetes Secret keys."""
    return [{"name": s.name, "valueFrom": {"secretKeyRef": {"name": s.k8s_secret, "key": s.k8s_key}}} for s in secrets]


def plan_secret_env(plan: DeploymentPlan, only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    return secret_env(s for s in plan.secret_env if only is None or s.name in only)


def _resources(h: Hardening, gpus: int = 0) -> dict[str, Any]:
    """Requests and limits; no CPU limit (CFS throttling stalls an engine or event loop)."""
    requests: dict[str, str] = {"cpu": h.cpu_request, "memory": h.memory_request}
    limits: dict[str, str] = {"memory": h.memory_limit}
    if gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(gpus)
    return {"limits": limits, "requests": requests}


def security_context(h: Hardening) -> dict[str, Any]:
    """A container's securityContext: no privilege escalation, no capabilities, the runtime's
    seccomp profile; non-root and a read-only root where the image allows (the plan says)."""
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if h.run_as_user is not None:
        ctx["runAsNonRoot"] = True
        ctx["runAsUser"] = h.run_as_user
        ctx["runAsGroup"] = h.run_as_user
    if h.read_only_root:
        ctx["readOnlyRootFilesystem"] = True
    return ctx


def pod_security_context(h: Hardening) -> dict[str, Any]:
    """The pod's securityContext, matching its main container's."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if h.run_as_user is not None:
        ctx.update(runAsNonRoot=True, runAsUser=h.run_as_user, runAsGroup=h.run_as_user, fsGroup=h.run_as_user)
    return ctx


def harden(container: dict[str, Any], h: Hardening, gpus: int = 0) -> dict[str, Any]:
    """``container`` with its resources and securityContext (in place, returned)."""
    container["resources"] = _resources(h, gpus)
    container["securityContext"] = security_context(h)
    return container


def scrape_annotations(plan: DeploymentPlan, port: int) -> dict[str, str]:
    if plan.monitoring.scrape != "annotations":
        return {}
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def template_meta(plan: DeploymentPlan, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def stable_labels(labels: dict[str, str]) -> dict[str, str]:
    """A Job's pod template is immutable: its labels leave out what changes with every edit
    of the profile (hash, versions), so that re-applying an unchanged Job is a no-op."""
    volatile = {f"{LABEL_PREFIX}/profile-hash", f"{LABEL_PREFIX}/vllm-version", f"{LABEL_PREFIX}/version"}
    return {k: v for k, v in labels.items() if k not in volatile}


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
        "metadata": object_meta(plan, cache_claim_name(plan), "model-cache"),
        "spec": spec,
    }


def network_policy(
    plan: DeploymentPlan,
    meta: dict[str, Any],
    selector: dict[str, str],
    port: int,
    sources: list[dict[str, str]],
) -> dict[str, Any]:
    """Only pods matching ``sources`` reach the selected pods, and only on ``port``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": src}} for src in sources],
                    "ports": [{"port": port, "protocol": "TCP"}],
                }
            ],
        },
    }


# Kubernetes expands $(VAR) in a container's command, args and env values, and reads $$ as $.
# Doubling every $ that precedes "(" or "$" makes each rendered string reach the process as
# written (a model id "$(HF_TOKEN)" stays that text; a script's $(date) and $$ still work).
_VAR_REF = re.compile(r"\$(?=[($])")


def k8s_literal(text: str) -> str:
    """``text`` escaped so that Kubernetes' $(VAR) expansion leaves it unchanged."""
    return _VAR_REF.sub("$$", text)


def escape_var_refs(obj: Any) -> Any:
    """Escape command, args and env values of every container in ``obj`` (in place); returns it."""
    if isinstance(obj, dict):
        if "image" in obj and "name" in obj:  # a container
            for key in ("command", "args"):
                if isinstance(obj.get(key), list):
                    obj[key] = [k8s_literal(a) if isinstance(a, str) else a for a in obj[key]]
            for var in obj.get("env") or []:
                if isinstance(var, dict) and isinstance(var.get("value"), str):
                    var["value"] = k8s_literal(var["value"])
        for value in obj.values():
            escape_var_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            escape_var_refs(item)
    return obj


POD_READER = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}


def service_account_with_role(meta: dict[str, Any], rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ServiceAccount (its token mounted only by the pod that asks), a Role of ``rules`` in its
    namespace and the RoleBinding between them, all named by ``meta`` (the router's service
    discovery, the endpoint picker)."""
    name = meta["name"]
    ref = {"kind": "ServiceAccount", "name": name}
    if "namespace" in meta:
        ref["namespace"] = meta["namespace"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [ref],
        },
    ]
