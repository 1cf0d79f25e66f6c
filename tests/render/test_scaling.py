"""Beyond one node: the LeaderWorkerSet, autoscalers, monitors, pre-download and the derived
start-up budget -- whole messages, whole objects where they are short, and the objects
checked by Kubernetes' own schemas (kubernetes-validate) and the CRD validators."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.render.test_golden import SOURCES
from tests.support import crds
from tests.support.crds import kubernetes_validate
from vllmtune.errors import LaunchError, ProfileError, RenderError
from vllmtune.flags import known_versions
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import render
from vllmtune.render.k8s import (
    DOWNLOAD_PY,
    WAIT_PY,
    download_job_name,
    download_marker,
    kubernetes_objects,
    lws_name,
    quantity,
)
from vllmtune.runtime.up import UpOptions, prepare

K8S_VERSION = "1.30"
EXAMPLE = ROOT / "profiles/examples/llama-70b-2x8.yaml"

BASE = """\
name: big
vllm: {version: "0.32.0"}
model: {id: meta-llama/Llama-3.3-70B-Instruct}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def plan_of(tmp_path: Path, text: str) -> DeploymentPlan:
    return load_plan(write(tmp_path, text))


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ProfileError) as info:
        plan_of(tmp_path, text)
    return [str(p) for p in info.value.problems]


def objects(plan: DeploymentPlan) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in kubernetes_objects(plan)}


def pod_template_ok(template: dict[str, Any]) -> None:
    """A pod template (inside a custom resource) checked as a core PodTemplate."""
    doc = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
    kubernetes_validate().validate(doc, K8S_VERSION, strict=True)


# ------------------------------------------------------------------ multi-node


NODES = "resources: {gpus: 8, nodes: 2, tensor_parallel_size: 8, pipeline_parallel_size: 2}\n"
MULTI = BASE + NODES + "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n"


def test_multi_node_needs_a_shared_cache(tmp_path: Path) -> None:
    assert errors_of(tmp_path, BASE + NODES) == [
        f"{tmp_path}/profile.yaml:4: resources.nodes: the 2 pods of a 2-node server mount the "
        "model cache on 2 machines: ReadWriteOnce attaches to one; set deploy.kubernetes.pvc.access_mode: "
        "ReadWriteMany (and model_download: job to download once)"
    ]


def test_wrong_arithmetic_is_one_clear_error(tmp_path: Path) -> None:
    text = BASE + "resources:\n  gpus: 8\n  nodes: 2\n  tensor_parallel_size: 8\n  pipeline_parallel_size: 1\n"
    text += "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n"
    assert errors_of(tmp_path, text) == [
        f"{tmp_path}/profile.yaml:6: resources.nodes: 2 nodes x 8 GPUs = 16 GPUs, but tensor_parallel_size 8 x "
        "pipeline_parallel_size 1 = 8: they must be equal; as vLLM recommends, set tensor_parallel_size: 8 "
        "(GPUs per node) and pipeline_parallel_size: 2 (nodes)"
    ]


def test_nodes_without_gpus(tmp_path: Path) -> None:
    assert errors_of(tmp_path, BASE + "resources: {gpus: 0, nodes: 2}\n") == [
        f"{tmp_path}/profile.yaml:4: resources.gpus: 2 nodes need GPUs: set resources.gpus to the GPUs of one node"
    ]


def test_tensor_parallel_across_nodes_warns(tmp_path: Path) -> None:
    text = BASE + "resources: {gpus: 4, nodes: 2, tensor_parallel_size: 8}\n"
    plan = plan_of(tmp_path, text + "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n")
    assert (
        f"{tmp_path}/profile.yaml:4: resources.tensor_parallel_size: 8 spans nodes (each has 4 GPUs): tensor "
        "parallel traffic then crosses the network at every layer; prefer tensor_parallel_size: 4, "
        "pipeline_parallel_size: 2" in plan.warnings
    )


