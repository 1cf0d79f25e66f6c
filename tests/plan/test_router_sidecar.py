"""The router as a plan sidecar (plan/sidecars.py): its place before the proxy, its args per
target (``resolved_args`` with ``kubernetes`` / ``local``), and the local runtime's replicas."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from vllmtune.plan import SERVER_SERVICE, DockerReplica, load_plan

EXAMPLE = str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml")
BASE = 'name: r\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'


def test_the_router_comes_before_the_proxy_which_waits_for_it() -> None:
    plan = load_plan(EXAMPLE)
    assert [sc.role for sc in plan.sidecars] == ["router", "cache"]
    router, cache = plan.sidecars
    assert cache.waits_for == ("vllm", "router")
    assert (router.publish, cache.publish, router.fronts_server) == (False, True, True)
    assert plan.local_replicas == 2


def test_the_router_args_per_target() -> None:
    (router, _) = load_plan(EXAMPLE).sidecars
    common = ["--host", "0.0.0.0", "--port", "8100", "--policy", "cache_aware"]
    assert router.resolved_args({"replica0": "srv", "replica1": "srv-2"}, 8000) == [
        *common,
        "--worker-urls",
        "http://srv:8000",
        "http://srv-2:8000",
    ]
    assert router.resolved_args({"vllm": "127.0.0.1", "port0": "9000", "port1": "9001"}, 9000, local=True) == [
        *common,
        "--worker-urls",
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9001",
        "--worker-startup-check-interval",
        "1",
    ]
    assert router.resolved_args({}, 8000, kubernetes=True)[6:8] == ["--service-discovery", "--selector"]
    assert router.local_install == "pip install vllm-router==0.1.17"


def test_without_routing_one_local_server_and_no_router(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BASE)
    plan = load_plan(str(tmp_path / "p.yaml"))
    assert (plan.local_replicas, plan.sidecars) == (1, ())


def test_autoscaling_alone_runs_two_local_replicas(tmp_path: Path) -> None:
    text = (
        BASE
        + "routing: {}\ndeploy:\n  kubernetes:\n    autoscaling: {max_replicas: 4}\n    pvc: {access_mode: ReadWriteMany}\n"
    )
    (tmp_path / "p.yaml").write_text(text)
    plan = load_plan(str(tmp_path / "p.yaml"))
    assert plan.local_replicas == 2
    assert plan.sidecars[0].publish  # no proxy: the router is what clients reach


def test_docker_replicas_each_with_its_port_gpus_and_replica_label() -> None:
    plan = load_plan(EXAMPLE)
    labels = plan.labels
    assert plan.docker_replicas == (
        DockerReplica("two-replicas", SERVER_SERVICE, 8000, ("0",), (*labels, ("vllmtune.io/replica", "1"))),
        DockerReplica("two-replicas-2", "vllm-2", 8001, ("1",), (*labels, ("vllmtune.io/replica", "2"))),
    )


def test_four_replicas_of_two_gpus_never_share_a_gpu(tmp_path: Path) -> None:
    text = BASE + "resources: {gpus: 2, tensor_parallel_size: 2}\nrouting: {}\ndeploy: {kubernetes: {replicas: 4}}\n"
    (tmp_path / "p.yaml").write_text(text)
    plan = load_plan(str(tmp_path / "p.yaml"))
    assert [(r.container, r.service, r.host_port, r.gpu_device_ids) for r in plan.docker_replicas] == [
        ("r", "vllm", 8000, ("0", "1")),
        ("r-2", "vllm-2", 8001, ("2", "3")),
        ("r-3", "vllm-3", 8002, ("4", "5")),
        ("r-4", "vllm-4", 8003, ("6", "7")),
    ]


def test_one_server_keeps_its_names_and_the_plan_gpu_count(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BASE)
    plan = load_plan(str(tmp_path / "p.yaml"))
    assert plan.docker_replicas == (DockerReplica("r", "vllm", 8000, (), plan.labels),)


def test_up_port_moves_every_replica_and_what_the_sidecars_reach() -> None:
    from vllmtune.containers import sidecar_container

    plan = load_plan(EXAMPLE).with_endpoint(port=9000)
    assert [r.host_port for r in plan.docker_replicas] == [9000, 9001]
    router, cache = (sidecar_container(plan, sc) for sc in plan.sidecars)
    assert router.command[-3:] == ("--worker-urls", "http://two-replicas:9000", "http://two-replicas-2:9000")
    assert cache.command[:2] == ("--upstream", "http://two-replicas-router:8100")  # the router's, not vLLM's port
