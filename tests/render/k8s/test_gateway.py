"""render/k8s/gateway.py: the InferencePool of ``routing.gateway: inference-extension``."""

from __future__ import annotations

from tests.conftest import ROOT
from vllmtune.plan import load_plan
from vllmtune.render.k8s.gateway import inference_pool


def test_inference_pool_names_the_server_pods_their_port_and_the_picker() -> None:
    plan = load_plan(str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"))
    assert plan.inference_pool is not None
    pool = inference_pool(plan, plan.inference_pool)
    assert (pool["apiVersion"], pool["kind"], pool["metadata"]["name"]) == (
        "inference.networking.k8s.io/v1",
        "InferencePool",
        "two-replicas",
    )
    assert pool["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"] == {
        "kind": "Service",
        "name": "two-replicas-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