def test_single_machine_targets_refuse_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    plan = load_plan(path)
    for target in ("docker", "compose"):
        with pytest.raises(RenderError) as info:
            render(plan, target)
        assert str(info.value) == (
            f"{path}:4: resources.nodes: the {target} target runs on one machine, but this profile spans 2 "
            "nodes; render it for Kubernetes (-t kubernetes: a LeaderWorkerSet), or set nodes: 1"
        )
    with pytest.raises(LaunchError) as launch:
        prepare(path, UpOptions(runtime="docker"))
    assert str(launch.value).startswith(f"{path}:4: resources.nodes: vllmtune up (runtime docker) runs on one machine")


def test_leader_worker_set(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MULTI)
    objs = objects(plan)
    assert list(objs) == ["PersistentVolumeClaim/big-hf-cache", "LeaderWorkerSet/big-group", "Service/big"]
    lws = objs["LeaderWorkerSet/big-group"]
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    tpl = lws["spec"]["leaderWorkerTemplate"]
    assert tpl["size"] == 2 and tpl["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader = tpl["leaderTemplate"]["spec"]["containers"][0]
    worker = tpl["workerTemplate"]["spec"]["containers"][0]
    # the leader runs the image's entrypoint itself (its command runs the Ray head first)
    assert leader["command"][:2] == ["bash", "-c"] and leader["command"][3] == "vllmtune-leader"
    assert leader["args"][:4] == ["vllm", "serve", "--model", "meta-llama/Llama-3.3-70B-Instruct"]
    args = leader["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "8"
    assert args[args.index("--pipeline-parallel-size") + 1] == "2"
    assert args[args.index("--distributed-executor-backend") + 1] == "ray"
    for c in (leader, worker):  # every pod holds one node's GPUs and /dev/shm
        assert c["resources"]["limits"] == {
            "memory": "103Gi",
            "nvidia.com/gpu": "8",
        }  # 1.2 x 70 GB per node + shm + 8Gi
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
        assert env["VLLM_HOST_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "eth0"
        assert env["VLLMTUNE_NODES"] == "2"
    assert "startupProbe" in leader and "startupProbe" not in worker  # only the leader serves HTTP
    assert "ports" not in worker
    assert objs["Service/big"]["spec"]["selector"]["vllmtune.io/role"] == "leader"
    assert tpl["leaderTemplate"]["metadata"]["labels"]["vllmtune.io/role"] == "leader"
    for role in ("leaderTemplate", "workerTemplate"):
        pod_template_ok(tpl[role])
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in tpl["workerTemplate"]["spec"][
        "volumes"
    ]


def test_old_versions_run_their_own_entrypoint_and_keep_user_nccl_settings(tmp_path: Path) -> None:
    text = MULTI.replace('"0.32.0"', '"0.6.4"') + "server: {env: {NCCL_SOCKET_IFNAME: ib0, VLLM_HOST_IP: 10.0.0.9}}\n"
    lws = objects(plan_of(tmp_path, text))["LeaderWorkerSet/big-group"]
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert leader["args"][:4] == ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model"]
    names = [e["name"] for e in leader["env"]]
    assert names.count("NCCL_SOCKET_IFNAME") == names.count("VLLM_HOST_IP") == 1
    assert {"name": "NCCL_SOCKET_IFNAME", "value": "ib0"} in leader["env"]


def test_every_catalogued_version_has_the_ray_backend(tmp_path: Path) -> None:
    # (the refusal of a version without the flag: tests/test_plan.py, with a catalog that lacks it)
    for version in known_versions():
        plan = plan_of(tmp_path, MULTI.replace('"0.32.0"', f'"{version}"'))
        i = plan.args.index("--distributed-executor-backend")
        assert plan.args[i + 1] == "ray", version


# ------------------------------------------------------------------ every object validates


VARIANTS = {
    "multi-node keda podmonitor job": BASE
    + NODES
    + "deploy:\n  kubernetes:\n    pvc: {access_mode: ReadWriteMany}\n    model_download: job\n"
    "    autoscaling: {max_replicas: 3}\n    monitoring: {scrape: podmonitor}\n",
    "hpa servicemonitor init": BASE
    + "prompt_cache: {enabled: true, backend: redis}\n"
    + "deploy:\n  kubernetes:\n    model_download: init-container\n"
    "    autoscaling: {engine: hpa, min_replicas: 2, max_replicas: 6, target: 2.5}\n"
    "    monitoring: {scrape: servicemonitor, labels: {release: prom}, dashboard: true}\n",
    "keda ttft scale-to-zero": BASE
    + "prompt_cache: {enabled: true}\n"
    + "deploy:\n  kubernetes:\n    namespace: llm\n    pvc: {access_mode: ReadWriteMany}\n"
    "    autoscaling: {min_replicas: 0, max_replicas: 2, metric: ttft, target: 0.5}\n",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_core_objects_validate_strictly(tmp_path: Path, variant: str) -> None:
    for obj in kubernetes_objects(plan_of(tmp_path, VARIANTS[variant])):
        if crds.is_custom(obj):
            continue  # custom kinds: test_custom_objects_validate_against_their_crds
        kubernetes_validate().validate(obj, K8S_VERSION, strict=True)


def _custom_objects() -> list[tuple[str, dict[str, Any]]]:
    cwd = os.getcwd()
    out = []
    try:
        os.chdir(ROOT)
        for source in [*SOURCES, str(EXAMPLE)]:
            out += [(source, o) for o in kubernetes_objects(load_plan(source)) if crds.is_custom(o)]
    finally:
        os.chdir(cwd)
    return out


def test_custom_objects_validate_against_their_crds(tmp_path: Path) -> None:
    from tests.conftest import require

    require(crds.available(), "the CRD validators (scripts/setup_crd_validators.sh)")
    docs = [o for _, o in _custom_objects()]
    for text in VARIANTS.values():
        docs += [o for o in kubernetes_objects(plan_of(tmp_path, text)) if crds.is_custom(o)]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"LeaderWorkerSet", "ScaledObject", "PodMonitor", "ServiceMonitor", "InferencePool"}
    for doc in docs:
        crds.validate_custom(doc)
        if doc["kind"] == "LeaderWorkerSet":
            for role in ("leaderTemplate", "workerTemplate"):
                pod_template_ok(doc["spec"]["leaderWorkerTemplate"][role])


def test_no_selector_picks_another_components_pods(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The server's Service must never route to the cache proxy (or Redis, or the Job)."""
    monkeypatch.chdir(ROOT)
    plans = [load_plan(s) for s in SOURCES] + [plan_of(tmp_path, t) for t in VARIANTS.values()]
    for plan in plans:
        objs = kubernetes_objects(plan)
        pods: list[tuple[str, dict[str, str]]] = []
        for o in objs:
            spec = o.get("spec", {})
            if "template" in spec:
                pods.append((o["metadata"]["name"] + "/" + o["kind"], spec["template"]["metadata"]["labels"]))
            for role in ("leaderTemplate", "workerTemplate"):
                if role in spec.get("leaderWorkerTemplate", {}):
                    labels = spec["leaderWorkerTemplate"][role]["metadata"]["labels"]
                    pods.append((o["metadata"]["name"] + "/" + role, labels))
        for o in objs:
            if o["kind"] == "Service":
                selector = o["spec"]["selector"]
            elif o["kind"] == "Deployment":
                selector = o["spec"]["selector"]["matchLabels"]
            else:
                continue
            matched = [name for name, labels in pods if selector.items() <= labels.items()]
            name = o["metadata"]["name"]
            if plan.multi_node and name == plan.name:  # the Service in front of the leaders
                expected = f"{lws_name(plan)}/leaderTemplate"
            else:
                expected = f"{name}/Deployment"
            assert matched == [expected], (plan.name, o["kind"], matched)


# ------------------------------------------------------------------ autoscaling


def test_keda_queue_scaled_object_and_no_replicas_to_fight_over(tmp_path: Path) -> None:
    text = BASE + "deploy:\n  kubernetes:\n    namespace: llm\n    autoscaling: {max_replicas: 4}\n"
    objs = objects(plan_of(tmp_path, text))
    assert "replicas" not in objs["Deployment/big"]["spec"]
    assert objs["ScaledObject/big"]["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "big"},
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "pollingInterval": 15,
        "cooldownPeriod": 300,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}},
        "triggers": [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                    "query": 'sum(vllm:num_requests_waiting{model_name="meta-llama/Llama-3.3-70B-Instruct",namespace="llm"})',
                    "threshold": "5",
                },
            }
        ],
    }


