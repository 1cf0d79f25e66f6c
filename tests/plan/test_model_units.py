"""vllmtune.plan.model: the plan's frozen parts, as the planner resolves them from the example
profiles (profiles/examples), asserted whole."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from vllmtune.plan import load_plan
from vllmtune.plan.model import (
    Autoscaling,
    Hardening,
    Health,
    Monitoring,
    Mount,
    MultiNode,
    PromptCachePlan,
    QuantizeJob,
    Shm,
    Sidecar,
    SidecarHealth,
)

LLAMA_70B = "profiles/examples/llama-70b-2x8.yaml"


def test_multi_node_two_nodes_of_eight() -> None:
    # resources: gpus 8 (per node), nodes 2 -> a LeaderWorkerSet whose pods form a Ray cluster
    assert load_plan(LLAMA_70B).multi_node == MultiNode(
        nodes=2,
        gpus_per_node=8,
        ray_port=6379,
        ray_wait_seconds=600,
        socket_env=(("NCCL_SOCKET_IFNAME", "eth0"), ("GLOO_SOCKET_IFNAME", "eth0")),
        host_ip_from_pod=True,
        where=f"{LLAMA_70B}:20",
    )


def test_autoscaling_and_monitoring_from_deploy_kubernetes() -> None:
    plan = load_plan(LLAMA_70B)
    assert plan.autoscaling == Autoscaling(
        engine="keda",
        min_replicas=1,
        max_replicas=4,
        metric="queue",
        target=8.0,
        prometheus_url="http://prometheus-operated.monitoring.svc:9090",
        cooldown_seconds=300,
        polling_seconds=15,
    )
    assert plan.monitoring == Monitoring(
        scrape="podmonitor", interval="15s", labels=(("release", "kube-prometheus-stack"),), dashboard=True
    )


def test_parallel_workers_share_the_host_ipc_and_the_hf_cache_is_mounted() -> None:
    plan = load_plan(LLAMA_70B)
    assert plan.shm == Shm(ipc_host=True, size="16g")
    assert plan.mounts == (Mount("~/.cache/huggingface", "/root/.cache/huggingface", read_only=False, kind="cache"),)
    assert plan.hf_cache_source == "~/.cache/huggingface"


def test_server_health_and_its_startup_probe_budget() -> None:
    # Llama-3.3-70B's size is in the built-in catalog: the budget follows from it
    health = load_plan(LLAMA_70B).health
    assert health == Health(
        path="/health",
        startup_seconds=1980,
        period_seconds=10,
        readiness_failures=3,
        liveness_failures=6,
        liveness_timeout_seconds=5,
        check_timeout_seconds=5,
        check_retries=3,
    )
    assert health.startup_failures == 198
    assert replace(health, startup_seconds=5).startup_failures == 1  # never 0
    assert replace(health, startup_seconds=961).startup_failures == 97  # rounded up


def test_the_prompt_cache_proxy_sidecar() -> None:
    plan = load_plan("profiles/examples/cpu-ladder.yaml")
    assert plan.prompt_cache == PromptCachePlan(
        backend="memory", ttl_seconds=3600, max_temperature=0.1, skip_pii=True, redis_url=None
    )
    (proxy,) = plan.sidecars
    assert isinstance(proxy, Sidecar)
    assert proxy.health == SidecarHealth(
        path="/cache/stats", command=None, interval_seconds=10, timeout_seconds=5, retries=3
    )
    assert proxy.health_path == "/cache/stats"
    assert proxy.hardening == Hardening(
        run_as_user=10001,
        read_only_root=True,
        writable_paths=("/tmp",),
        cpu_request="250m",
        memory_request="512Mi",
        memory_limit="512Mi",
        writable_size="64Mi",
    )


def test_sidecar_args_name_other_services_per_target() -> None:
    sidecar = Sidecar(
        role="cache",
        image="img",
        args=("--upstream", "http://{vllm}:{vllm_port}", "--redis", "redis://{redis}:6379/0"),
        port=8080,
        publish=True,
        health=SidecarHealth("/cache/stats", None, 10, 5, 3),
        port_name="http",
        replicas=1,
        before_server=False,
    )
    assert sidecar.resolved_args({"vllm": "p-vllm", "redis": "p-redis"}, 8000) == [
        "--upstream", "http://p-vllm:8000", "--redis", "redis://p-redis:6379/0",
    ]  # fmt: skip
    assert sidecar.resolved_args({"vllm": "p-vllm", "redis": "p-redis"}, 9000)[1] == "http://p-vllm:9000"
    assert sidecar.hardening == Hardening(None, False, (), "100m", "128Mi", "128Mi")
    with pytest.raises(FrozenInstanceError):
        sidecar.port = 1  # type: ignore[misc]


def test_the_quantize_job_of_the_w4a16_example() -> None:
    assert load_plan("profiles/examples/quantize-w4a16.yaml").quantize == QuantizeJob(
        source="meta-llama/Llama-3.1-8B-Instruct",
        source_host_path=None,
        revision=None,
        output="my-org/Llama-3.1-8B-Instruct-W4A16-AWQ",
        output_host_path=None,
        push_to_hub=True,
        scheme="W4A16",
        algorithm="awq",
        dataset="HuggingFaceH4/ultrachat_200k",
        dataset_host_path=None,
        split="train_sft",
        samples=256,
        max_seq_length=512,
        ignore=("lm_head",),
        requirement="llmcompressor==0.14.0.1",
        image="vllm/vllm-openai:v0.32.0",
        gpus=1,
        source_bytes=16_060_522_496,  # Llama-3.1-8B's 8,030,261,248 parameters in 16 bits
        backoff_limit=1,
    )
