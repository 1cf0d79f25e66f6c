"""The Gateway API Inference Extension's objects (``routing.gateway: inference-extension``):
the InferencePool of the server pods (inference.networking.k8s.io/v1) and the endpoint picker
(EPP) that chooses a pod for each request: its ServiceAccount, Role and RoleBinding, its
EndpointPickerConfig in a ConfigMap, its Deployment and its Service, shaped as the extension's
own ``inferencepool`` chart shapes them."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan, InferencePool
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render.k8s.base import (
    POD_READER,
    harden,
    object_meta,
    pod_security_context,
    pod_selector,
    service_account_with_role,
    template_meta,
)

EPP_COMPONENT = "endpoint-picker"
CONFIG_DIR = "/config"


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


def picker_config(pool: InferencePool) -> dict[str, Any]:
    """The EndpointPickerConfig: the scorers, one scheduling profile weighting them (the picker
    adds its default profile handler and max-score picker)."""
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": name} for name, _ in pool.epp_scorers],
        "schedulingProfiles": [
            {"name": "default", "plugins": [{"pluginRef": name, "weight": w} for name, w in pool.epp_scorers]}
        ],
    }


def endpoint_picker(plan: DeploymentPlan, pool: InferencePool) -> list[dict[str, Any]]:
    """The picker's objects, in apply order: identity and rights, config, Deployment, Service."""
    meta = object_meta(plan, pool.epp_service, EPP_COMPONENT)
    labels = meta["labels"]
    selector = pod_selector(labels)
    name = pool.epp_service
    container: dict[str, Any] = {
        "name": "epp",
        "image": pool.epp_image,
        "args": ["--pool-name", pool.name, "--config-file", f"{CONFIG_DIR}/{pool.epp_config_file}"],
        # the pool's namespace: the picker's own (the chart's NAMESPACE from the downward API)
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [
            {"name": "grpc", "containerPort": pool.epp_port, "protocol": "TCP"},
            {"name": "grpc-health", "containerPort": pool.epp_health_port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": pool.epp_metrics_port, "protocol": "TCP"},
        ],
        "volumeMounts": [{"name": "plugins-config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    probe = {
        "grpc": {"port": pool.epp_health_port, "service": "inference-extension"},
        "periodSeconds": pool.epp_probe_period_seconds,
    }
    container["readinessProbe"] = probe
    container["livenessProbe"] = {**probe, "failureThreshold": pool.epp_liveness_failures}
    harden(container, pool.epp_hardening)
    pod: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": True,  # it watches the pool and its pods
        "securityContext": pod_security_context(pool.epp_hardening),
        "containers": [container],
        "volumes": [{"name": "plugins-config", "configMap": {"name": name}}],
    }
    watch = ["get", "list", "watch"]
    rules = [
        POD_READER,
        {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"], "verbs": watch},
        {
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": watch,
        },
    ]
    return [
        *service_account_with_role(meta, rules),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {pool.epp_config_file: dump_yaml(picker_config(pool))},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": pool.epp_replicas,
                "selector": {"matchLabels": selector},
                "template": {"metadata": template_meta(plan, labels, {}), "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [
                    {
                        "name": "grpc-ext-proc",
                        "port": pool.epp_port,
                        "targetPort": "grpc",
                        "protocol": "TCP",
                        "appProtocol": "http2",
                    },
                    {"name": "http-metrics", "port": pool.epp_metrics_port, "targetPort": "metrics", "protocol": "TCP"},
                ],
            },
        },
    ]