def test_scale_to_zero_wakes_on_the_proxy_and_warns(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, VARIANTS["keda ttft scale-to-zero"])
    triggers = objects(plan)["ScaledObject/big"]["spec"]["triggers"]
    assert triggers[0]["metricType"] == "Value"
    assert triggers[0]["metadata"]["query"] == (
        "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket"
        '{model_name="meta-llama/Llama-3.3-70B-Instruct",namespace="llm"}[2m]))) > 0 or vector(0)'
    )
    assert triggers[0]["metadata"]["threshold"] == "0.5"
    assert triggers[1]["metadata"]["query"] == (
        'clamp_max(sum(rate({__name__=~"vllmtune_cache_(hits|misses|bypass)_total",namespace="llm",'
        'pod=~"big-cache-.*"}[2m])), 1)'
    )
    assert plan.warnings == (
        f"{tmp_path}/profile.yaml:9: deploy.kubernetes.autoscaling.min_replicas: scale to zero: the first request "
        "after idle waits for a cold start (pod scheduling, model download unless cached, load, warm-up: minutes "
        "for large models); clients need long timeouts",
    )


def test_hpa(tmp_path: Path) -> None:
    objs = objects(plan_of(tmp_path, VARIANTS["hpa servicemonitor init"]))
    assert objs["HorizontalPodAutoscaler/big"]["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "big"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "vllm_num_requests_waiting"},
                    "target": {"type": "AverageValue", "averageValue": "2500m"},
                },
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
    }
    assert quantity(5) == "5" and quantity(0.25) == "250m"


