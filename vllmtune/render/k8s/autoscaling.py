"""Autoscaling: a KEDA ScaledObject with PromQL triggers, or an HPA on prometheus-adapter."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan
from vllmtune.render.k8s.base import object_meta
from vllmtune.render.k8s.lws import lws_name


def quantity(value: float) -> str:
    """A Kubernetes quantity for a target value: 5 -> "5", 2.5 -> "2500m"."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def _promql_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _model_selector(plan: DeploymentPlan) -> str:
    """PromQL label matchers for this server's vLLM metrics. vLLM labels every series with
    model_name (the served name), whatever the scrape configuration adds."""
    parts = [f'model_name="{plan.served_name}"']
    if plan.k8s_namespace:
        parts.append(f'namespace="{plan.k8s_namespace}"')
    return "{" + ",".join(parts) + "}"


def autoscaling_queries(plan: DeploymentPlan) -> dict[str, str]:
    """The PromQL KEDA evaluates: the scaling metric, and (scale to zero with a prompt cache)
    the proxy's request rate, which exists while the server has no pods."""
    a = plan.autoscaling
    assert a is not None
    sel = _model_selector(plan)
    out: dict[str, str] = {}
    if a.metric == "queue":
        out["metric"] = f"sum(vllm:num_requests_waiting{sel})"
    else:
        # Idle: no samples in the window make the quantile NaN; read that as 0 (no load).
        out["metric"] = (
            f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{sel}[2m])))"
            " > 0 or vector(0)"
        )
    if a.min_replicas == 0 and plan.sidecars:
        ns = f'namespace="{plan.k8s_namespace}",' if plan.k8s_namespace else ""
        # Requests reaching the proxy (answered or not), capped at 1: it wakes the server and
        # asks for one replica at most; the queue or TTFT trigger sizes it from there.
        out["wake"] = (
            f'clamp_max(sum(rate({{__name__=~"vllmtune_cache_(hits|misses|bypass)_total",{ns}'
            f'pod=~"{plan.sidecar_name("cache")}-.*"}}[2m])), 1)'
        )
    return out


def _scale_target(plan: DeploymentPlan) -> dict[str, str]:
    if plan.multi_node:
        return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": lws_name(plan)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name}


def scaled_object(plan: DeploymentPlan) -> dict[str, Any]:
    """KEDA ScaledObject with Prometheus triggers."""
    a = plan.autoscaling
    assert a is not None
    queries = autoscaling_queries(plan)
    trigger_meta: dict[str, str] = {
        "serverAddress": a.prometheus_url,
        "query": queries["metric"],
        "threshold": _promql_number(a.target),
    }
    if a.metric == "ttft":
        # A latency is not shared out among replicas: scale by the ratio to the target.
        trigger_meta["ignoreNullValues"] = "true"
    triggers: list[dict[str, Any]] = [{"type": "prometheus", "metadata": trigger_meta}]
    if a.metric == "ttft":
        triggers[0]["metricType"] = "Value"
    if "wake" in queries:
        triggers.append(
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": a.prometheus_url,
                    "query": queries["wake"],
                    "threshold": "1",
                    "activationThreshold": "0",
                },
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": object_meta(plan, plan.name),
        "spec": {
            "scaleTargetRef": _scale_target(plan),
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": a.polling_seconds,
            "cooldownPeriod": a.cooldown_seconds,  # 1 -> 0 only
            # N -> N-1: the HPA KEDA creates waits this long too.
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": a.cooldown_seconds}}
                }
            },
            "triggers": triggers,
        },
    }


HPA_METRIC = "vllm_num_requests_waiting"  # prometheus-adapter's name for vllm:num_requests_waiting


def hpa(plan: DeploymentPlan) -> dict[str, Any]:
    """autoscaling/v2 HPA on the per-pod queue length (served by prometheus-adapter)."""
    a = plan.autoscaling
    assert a is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(plan, plan.name),
        "spec": {
            "scaleTargetRef": _scale_target(plan),
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": HPA_METRIC},
                        "target": {"type": "AverageValue", "averageValue": quantity(a.target)},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": a.cooldown_seconds}},
        },
    }
