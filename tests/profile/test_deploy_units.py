"""profile.deploy's section classes called directly: each one's defaults dumped whole, what a
minimal profile gets, an unknown key refused with its whole located message, one constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.profiles import MINIMAL, profile_errors
from vllmtune.profile.deploy import (
    AutoscalingSettings,
    ComposeDeploy,
    DockerDeploy,
    MonitoringSettings,
    NetworkPolicySettings,
    ProbeSettings,
    PvcSettings,
    ServerResources,
)
from vllmtune.profile.loader import load_profile

DEFAULTS: list[tuple[type[BaseModel], dict[str, Any], dict[str, Any]]] = [
    (
        DockerDeploy,
        {},
        {
            "container_name": None,
            "restart": "unless-stopped",
            "hf_cache": "~/.cache/huggingface",
            "bind_address": "127.0.0.1",
        },
    ),
    (ComposeDeploy, {}, {"restart": "unless-stopped", "hf_cache": "hf-cache", "start_period": "30m"}),
    (ServerResources, {}, {"cpu": None, "memory": None}),
    (NetworkPolicySettings, {}, {"enabled": False, "allow_from": []}),
    (PvcSettings, {}, {"size": "100Gi", "storage_class": None, "access_mode": "ReadWriteOnce"}),
    (ProbeSettings, {}, {"startup_timeout": None, "period_seconds": 10}),
    (
        AutoscalingSettings,
        {"max_replicas": 4},
        {
            "engine": "keda",
            "min_replicas": 1,
            "max_replicas": 4,
            "metric": "queue",
            "target": None,
            "prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
            "cooldown": "5m",
        },
    ),
    (MonitoringSettings, {}, {"scrape": "annotations", "interval": "15s", "labels": {}, "dashboard": False}),
]


@pytest.mark.parametrize(("cls", "given", "dumped"), DEFAULTS, ids=[c.__name__ for c, _, _ in DEFAULTS])
def test_defaults_dumped_whole(cls: type[BaseModel], given: dict[str, Any], dumped: dict[str, Any]) -> None:
    assert cls(**given).model_dump() == dumped


def test_a_minimal_profile_gets_each_sections_defaults(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL)
    deploy = load_profile(path).profile.deploy
    k8s = deploy.kubernetes
    assert (deploy.docker, deploy.compose) == (DockerDeploy(), ComposeDeploy())
    assert (k8s.resources, k8s.network_policy, k8s.pvc, k8s.probes) == (
        ServerResources(),
        NetworkPolicySettings(),
        PvcSettings(),
        ProbeSettings(),
    )
    assert (k8s.autoscaling, k8s.monitoring) == (None, MonitoringSettings())


K8S = "deploy:\n  kubernetes:\n"

REFUSED = {
    "DockerDeploy unknown key": (
        "deploy:\n  docker:\n    restrt: always\n",
        "p.yaml:8: deploy.docker.restrt: unknown key; did you mean 'restart'?",
    ),
    "DockerDeploy bind_address is an address": (
        "deploy:\n  docker:\n    bind_address: localhost\n",
        'p.yaml:8: deploy.docker.bind_address: "localhost" is not valid (must match ^[0-9a-fA-F:.]+$)',
    ),
    "ComposeDeploy unknown key": (
        "deploy:\n  compose:\n    start_perod: 1m\n",
        "p.yaml:8: deploy.compose.start_perod: unknown key; did you mean 'start_period'?",
    ),
    "ComposeDeploy start_period is a duration": (
        "deploy:\n  compose:\n    start_period: 30 minutes\n",
        'p.yaml:8: deploy.compose.start_period: "30 minutes" is not valid (a duration like 30s, 15m, 24h or 7d)',
    ),
    "ServerResources unknown key": (
        K8S + "    resources:\n      cpus: '4'\n",
        "p.yaml:9: deploy.kubernetes.resources.cpus: unknown key; did you mean 'cpu'?",
    ),
    "ServerResources cpu is a Kubernetes quantity": (
        K8S + "    resources:\n      cpu: four\n",
        'p.yaml:9: deploy.kubernetes.resources.cpu: "four" is not valid (must match ^[0-9]+(\\.[0-9]+)?m?$)',
    ),
    "ServerResources memory is a size": (
        K8S + "    resources:\n      memory: plenty\n",
        'p.yaml:9: deploy.kubernetes.resources.memory: "plenty" is not valid (a size like 16g, 2Gi or 512m)',
    ),
    "NetworkPolicySettings unknown key": (
        K8S + "    network_policy:\n      enable: true\n",
        "p.yaml:9: deploy.kubernetes.network_policy.enable: unknown key; did you mean 'enabled'?",
    ),
    "NetworkPolicySettings allow_from holds label strings": (
        K8S + "    network_policy:\n      allow_from: [{app: 1}]\n",
        "p.yaml:9: deploy.kubernetes.network_policy.allow_from[0].app: expected a string (quote it), got 1",
    ),
    "PvcSettings unknown key": (
        K8S + "    pvc:\n      sise: 10Gi\n",
        "p.yaml:9: deploy.kubernetes.pvc.sise: unknown key; did you mean 'size'?",
    ),
    "PvcSettings access_mode is a Kubernetes mode": (
        K8S + "    pvc:\n      access_mode: ReadWriteAll\n",
        'p.yaml:9: deploy.kubernetes.pvc.access_mode: "ReadWriteAll" is not allowed; input should be '
        "'ReadWriteOnce', 'ReadWriteMany', 'ReadOnlyMany' or 'ReadWriteOncePod'",
    ),
    "ProbeSettings unknown key": (
        K8S + "    probes:\n      period: 5\n",
        "p.yaml:9: deploy.kubernetes.probes.period: unknown key; did you mean 'period_seconds'?",
    ),
    "ProbeSettings period_seconds is at least 1": (
        K8S + "    probes:\n      period_seconds: 0\n",
        "p.yaml:9: deploy.kubernetes.probes.period_seconds: Input should be greater than or equal to 1 (got 0)",
    ),
    "AutoscalingSettings unknown key": (
        K8S + "    autoscaling:\n      max_replicas: 4\n      min_replica: 0\n",
        "p.yaml:10: deploy.kubernetes.autoscaling.min_replica: unknown key; did you mean 'min_replicas'?",
    ),
    "AutoscalingSettings needs max_replicas": (
        K8S + "    autoscaling:\n      min_replicas: 1\n",
        "p.yaml:8: deploy.kubernetes.autoscaling.max_replicas: required key is missing",
    ),
    "MonitoringSettings unknown key": (
        K8S + "    monitoring:\n      scrap: none\n",
        "p.yaml:9: deploy.kubernetes.monitoring.scrap: unknown key; did you mean 'scrape'?",
    ),
    # the words come from the pattern (a Duration), not from a list of field names
    "MonitoringSettings interval is a duration": (
        K8S + "    monitoring:\n      interval: 15 seconds\n",
        'p.yaml:9: deploy.kubernetes.monitoring.interval: "15 seconds" is not valid (a duration like 30s, 15m, 24h or 7d)',
    ),
}


@pytest.mark.parametrize(("tail", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_with_the_whole_located_message(tmp_path: Path, tail: str, message: str) -> None:
    assert profile_errors(tmp_path, MINIMAL + tail) == message
