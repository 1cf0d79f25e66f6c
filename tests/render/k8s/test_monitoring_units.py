"""render.k8s.monitoring called directly: the PodMonitor and dashboard ConfigMap (whole, against
the reviewed golden), a ServiceMonitor, and no monitor for annotation scraping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.render.k8s._golden import golden_objects
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.grafana import render_grafana
from vllmtune.render.k8s.base import object_meta
from vllmtune.render.k8s.monitoring import dashboard_configmap, monitor


@pytest.fixture
def seventy_b(monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan("profiles/examples/llama-70b-2x8.yaml")


def _plan(tmp_path: Path, monitoring: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: baseline\nname: mon\ndeploy: {{kubernetes: {{monitoring: {monitoring}}}}}\n")
    return load_plan(str(p))


def test_monitor_podmonitor_is_the_golden_one(seventy_b: DeploymentPlan) -> None:
    assert monitor(seventy_b) == golden_objects("llama-70b-2x8")[("PodMonitor", "llama-70b")]


def test_monitor_servicemonitor_with_labels(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "{scrape: servicemonitor, labels: {release: prom}}")
    meta = object_meta(plan, "mon")
    meta["labels"]["release"] = "prom"
    assert monitor(plan) == {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "mon"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": plan.monitoring.interval}],
        },
    }


def test_monitor_none_for_annotations(tmp_path: Path) -> None:
    assert monitor(_plan(tmp_path, "{scrape: annotations}")) is None


def test_dashboard_configmap_is_the_golden_one(seventy_b: DeploymentPlan) -> None:
    cm = dashboard_configmap(seventy_b)
    assert cm == golden_objects("llama-70b-2x8")[("ConfigMap", "llama-70b-dashboard")]
    assert cm["data"] == {"llama-70b.json": render_grafana(seventy_b)}
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
