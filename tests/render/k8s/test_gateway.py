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


def _picker_objects() -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
    from vllmtune.render.k8s.gateway import endpoint_picker

    plan = load_plan(str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"))
    assert plan.inference_pool is not None
    return {(o["kind"], o["metadata"]["name"]): o for o in endpoint_picker(plan, plan.inference_pool)}


def test_endpoint_picker_objects_are_the_extension_charts_shape() -> None:
    docs = _picker_objects()
    assert list(docs) == [
        ("ServiceAccount", "two-replicas-epp"),
        ("Role", "two-replicas-epp"),
        ("RoleBinding", "two-replicas-epp"),
        ("ConfigMap", "two-replicas-epp"),
        ("Deployment", "two-replicas-epp"),
        ("Service", "two-replicas-epp"),
    ]
    assert docs[("Role", "two-replicas-epp")]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["inference.networking.k8s.io"],
            "resources": ["inferencepools"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    assert docs[("RoleBinding", "two-replicas-epp")]["subjects"] == [
        {"kind": "ServiceAccount", "name": "two-replicas-epp"}
    ]
    pod = docs[("Deployment", "two-replicas-epp")]["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("two-replicas-epp", True)
    assert pod["volumes"] == [{"name": "plugins-config", "configMap": {"name": "two-replicas-epp"}}]
    (c,) = pod["containers"]
    assert c["image"] == "registry.k8s.io/gateway-api-inference-extension/epp:v1.2.1"
    assert c["args"] == ["--pool-name", "two-replicas", "--config-file", "/config/default-plugins.yaml"]
    assert c["env"] == [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [
        ("grpc", 9002),
        ("grpc-health", 9003),
        ("metrics", 9090),
    ]
    assert c["readinessProbe"] == {"grpc": {"port": 9003, "service": "inference-extension"}, "periodSeconds": 10}
    assert c["securityContext"]["runAsUser"] == 65532
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    svc = docs[("Service", "two-replicas-epp")]["spec"]
    assert svc["ports"] == [
        {"name": "grpc-ext-proc", "port": 9002, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "http2"},
        {"name": "http-metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"},
    ]
    assert svc["selector"]["app.kubernetes.io/component"] == "endpoint-picker"


def test_endpoint_picker_config_is_the_charts_default_profile() -> None:
    import yaml

    from vllmtune.render.k8s.gateway import picker_config

    config = yaml.safe_load(_picker_objects()[("ConfigMap", "two-replicas-epp")]["data"]["default-plugins.yaml"])
    plan = load_plan(str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"))
    assert plan.inference_pool is not None
    assert picker_config(plan.inference_pool) == config
    assert config == {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "queue-scorer"}, {"type": "kv-cache-utilization-scorer"}, {"type": "prefix-cache-scorer"}],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [
                    {"pluginRef": "queue-scorer", "weight": 2},
                    {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                    {"pluginRef": "prefix-cache-scorer", "weight": 3},
                ],
            }
        ],
    }


def test_the_pool_names_the_picker_that_is_rendered() -> None:
    from vllmtune.render.k8s import kubernetes_objects

    plan = load_plan(str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"))
    objs = kubernetes_objects(plan)
    pool = next(o for o in objs if o["kind"] == "InferencePool")
    ref = pool["spec"]["endpointPickerRef"]
    svc = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == ref["name"])
    assert ref["port"]["number"] in [p["port"] for p in svc["spec"]["ports"]]
    picker = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == ref["name"])
    assert picker["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["--pool-name", pool["metadata"]["name"]]


def test_a_network_policy_admits_the_picker_to_the_servers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vllmtune.render.k8s import server_network_policy

    profile = tmp_path / "p.yaml"
    example = ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"
    profile.write_text(f"extends: {example}\ndeploy:\n  kubernetes:\n    network_policy: {{enabled: true}}\n")
    pol = server_network_policy(load_plan(str(profile)))
    components = [
        f["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for f in pol["spec"]["ingress"][0]["from"]
    ]
    assert components == ["router", "cache", "endpoint-picker"]


def test_the_picker_image_is_a_profile_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vllmtune.render.k8s.gateway import endpoint_picker

    profile = tmp_path / "p.yaml"
    example = ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"
    profile.write_text(f"extends: {example}\nrouting:\n  epp_image: registry.example.com/epp:v1.3.1\n")
    plan = load_plan(str(profile))
    assert plan.inference_pool is not None
    dep = next(o for o in endpoint_picker(plan, plan.inference_pool) if o["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/epp:v1.3.1"