def test_autoscaling_mistakes(tmp_path: Path) -> None:
    text = (
        BASE
        + "deploy:\n  kubernetes:\n    autoscaling: {engine: hpa, min_replicas: 0, max_replicas: 2, metric: ttft}\n"
    )
    where = f"{tmp_path}/profile.yaml:6: deploy.kubernetes.autoscaling"
    assert errors_of(tmp_path, text) == [
        f"{where}.min_replicas: the HPA cannot scale to zero; use engine: keda or min_replicas >= 1",
        f"{where}.metric: a TTFT percentile is a PromQL query, not a per-pod metric the HPA can average; "
        "use engine: keda",
    ]
    text = BASE + "deploy:\n  kubernetes:\n    autoscaling: {min_replicas: 3, max_replicas: 2}\n"
    assert errors_of(tmp_path, text) == [f"{where}.min_replicas: 3 is above max_replicas (2)"]


# ------------------------------------------------------------------ monitoring


def test_scrape_annotations_by_default_on_server_and_proxy_only(tmp_path: Path) -> None:
    objs = objects(plan_of(tmp_path, BASE + "prompt_cache: {enabled: true, backend: redis}\n"))
    ann = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}
    server = objs["Deployment/big"]["spec"]["template"]["metadata"]["annotations"]
    proxy = objs["Deployment/big-cache"]["spec"]["template"]["metadata"]["annotations"]
    assert server == {**ann, "prometheus.io/port": "8000"} and proxy == {**ann, "prometheus.io/port": "8080"}
    assert "annotations" not in objs["Deployment/big-redis"]["spec"]["template"]["metadata"]


