"""The router (``routing``) rendered: in front of the replicas in Kubernetes (its service
discovery, with a ServiceAccount that may read the pods), in front of the one server in docker
and compose, and behind the prompt-cache proxy when there is one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, require
from tests.support import crds
from vllmtune.plan import load_plan
from vllmtune.render import render

EXAMPLE = str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml")
SELECTOR = [
    "app.kubernetes.io/name=vllm",
    "app.kubernetes.io/instance=two-replicas",
    "app.kubernetes.io/component=server",
]


def k8s(source: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(render(load_plan(source), "kubernetes"))}


def container(doc: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return c


def test_kubernetes_router_finds_the_server_pods_in_its_own_namespace() -> None:
    docs = k8s(EXAMPLE)
    dep = docs[("Deployment", "two-replicas-router")]
    c = container(dep)
    assert c["image"] == "vllmtune/vllm-router:0.1.17"
    assert c["command"] == [
        "sh",
        "-c",
        'exec vllm-router "$@" --service-discovery-namespace "$POD_NAMESPACE"',
        "vllm-router",
    ]
    assert c["args"] == [
        "--host",
        "0.0.0.0",
        "--port",
        "8100",
        "--policy",
        "cache_aware",
        "--service-discovery",
        "--selector",
        *SELECTOR,
        "--service-discovery-port",
        "8000",
    ]
    assert c["env"] == [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    pod = dep["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("two-replicas-router", True)
    # the selector names the server pods' labels
    server = docs[("Deployment", "two-replicas")]
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert [f"{k}={labels[k]}" for k in (s.split("=")[0] for s in SELECTOR)] == SELECTOR
    assert server["spec"]["replicas"] == 2


def test_kubernetes_router_may_read_pods_and_nothing_else() -> None:
    docs = k8s(EXAMPLE)
    assert docs[("Role", "two-replicas-router")]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    binding = docs[("RoleBinding", "two-replicas-router")]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "two-replicas-router",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "two-replicas-router"}]
    assert docs[("ServiceAccount", "two-replicas-router")]["automountServiceAccountToken"] is False


def test_the_proxy_sits_in_front_of_the_router() -> None:
    docs = k8s(EXAMPLE)
    args = container(docs[("Deployment", "two-replicas-cache")])["args"]
    assert args[:2] == ["--upstream", "http://two-replicas-router:8100"]
    # the proxy is what clients reach; the router stays inside the cluster
    assert docs[("Service", "two-replicas-cache")]["spec"]["type"] == "ClusterIP"
    assert docs[("Service", "two-replicas-router")]["spec"]["type"] == "ClusterIP"


def test_a_namespace_in_the_profile_is_given_to_the_router(tmp_path: Path) -> None:
    text = (
        'name: r\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'
        "routing: {policy: round_robin, port: 9000}\n"
        "deploy:\n  kubernetes:\n    namespace: llm\n    replicas: 3\n    pvc: {access_mode: ReadWriteMany}\n"
    )
    (tmp_path / "p.yaml").write_text(text)
    docs = k8s(str(tmp_path / "p.yaml"))
    c = container(docs[("Deployment", "r-router")])
    assert c["command"] == ["vllm-router"]
    assert c["args"][-4:] == ["--service-discovery-port", "8000", "--service-discovery-namespace", "llm"]
    assert c["args"][:6] == ["--host", "0.0.0.0", "--port", "9000", "--policy", "round_robin"]
    # no proxy: the router is what clients reach
    assert docs[("Service", "r-router")]["spec"]["ports"][0]["port"] == 9000
    assert docs[("RoleBinding", "r-router")]["subjects"] == [
        {"kind": "ServiceAccount", "name": "r-router", "namespace": "llm"}
    ]


def test_compose_router_waits_for_the_server_and_the_proxy_for_the_router() -> None:
    services = yaml.safe_load(render(load_plan(EXAMPLE), "compose"))["services"]
    router = services["router"]
    assert router["entrypoint"] == ["vllm-router"]
    assert router["command"] == [
        "--host",
        "0.0.0.0",
        "--port",
        "8100",
        "--policy",
        "cache_aware",
        "--worker-urls",
        "http://vllm:8000",
        "http://vllm-2:8000",
    ]
    healthy = {"condition": "service_healthy"}
    assert router["depends_on"] == {"vllm": healthy, "vllm-2": healthy}  # every worker
    assert "ports" not in router  # behind the proxy
    cache = services["cache"]
    assert cache["command"][:2] == ["--upstream", "http://router:8100"]
    assert cache["depends_on"] == {"vllm": healthy, "vllm-2": healthy, "router": healthy}


def test_compose_runs_each_replica_on_its_own_port_and_gpu() -> None:
    services = yaml.safe_load(render(load_plan(EXAMPLE), "compose"))["services"]
    first, second = services["vllm"], services["vllm-2"]
    assert (first["container_name"], second["container_name"]) == ("two-replicas", "two-replicas-2")
    assert (first["ports"], second["ports"]) == (["127.0.0.1:8000:8000"], ["127.0.0.1:8001:8000"])
    assert [s["deploy"]["resources"]["reservations"]["devices"] for s in (first, second)] == [
        [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}],
        [{"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}],
    ]
    assert (first["labels"]["vllmtune.io/replica"], second["labels"]["vllmtune.io/replica"]) == ("1", "2")
    assert first["command"] == second["command"]


def test_the_docker_script_starts_each_replica_and_the_router_lists_them() -> None:
    text = render(load_plan(EXAMPLE), "docker")
    assert "# replica 1 of 2: port 8000, GPUs 0\ndocker run --detach \\\n  --name two-replicas \\" in text
    assert "# replica 2 of 2: port 8001, GPUs 1\ndocker run --detach \\\n  --name two-replicas-2 \\" in text
    assert "--gpus '\"device=1\"'" in text and "--publish 127.0.0.1:8001:8000" in text
    assert "--worker-urls http://two-replicas:8000 http://two-replicas-2:8000\n" in text
    assert "# Needs 2 NVIDIA GPU(s)" in text
    assert "# Stop and remove:     docker rm -f two-replicas two-replicas-2\n" in text


def test_gateway_users_get_an_inference_pool_valid_against_its_crd() -> None:
    require(crds.available(), "CRD validators (node + scripts/setup_crd_validators.sh)")
    pool = k8s(EXAMPLE)[("InferencePool", "two-replicas")]
    crds.validate_custom(pool)
    assert pool["spec"] == {
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "vllm",
                "app.kubernetes.io/instance": "two-replicas",
                "app.kubernetes.io/component": "server",
            }
        },
        "targetPorts": [{"number": 8000}],
        "endpointPickerRef": {
            "kind": "Service",
            "name": "two-replicas-epp",
            "port": {"number": 9002},
            "failureMode": "FailClose",
        },
    }


def test_the_inference_pool_validator_is_not_a_rubber_stamp() -> None:
    pool = copy.deepcopy(k8s(EXAMPLE)[("InferencePool", "two-replicas")])
    # (the CRD's CEL rules, x-kubernetes-validations, are not evaluated: the schema is)
    pool["spec"]["targetPorts"] = [{"number": 8000, "name": "http"}]
    with pytest.raises(crds.CrdValidationError) as exc:
        crds.validate_custom(pool)
    assert exc.value.messages == [
        "/spec/targetPorts/0: Additional properties are not allowed ('name' was unexpected)",
    ]


def test_no_gateway_no_pool(tmp_path: Path) -> None:
    text = (
        'name: r\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'
        "routing: {}\ndeploy:\n  kubernetes:\n    replicas: 2\n    pvc: {access_mode: ReadWriteMany}\n"
    )
    (tmp_path / "p.yaml").write_text(text)
    assert not [k for k in k8s(str(tmp_path / "p.yaml")) if k[0] == "InferencePool"]
