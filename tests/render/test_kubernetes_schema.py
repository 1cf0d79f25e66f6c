"""Kubernetes output checked against Kubernetes' published schemas (kubernetes-validate)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from tests.render.test_golden import SOURCES
from tests.support import crds
from tests.support.crds import kubernetes_validate
from vllmtune.plan import load_plan
from vllmtune.render.k8s import render_kubernetes

K8S_VERSION = "1.30"


@pytest.mark.parametrize("source", SOURCES)
def test_every_object_validates_strictly(source: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    docs = list(yaml.safe_load_all(render_kubernetes(load_plan(source))))
    assert docs[0]["kind"] == "PersistentVolumeClaim"
    for doc in docs:
        if crds.is_custom(doc):
            continue  # custom resources: tests/render/test_scaling.py checks them against their CRDs
        kubernetes_validate().validate(doc, K8S_VERSION, strict=True)


def test_validator_is_not_a_rubber_stamp() -> None:
    docs = list(yaml.safe_load_all(render_kubernetes(load_plan("preset:baseline"))))
    deployment = docs[1]
    deployment["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
    with pytest.raises(kubernetes_validate().ValidationError):
        kubernetes_validate().validate(deployment, K8S_VERSION, strict=True)


def test_shm_gpu_probes_and_secrets() -> None:
    docs = list(yaml.safe_load_all(render_kubernetes(load_plan(str(ROOT / "profiles/examples/legacy-0.6.4.yaml")))))
    pod = docs[1]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    # host memory: 1.2 x 16 GB of weights (18Gi) + the 16Gi /dev/shm + 8Gi; no CPU limit
    assert c["resources"] == {
        "limits": {"memory": "42Gi", "nvidia.com/gpu": "2"},
        "requests": {"cpu": "6", "memory": "42Gi", "nvidia.com/gpu": "2"},
    }
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    assert {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-keys", "key": "vllm"}}} in c["env"]
    assert c["startupProbe"]["failureThreshold"] == 120  # 20 min (16 GB of weights) / 10 s
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["args"][:2] == ["--model", "meta-llama/Llama-3.1-8B-Instruct"]
