"""Prometheus monitors and the Grafana dashboard ConfigMap."""

from __future__ import annotations

from typing import Any

from vllmtune.plan import DeploymentPlan
from vllmtune.render.k8s.base import SELECTOR_KEYS, object_meta


def monitor(plan: DeploymentPlan) -> dict[str, Any] | None:
    """A PodMonitor or ServiceMonitor for the server and the cache proxy (port "http",
    /metrics); Redis has no "http" port and is not scraped."""
    m = plan.monitoring
    if m.scrape not in ("podmonitor", "servicemonitor"):
        return None
    meta = object_meta(plan, plan.name)
    meta["labels"].update(m.labels)
    selector = {"matchLabels": {k: dict(plan.labels)[k] for k in SELECTOR_KEYS[:2]}}
    endpoint = {"port": "http", "path": "/metrics", "interval": m.interval}
    if m.scrape == "podmonitor":
        spec: dict[str, Any] = {"selector": selector, "podMetricsEndpoints": [endpoint]}
        kind = "PodMonitor"
    else:
        spec = {"selector": selector, "endpoints": [endpoint]}
        kind = "ServiceMonitor"
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": meta, "spec": spec}


def dashboard_configmap(plan: DeploymentPlan) -> dict[str, Any]:
    """The Grafana dashboard, picked up by Grafana's sidecar (label grafana_dashboard=1)."""
    from vllmtune.render.grafana import render_grafana

    meta = object_meta(plan, f"{plan.name}-dashboard", "dashboard")
    meta["labels"]["grafana_dashboard"] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{plan.name}.json": render_grafana(plan)},
    }
