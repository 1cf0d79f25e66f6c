"""containers' public names called directly on one plan with a Redis-backed prompt cache: each
SidecarContainer whole, before_server (Redis first, the proxy once vLLM answers) and
image_build_hint (only the proxy's image is built by vllmtune)."""

from __future__ import annotations

import re
from pathlib import Path

from vllmtune import __version__
from vllmtune.containers import SidecarContainer, before_server, image_build_hint, sidecar_container
from vllmtune.plan import DeploymentPlan, SecretEnv, load_plan

SECRET = SecretEnv(
    name="VLLMTUNE_REDIS_PASSWORD",
    source_env="VLLMTUNE_REDIS_PASSWORD",
    k8s_secret="stk-redis-auth",
    k8s_key="password",
    field="prompt_cache.backend",
)


def _plan(tmp_path: Path) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text("extends: all-levers\nname: stk\nprompt_cache: {enabled: true, backend: redis}\n")
    return load_plan(str(p))


def _labels(role: str, profile_hash: str) -> tuple[tuple[str, str], ...]:
    return (
        ("app.kubernetes.io/name", "vllm"),
        ("app.kubernetes.io/instance", "stk"),
        ("app.kubernetes.io/component", role),
        ("app.kubernetes.io/managed-by", "vllmtune"),
        ("vllmtune.io/profile", "stk"),
        ("vllmtune.io/profile-hash", profile_hash),
        ("vllmtune.io/vllm-version", "0.32.0"),
        ("vllmtune.io/version", __version__),
    )


def test_sidecar_containers_whole(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    cache_sc, redis_sc = plan.sidecars
    cache, redis = sidecar_container(plan, cache_sc), sidecar_container(plan, redis_sc)
    profile_hash = dict(cache.labels)["vllmtune.io/profile-hash"]
    assert re.fullmatch("[0-9a-f]{12}", profile_hash)
    assert cache == SidecarContainer(
        role="cache",
        name="stk-cache",
        image=f"vllmtune/cache-proxy:{__version__}",
        network="stk-net",
        restart="unless-stopped",
        labels=_labels("cache", profile_hash),
        publish=("127.0.0.1", 8080),
        env=(),
        secret_env=(SECRET,),
        entrypoint=None,
        command=(
            "--upstream",
            "http://stk:8000",
            "--host",
            "0.0.0.0",
            "--port",
            "8080",
            "--backend",
            "redis",
            "--ttl",
            "86400",
            "--max-temperature",
            "0.1",
            "--redis-url",
            "redis://stk-redis:6379/0",
        ),
        port=8080,
        health_path="/cache/stats",
        before_server=False,  # the proxy starts once vLLM answers
        user="10001:10001",
        read_only=True,
        tmpfs=("/tmp",),
        memory="512m",
    )
    assert redis == SidecarContainer(
        role="redis",
        name="stk-redis",
        image="redis:7.4.2-alpine",
        network="stk-net",
        restart="unless-stopped",
        labels=_labels("redis", profile_hash),
        publish=None,  # reached on the network only
        env=(),
        secret_env=(SECRET,),
        entrypoint="sh",
        command=(
            "-c",
            'exec redis-server - "$@" <<EOF\nrequirepass $VLLMTUNE_REDIS_PASSWORD\nEOF\n',
            "redis",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "1gb",
            "--maxmemory-policy",
            "allkeys-lru",
        ),
        port=6379,
        health_path=None,
        before_server=True,  # Redis is up before vLLM
        user="10001:10001",
        read_only=True,
        tmpfs=("/data",),
        memory="1536m",
    )
    assert (cache.cap_drop, cache.security_opt) == (("ALL",), ("no-new-privileges",))
    assert (before_server(redis), before_server(cache)) == (True, False)
    assert image_build_hint(cache_sc) == f"vllmtune cache build-image --tag vllmtune/cache-proxy:{__version__}"
    assert image_build_hint(redis_sc) is None


def test_sidecar_hosts_name_every_replica_by_container_or_compose_service() -> None:
    from tests.conftest import ROOT
    from vllmtune.containers import sidecar_hosts

    plan = load_plan(str(ROOT / "profiles" / "examples" / "two-replicas-routing.yaml"))
    assert sidecar_hosts(plan) == {
        "vllm": "two-replicas",
        "replica0": "two-replicas",
        "replica1": "two-replicas-2",
        "redis": "two-replicas-redis",
        "router": "two-replicas-router",
    }
    assert sidecar_hosts(plan, compose=True) == {
        "vllm": "vllm",
        "replica0": "vllm",
        "replica1": "vllm-2",
        "redis": "redis",
        "router": "router",
    }