def test_service_monitor(tmp_path: Path) -> None:
    objs = objects(plan_of(tmp_path, VARIANTS["hpa servicemonitor init"]))
    mon = objs["ServiceMonitor/big"]
    assert mon["metadata"]["labels"]["release"] == "prom"
    assert mon["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "big"}},
        "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
    }
    assert "annotations" not in objs["Deployment/big"]["spec"]["template"]["metadata"]


# ------------------------------------------------------------------ model download


def test_init_container_downloads_everything_the_server_reads(tmp_path: Path) -> None:
    text = (
        BASE.replace("Llama-3.3-70B-Instruct}", "Llama-3.3-70B-Instruct, revision: main}")
        + "speculative: {method: draft_model, model: meta-llama/Llama-3.2-1B-Instruct}\n"
        + "lora: {adapters: [{name: sql, source: org/sql-lora}]}\n"
        + "server: {hf_token: {env: HF_TOKEN}}\n"
        + "deploy: {kubernetes: {model_download: init-container}}\n"
    )
    plan = plan_of(tmp_path, text)
    pod = objects(plan)["Deployment/big"]["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert init["args"] == [
        "meta-llama/Llama-3.3-70B-Instruct@main",
        "meta-llama/Llama-3.2-1B-Instruct",
        "org/sql-lora",
    ]
    assert init["env"] == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "big-secrets", "key": "hf-token"}}}
    ]
    # download happens before the container starts: the startup probe covers load + warm-up only
    assert plan.startup_budget == "23m: 141.1 GB of weights (load at 500 MB/s + 10 min warm-up) x1.5"


