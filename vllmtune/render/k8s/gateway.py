"""The Gateway API Inference Extension's objects (``routing.gateway: inference-extension``):
the InferencePool of the server pods, naming the endpoint picker that chooses a pod for each
request (inference.networking.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan, InferencePool
from vllmtune.render.k8s.base import object_meta, pod_selector


def inference_pool(plan: DeploymentPlan, pool: InferencePool) -> dict[str, Any]:
    """The pool: the server pods by label, their port, and the endpoint picker's Service."""
    meta = object_meta(plan, pool.name)
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": pod_selector(meta["labels"])},
            "targetPorts": [{"number": pool.target_port}],
            "endpointPickerRef": {
                "kind": "Service",
                "name": pool.epp_service,
                "port": {"number": pool.epp_port},
                "failureMode": pool.failure_mode,
            },
        },
    }
