"""render.k8s.server called directly: the server's volumes, container, pod spec and budget
annotation (whole, against the reviewed cpu-tiny golden Deployment), and the NetworkPolicy
(admitting the cache proxy and listed pods, or only the port when nobody is named)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.render.k8s._golden import golden_objects
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.k8s.base import escape_var_refs, object_meta, pod_selector
from vllmtune.render.k8s.server import (
    budget_annotations,
    multi_node_env,
    pod_spec,
    server_container,
    server_network_policy,
    server_volumes,
)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan("preset:cpu-tiny")


def _golden_deployment() -> dict[str, Any]:
    return golden_objects("cpu-tiny")[("Deployment", "tiny-cpu")]


def test_server_volumes_are_the_golden_pods(tiny: DeploymentPlan) -> None:
    pod = _golden_deployment()["spec"]["template"]["spec"]
    mounts, volumes = server_volumes(tiny)
    assert volumes == pod["volumes"]
    assert mounts == pod["containers"][0]["volumeMounts"]
    assert volumes[:1] == [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": volumes[0]["emptyDir"]["sizeLimit"]}}
    ]
    assert {"name": "hf-cache", "persistentVolumeClaim": {"claimName": "tiny-cpu-hf-cache"}} in volumes


def test_server_container_is_the_golden_one(tiny: DeploymentPlan) -> None:
    container = escape_var_refs(server_container(tiny))
    assert container == _golden_deployment()["spec"]["template"]["spec"]["containers"][0]


def test_pod_spec_is_the_golden_one(tiny: DeploymentPlan) -> None:
    _, volumes = server_volumes(tiny)
    spec = escape_var_refs(pod_spec(tiny, [server_container(tiny)], volumes))
    assert spec == _golden_deployment()["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False


def test_budget_annotations(tiny: DeploymentPlan) -> None:
    assert budget_annotations(tiny) == {"vllmtune.io/startup-budget": tiny.startup_budget}
    assert _golden_deployment()["metadata"]["annotations"] == budget_annotations(tiny)


def _plan(tmp_path: Path, base: str, policy: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: {base}\nname: np\ndeploy: {{kubernetes: {{network_policy: {policy}}}}}\n")
    return load_plan(str(p))


def test_server_network_policy_admits_the_proxy_and_listed_pods(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "all-levers", "{enabled: true, allow_from: [{app: gw}]}")
    meta = object_meta(plan, "np")
    assert server_network_policy(plan) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": pod_selector(meta["labels"])},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchLabels": {
                                    "app.kubernetes.io/name": "vllm",
                                    "app.kubernetes.io/instance": "np",
                                    "app.kubernetes.io/component": "cache",
                                }
                            }
                        },
                        {"podSelector": {"matchLabels": {"app": "gw"}}},
                    ],
                    "ports": [{"port": 8000, "protocol": "TCP"}],
                }
            ],
        },
    }


def test_server_network_policy_without_sources_opens_only_the_port(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "baseline", "{enabled: true}")
    meta = object_meta(plan, "np")
    assert server_network_policy(plan) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": pod_selector(meta["labels"])},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 8000, "protocol": "TCP"}]}],
        },
    }


def test_multi_node_env_is_what_every_pod_of_a_multi_node_server_gets(tiny: DeploymentPlan, tmp_path: Path) -> None:
    assert multi_node_env(tiny) == []  # one node
    p = tmp_path / "big.yaml"
    p.write_text(
        "name: big\nvllm: {version: '0.32.0'}\nmodel: {id: meta-llama/Llama-3.1-70B-Instruct}\n"
        "resources: {gpus: 8, nodes: 2, tensor_parallel_size: 8, pipeline_parallel_size: 2}\n"
        "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}, model_download: job}}\n"
    )
    big = load_plan(str(p))
    env = multi_node_env(big)
    assert env == [
        {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NCCL_SOCKET_IFNAME", "value": "eth0"},
        {"name": "GLOO_SOCKET_IFNAME", "value": "eth0"},
        {"name": "VLLMTUNE_NODES", "value": "2"},
        {"name": "VLLMTUNE_RAY_PORT", "value": "6379"},
        {"name": "VLLMTUNE_RAY_WAIT_SECONDS", "value": "600"},
    ]
    # the container's env: the plan's, HF_HUB_OFFLINE (the Job downloaded), then these (no secrets here)
    assert server_container(big)["env"][-len(env) - 1 :] == [{"name": "HF_HUB_OFFLINE", "value": "1"}, *env]