def test_job_download_pods_wait_and_run_offline(tmp_path: Path) -> None:
    text = BASE + "deploy: {kubernetes: {model_download: job, pvc: {access_mode: ReadWriteMany}, replicas: 3}}\n"
    plan = plan_of(tmp_path, text)
    objs = objects(plan)
    name = download_job_name(plan)
    assert list(objs) == ["PersistentVolumeClaim/big-hf-cache", f"Job/{name}", "Deployment/big", "Service/big"]
    assert name == "big-download-" + download_marker(plan).rsplit("-", 1)[1].removesuffix(".done")
    job = objs[f"Job/{name}"]["spec"]["template"]
    marker = download_marker(plan)
    assert job["spec"]["containers"][0]["env"] == [{"name": "VLLMTUNE_MARKER", "value": marker}]
    # an edit of the profile must not change the (immutable) pod template of the Job
    assert "vllmtune.io/profile-hash" not in job["metadata"]["labels"]
    pod = objs["Deployment/big"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-model"]
    assert pod["initContainers"][0]["env"][1] == {"name": "VLLMTUNE_JOB", "value": name}
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in pod["containers"][0]["env"]
    assert marker.startswith("/root/.cache/huggingface/.vllmtune/big-")
    assert errors_of(tmp_path, text.replace("ReadWriteMany", "ReadWriteOncePod")) == [
        f"{tmp_path}/profile.yaml:4: deploy.kubernetes.model_download: the download Job and the servers share the "
        "cache volume: ReadWriteOncePod allows one pod; set pvc.access_mode: ReadWriteMany"
    ]


STUB_HUB = """
import json, os
LOG = os.environ["STUB_LOG"]
class HfApi:
    def list_repo_files(self, repo, revision=None):
        if "llama" in repo:
            return ["config.json", "model.safetensors", "consolidated.safetensors", "original/consolidated.pth"]
        return ["x.bin"]
def snapshot_download(repo, revision=None, allow_patterns=None, ignore_patterns=None):
    with open(LOG, "a") as fh:
        fh.write(json.dumps([repo, revision, allow_patterns, ignore_patterns]) + "\\n")
    return "/cache/" + repo
"""


def test_download_and_wait_programs_run(tmp_path: Path) -> None:
    """The fixed programs the pods run, with a stand-in huggingface_hub (no hub here)."""
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "huggingface_hub.py").write_text(STUB_HUB)
    log, marker = tmp_path / "calls.jsonl", tmp_path / "cache" / ".vllmtune" / "m.done"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "stub"),
        "STUB_LOG": str(log),
        "VLLMTUNE_MARKER": str(marker),
        "VLLMTUNE_JOB": "big-download-0123456789",
    }
    waiter = subprocess.Popen([sys.executable, "-c", WAIT_PY], env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert waiter.poll() is None  # still waiting: no marker yet
    done = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_PY, "meta-llama/x@main", "org/old"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "vllmtune: weights ready in" in done.stdout
    calls = [yaml.safe_load(line) for line in log.read_text().splitlines()]
    tail = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja"]
    assert calls == [
        ["meta-llama/x", "main", ["*.safetensors", *tail], ["original/*", "consolidated*"]],
        ["org/old", None, ["*.bin", "*.pt", *tail], ["original/*"]],
    ]
    assert marker.read_text() == "meta-llama/x@main\norg/old\n"
    out, _ = waiter.communicate(timeout=30)  # polls every 15 s
    assert waiter.returncode == 0 and out.endswith("vllmtune: weights ready\n")


# ------------------------------------------------------------------ start-up budget


def test_startup_budget(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, BASE)
    assert plan.health.startup_seconds == 58 * 60  # (1411 s + 282 s + 600 s) x 1.5, rounded up
    assert plan.startup_budget == (
        "58m: 141.1 GB of weights (download at 100 MB/s + load at 500 MB/s + 10 min warm-up) x1.5"
    )
    unknown = plan_of(tmp_path, BASE.replace("meta-llama/Llama-3.3-70B-Instruct", "org/mystery"))
    assert unknown.health.startup_seconds == 1800
    assert unknown.startup_budget == "30m: model size unknown to vllmtune (set probes.startup_timeout)"
    given = plan_of(tmp_path, BASE + "deploy: {kubernetes: {probes: {startup_timeout: 2h}}}\n")
    assert (given.health.startup_seconds, given.startup_budget) == (7200, "startup_timeout 2h (profile)")
    multi = plan_of(tmp_path, MULTI)
    assert multi.startup_budget.endswith("x1.5 + 10 min for the Ray cluster")


def test_dashboard_config_map(tmp_path: Path) -> None:
    import json

    from vllmtune.render.grafana import render_grafana

    plan = plan_of(tmp_path, VARIANTS["hpa servicemonitor init"])
    cm = objects(plan)["ConfigMap/big-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"] == {"big.json": render_grafana(plan)}
    assert json.loads(cm["data"]["big.json"])["panels"]


def test_drift_reads_the_leader_of_a_leader_worker_set(tmp_path: Path) -> None:
    from vllmtune.drift import drift

    deploy = "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}, autoscaling: {max_replicas: 2}}}\n"
    path = write(tmp_path, BASE + NODES + deploy)
    dump = tmp_path / "dump.yaml"
    dump.write_text(render(load_plan(path), "kubernetes"))
    assert drift(path, k8s_dump=str(dump))["drift"] == []
    dump.write_text(dump.read_text().replace("- ray\n", "- mp\n"))
    assert drift(path, k8s_dump=str(dump))["drift"] == [
        "distributed_executor_backend: running mp, profile ray (--distributed-executor-backend)"
    ]


def test_autoscaler_queries_are_valid_promql(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import require
    from tests.render.test_grafana import promtool_check
    from vllmtune.render.k8s import autoscaling_queries

    require(shutil.which("promtool") is not None, "promtool (Debian package prometheus)")
    exprs: list[str] = []
    for text in VARIANTS.values():
        plan = plan_of(tmp_path, text)
        if plan.autoscaling is not None:
            exprs += autoscaling_queries(plan).values()
    assert len(exprs) == 4  # queue, queue, ttft + the proxy wake-up
    proc = promtool_check(exprs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout
