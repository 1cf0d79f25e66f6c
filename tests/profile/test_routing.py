"""The ``routing`` section (a router in front of the replicas): its defaults, the router's own
policy names, and the whole located messages of its checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.require_real import require
from vllmtune.errors import ProfileError
from vllmtune.plan import load_plan
from vllmtune.profile.models import ROUTER_POLICIES, ROUTER_VERSION, RoutingSection

BASE = 'name: q\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'
TWO = "deploy:\n  kubernetes:\n    replicas: 2\n    pvc: {access_mode: ReadWriteMany}\n"


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    try:
        load_plan(str(path))
    except ProfileError as exc:
        return [str(p).replace(str(tmp_path) + "/", "") for p in exc.problems]
    return []


def test_defaults_dumped_whole() -> None:
    assert RoutingSection().model_dump() == {
        "router": "vllm-router",
        "policy": "cache_aware",
        "port": 8100,
        "gateway": None,
        "image": "vllmtune/vllm-router",
        "epp_image": "registry.k8s.io/gateway-api-inference-extension/epp:v1.2.1",
    }


def test_two_replicas_and_a_policy_load(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE + "routing: {policy: round_robin}\n" + TWO) == []


def test_a_gateway_the_extension_does_not_name_is_refused(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE + "routing: {gateway: istio}\n" + TWO) == [
        "p.yaml:4: routing.gateway: \"istio\" is not allowed; input should be 'inference-extension'",
    ]


def test_one_replica_buys_nothing(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE + "routing: {policy: cache_aware}\n") == [
        "p.yaml:4: routing: a router in front of one replica buys nothing (deploy.kubernetes.replicas is 1, "
        "no autoscaling): every request goes to the same server; set deploy.kubernetes.replicas: 2 or more "
        "(or autoscaling with max_replicas >= 2), or remove routing",
    ]


def test_autoscaling_to_two_is_enough(tmp_path: Path) -> None:
    text = (
        BASE
        + "routing: {}\ndeploy:\n  kubernetes:\n    autoscaling: {max_replicas: 2}\n    pvc: {access_mode: ReadWriteMany}\n"
    )
    assert errors(tmp_path, text) == []


def test_kv_aware_is_refused_with_what_it_needs(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE + "routing: {policy: kv_aware}\n" + TWO) == [
        "p.yaml:4: routing.policy: kv_aware needs each replica's KV events (vLLM --kv-events-config, one ZMQ "
        f"endpoint per worker given to the router as --kv-event-source), which vllmtune does not wire, and "
        f"vllm-router {ROUTER_VERSION} routes by them only prompts sent as token ids (measured: text prompts "
        "are spread by load); use consistent_hash with a session header such as x-tenant-id (measured 1.4-1.9x "
        "round_robin's prefix-cache hits)",
    ]


def test_a_policy_name_not_the_routers_is_refused(tmp_path: Path) -> None:
    assert errors(tmp_path, BASE + "routing: {policy: least_loaded}\n" + TWO) == [
        "p.yaml:4: routing.policy: \"least_loaded\" is not allowed; input should be 'random', 'round_robin', "
        "'cache_aware', 'kv_aware', 'power_of_two', 'consistent_hash' or 'sticky_least_loaded'",
    ]


def test_the_router_port_must_be_free(tmp_path: Path) -> None:
    text = BASE + "prompt_cache: {enabled: true}\nrouting: {port: 8080}\n" + TWO
    assert errors(tmp_path, text) == [
        "p.yaml:5: routing.port: 8080 is taken by the server or the prompt-cache proxy; pick another port",
    ]


def test_the_policy_names_and_version_are_the_installed_routers() -> None:
    """The pinned facts against the real router: its --help's policy choices, its version."""
    require(shutil.which("vllm-router") is not None, "vllm-router (the test extra: pip install -e '.[test]')")
    out = subprocess.run(["vllm-router", "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    choices = out.split("--policy {", 1)[1].split("}", 1)[0].split(",")
    assert tuple(choices) == ROUTER_POLICIES
    from importlib.metadata import version

    assert version("vllm-router") == ROUTER_VERSION


def warnings(tmp_path: Path, text: str) -> list[str]:
    from vllmtune.profile.loader import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(text)
    return [str(w).replace(str(tmp_path) + "/", "") for w in load_profile(str(path)).warnings]


def test_cache_aware_warns_that_chat_requests_reach_it_without_text(tmp_path: Path) -> None:
    assert warnings(tmp_path, BASE + "routing: {policy: cache_aware}\n" + TWO) == [
        f"p.yaml:4: routing.policy: vllm-router {ROUTER_VERSION} matches prefixes in /v1/completions prompts only: "
        "/v1/chat/completions requests reach cache_aware without their text, so chat traffic is spread without "
        "prefix affinity (measured: benchmarks/routing_policies.py --api chat)",
    ]


def test_consistent_hash_warns_that_it_needs_a_session_header(tmp_path: Path) -> None:
    assert warnings(tmp_path, BASE + "routing: {policy: consistent_hash}\n" + TWO) == [
        "p.yaml:4: routing.policy: consistent_hash keys on a session header (x-session-id, x-user-id, "
        "x-tenant-id, x-correlation-id, x-request-id, x-trace-id): without one, vllm-router "
        f"{ROUTER_VERSION} sends every chat request to the same replica and spreads completions by a hash of "
        "each prompt; have clients send one (with x-tenant-id it kept each tenant's prefix on one replica: "
        "1.4-1.9x round_robin's hits)",
    ]
    assert warnings(tmp_path, BASE + "routing: {policy: round_robin}\n" + TWO) == []
