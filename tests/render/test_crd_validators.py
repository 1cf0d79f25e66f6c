"""The custom-resource validators of tests/support/crds.py are not rubber stamps: a minimal
valid object of each kind passes, and an unknown field, a wrong type or a value outside an
enum fails with the validator's own message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.support import crds

LABELS = {"app.kubernetes.io/instance": "llm"}
CONTAINER = {"name": "vllm", "image": "vllm/vllm-openai:v0.32.0", "args": ["--model", "m"]}


def scaled_object() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "llm", "namespace": "llm", "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"name": "llm"},
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring:9090",
                        "query": 'sum(vllm:num_requests_waiting{namespace="llm"})',
                        "threshold": "5",
                    },
                }
            ],
        },
    }


def pod_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "llm", "labels": {"release": "prometheus"}},
        "spec": {
            "selector": {"matchLabels": LABELS},
            "namespaceSelector": {"matchNames": ["llm"]},
            "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    }


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "llm"},
        "spec": {"selector": {"matchLabels": LABELS}, "endpoints": [{"port": "http", "interval": "15s"}]},
    }


def leader_worker_set() -> dict[str, Any]:
    template = {"metadata": {"labels": LABELS}, "spec": {"containers": [CONTAINER]}}
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "llm", "namespace": "llm", "labels": LABELS},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": copy.deepcopy(template),
                "workerTemplate": copy.deepcopy(template),
            },
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {"maxSurge": "25%"}},
            "networkConfig": {"subdomainPolicy": "Shared"},
        },
    }


VALID = {
    "ScaledObject": scaled_object,
    "PodMonitor": pod_monitor,
    "ServiceMonitor": service_monitor,
    "LeaderWorkerSet": leader_worker_set,
}


@pytest.fixture(autouse=True)
def _validators() -> None:
    require(crds.available(), "CRD validators (node + scripts/setup_crd_validators.sh)")


def messages(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(crds.CrdValidationError) as info:
        crds.validate_custom(doc)
    return info.value.messages


def test_valid_minimal_objects_pass_in_one_batch() -> None:
    crds.validate_many([make() for make in VALID.values()])


@pytest.mark.parametrize("kind", sorted(VALID))
def test_unknown_top_level_spec_field_is_rejected(kind: str) -> None:
    doc = VALID[kind]()
    doc["spec"]["replicaz"] = 3
    msgs = messages(doc)
    if kind == "LeaderWorkerSet":
        assert msgs == ["/spec: Additional properties are not allowed ('replicaz' was unexpected)"]
    else:
        assert msgs == ['/spec: unknown field "replicaz"']


def test_scaled_object_errors() -> None:
    doc = scaled_object()
    doc["spec"]["minReplicaCount"] = "1"
    assert messages(doc) == ["/spec/minReplicaCount: must be integer"]
    doc = scaled_object()
    doc["spec"]["triggers"][0]["metadata"]["threshold"] = 5  # KEDA trigger metadata is map[string]string
    assert messages(doc) == ["/spec/triggers/0/metadata/threshold: must be string"]
    doc = scaled_object()
    doc["spec"]["triggers"][0]["authenticationRef"] = {"name": "a", "kindd": "x"}
    assert messages(doc) == ['/spec/triggers/0/authenticationRef: unknown field "kindd"']
    doc = scaled_object()
    del doc["spec"]["scaleTargetRef"]
    assert messages(doc) == ["/spec: must have required property scaleTargetRef"]
    doc = scaled_object()
    doc["metadata"]["labelz"] = {}
    assert messages(doc) == ['/metadata: unknown field "labelz"']


def test_pod_monitor_errors() -> None:
    doc = pod_monitor()
    doc["spec"]["podMetricsEndpoints"][0]["scheme"] = "ftp"
    assert messages(doc) == [
        '/spec/podMetricsEndpoints/0/scheme: must be equal to one of the allowed values ["http","https","HTTP","HTTPS"]'
    ]
    doc = pod_monitor()
    doc["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    [msg] = messages(doc)
    assert msg.startswith("/spec/podMetricsEndpoints/0/interval: must match pattern")
    doc = pod_monitor()
    doc["spec"]["podMetricsEndpoints"][0]["port"] = 8000  # port is the NAME of a container port
    assert messages(doc) == ["/spec/podMetricsEndpoints/0/port: must be string"]
    doc = pod_monitor()
    doc["spec"]["podMetricsEndpoints"][0]["targetPort"] = "http"
    doc["spec"]["podMetricsEndpoints"][0]["bogus"] = True
    assert messages(doc) == ['/spec/podMetricsEndpoints/0: unknown field "bogus"']


def test_service_monitor_errors() -> None:
    doc = service_monitor()
    doc["spec"]["endpoints"][0]["relabelings"] = [{"action": "rename", "targetLabel": "pod"}]
    [msg] = messages(doc)
    assert msg.startswith("/spec/endpoints/0/relabelings/0/action: must be equal to one of the allowed values [")
    doc = service_monitor()
    doc["spec"]["endpoints"][0]["honorLabels"] = "yes"
    assert messages(doc) == ["/spec/endpoints/0/honorLabels: must be boolean"]
    doc = service_monitor()
    doc["spec"]["selector"]["matchLabelz"] = LABELS
    assert messages(doc) == ['/spec/selector: unknown field "matchLabelz"']


def test_leader_worker_set_errors() -> None:
    doc = leader_worker_set()
    doc["spec"]["startupPolicy"] = "LeaderStarted"
    assert messages(doc) == ["/spec/startupPolicy: 'LeaderStarted' is not one of ['LeaderCreated', 'LeaderReady']"]
    doc = leader_worker_set()
    doc["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    assert messages(doc) == [
        "/spec/leaderWorkerTemplate/restartPolicy: 'Always' is not one of "
        "['Default', 'RecreateGroupOnPodRestart', 'RecreateGroupAfterStart', 'None']"
    ]
    doc = leader_worker_set()
    doc["spec"]["leaderWorkerTemplate"]["size"] = "2"
    assert messages(doc) == ["/spec/leaderWorkerTemplate/size: '2' is not of type 'integer'"]
    doc = leader_worker_set()
    del doc["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    assert messages(doc) == ["/spec/leaderWorkerTemplate: 'workerTemplate' is a required property"]
    doc = leader_worker_set()
    doc["spec"]["networkConfig"] = {}
    assert messages(doc) == ["/spec/networkConfig: 'subdomainPolicy' is a required property"]
    doc = leader_worker_set()
    doc["spec"]["subGroupPolicy"] = {"subGroupSize": 1}  # belongs in leaderWorkerTemplate
    assert messages(doc) == ["/spec: Additional properties are not allowed ('subGroupPolicy' was unexpected)"]


def test_leader_worker_set_pod_templates_are_core_pod_templates() -> None:
    doc = leader_worker_set()
    doc["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["imagePullPolicy"] = 1
    # the published LWS CRD and kubernetes-validate's PodTemplate (>= 1.37: nullable) both say so
    assert messages(doc) == [
        "/spec/leaderWorkerTemplate/workerTemplate/spec/containers/0/imagePullPolicy: 1 is not of type 'string'",
        "/spec/leaderWorkerTemplate/workerTemplate/spec/containers/0/imagePullPolicy: 1 is not of type 'string', 'null'",
    ]
    doc = leader_worker_set()
    doc["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["bogusField"] = 1
    assert messages(doc) == [
        "/spec/leaderWorkerTemplate/leaderTemplate/spec/containers/0: "
        "Additional properties are not allowed ('bogusField' was unexpected)"
    ]
    doc = leader_worker_set()
    doc["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["uid"] = "x"  # not in an embedded template
    assert messages(doc) == [
        "/spec/leaderWorkerTemplate/leaderTemplate/metadata: Additional properties are not allowed ('uid' was unexpected)"
    ]


def test_unknown_kind_is_an_error_not_a_pass() -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    [msg] = messages(doc)
    assert msg.startswith("no validator for this kind; known: ")


def test_published_crd_schema_is_made_strict(tmp_path: Path) -> None:
    """The path used once ../shared/crds holds the published LWS CRD, on a small CRD of our own."""
    import jsonschema

    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "description": "a structural object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "format": "int32"},
                                        "surge": {"x-kubernetes-int-or-string": True},
                                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                        "description": {"type": "string"},
                                    },
                                }
                            },
                        }
                    },
                }
            ]
        },
    }
    path = tmp_path / "crd.yaml"
    path.write_text(json.dumps(crd), encoding="utf-8")  # JSON is YAML
    schema = crds.published_crd_schema(path, "v1")
    validator = jsonschema.Draft7Validator(schema)

    def errors(spec: dict[str, Any]) -> list[str]:
        return [e.message for e in validator.iter_errors({"spec": spec})]

    assert errors({"size": 1, "surge": "10%", "free": {"anything": 1}, "description": "kept"}) == []
    assert errors({"size": 1, "extra": 1}) == ["Additional properties are not allowed ('extra' was unexpected)"]
    assert errors({"size": "1"}) == ["'1' is not of type 'integer'"]
    assert errors({"size": 1, "surge": 1.5}) == ["1.5 is not valid under any of the given schemas"]
    with pytest.raises(ValueError, match="no CustomResourceDefinition version v2"):
        crds.published_crd_schema(path, "v2")
