"""Plan -> a compose-spec file (no obsolete ``version:`` key), as a dict dumped once.

What both Compose v2 (``docker compose``) and v1 1.27+ (``docker-compose``, the one Debian 12
ships) accept: no top-level ``name:`` (v1 rejects it); the project name is given with ``-p``,
as the header's start command says."""

from __future__ import annotations

from typing import Any

from vllmtune.containers import image_build_hint, sidecar_container
from vllmtune.plan import DeploymentPlan, Sidecar
from vllmtune.profile.yamlio import dump_yaml

SERVICE = "vllm"


def esc(text: str) -> str:
    """Compose interpolates ``$`` in every string; a literal one is written ``$$``."""
    return text.replace("$", "$$")


def health_test(port: int, path: str) -> list[str]:
    """A healthcheck that needs only the python3 every vLLM image has (no curl)."""
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    return ["CMD", "python3", "-c", code]


def compose_dict(plan: DeploymentPlan) -> dict[str, Any]:
    """The compose document as plain data."""
    service: dict[str, Any] = {
        "image": plan.image,
        "container_name": plan.docker_container,
        "restart": plan.compose_restart,
        "command": [esc(a) for a in plan.args],
        "ports": [f"{plan.docker_bind}:{plan.port}:{plan.port}"],
    }
    env: dict[str, str] = {k: esc(v) for k, v in plan.env}
    for s in plan.secret_env:  # interpolated by compose from the caller's environment
        env[s.name] = f"${{{s.source_env}:?set {s.source_env} ({s.field})}}"
    if env:
        service["environment"] = env
    volumes: list[str] = []
    named: dict[str, Any] = {}
    for m in plan.mounts:
        if m.kind == "cache":
            source = plan.compose_hf_cache
            if "/" not in source and not source.startswith((".", "~")):
                named[source] = {}
            volumes.append(f"{esc(source)}:{m.target}")
        else:
            volumes.append(f"{esc(m.source)}:{m.target}" + (":ro" if m.read_only else ""))
    service["volumes"] = volumes
    if plan.shm.ipc_host:
        service["ipc"] = "host"
    else:
        service["shm_size"] = plan.shm.size
    if plan.gpus:
        service["deploy"] = {
            "resources": {
                "reservations": {"devices": [{"driver": "nvidia", "count": plan.gpus, "capabilities": ["gpu"]}]}
            }
        }
    service["healthcheck"] = {
        "test": health_test(plan.port, plan.health.path),
        "interval": f"{plan.health.period_seconds}s",
        "timeout": "5s",
        "retries": 3,
        # Long enough for a first start that downloads the weights.
        "start_period": f"{plan.compose_start_period_seconds}s",
    }
    service["labels"] = dict(plan.labels)
    services: dict[str, Any] = {SERVICE: service}
    for sc in plan.sidecars:
        services[sc.role] = sidecar_service(plan, sc)
    doc: dict[str, Any] = {"services": services}
    if named:
        doc["volumes"] = named
    return doc


def sidecar_service(plan: DeploymentPlan, sc: Sidecar) -> dict[str, Any]:
    """A sidecar as a compose service: reaches vLLM and Redis by service name."""
    svc: dict[str, Any] = {"image": sc.image, "restart": plan.compose_restart}
    if sc.command:
        svc["entrypoint"] = [esc(a) for a in sc.command]
    svc["command"] = [esc(a) for a in sc.resolved_args({"vllm": SERVICE, "redis": "redis"})]
    if sc.publish:
        svc["ports"] = [f"{plan.docker_bind}:{sc.port}:{sc.port}"]
    env = {k: esc(v) for k, v in sc.env}
    for s in sc.secret_env:
        env[s.name] = f"${{{s.source_env}:?set {s.source_env} ({s.field})}}"
    if env:
        svc["environment"] = env
    if sc.role == "cache":
        # The proxy answers misses from vLLM: start it once vLLM is healthy.
        svc["depends_on"] = {SERVICE: {"condition": "service_healthy"}}
        if any(x.role == "redis" for x in plan.sidecars):
            svc["depends_on"]["redis"] = {"condition": "service_healthy"}
    if sc.health_path:
        svc["healthcheck"] = {
            "test": health_test(sc.port, sc.health_path),
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
        }
    elif sc.role == "redis":
        # an answer without the password is NOAUTH, not PONG
        ping = 'REDISCLI_AUTH="$$VLLMTUNE_REDIS_PASSWORD" redis-cli ping | grep -q PONG'
        svc["healthcheck"] = {"test": ["CMD-SHELL", ping], "interval": "5s", "timeout": "3s", "retries": 5}
    # the same hardening as the docker script and `up` (one spec: vllmtune/containers.py)
    c = sidecar_container(plan, sc)
    if c.user is not None:
        svc["user"] = c.user
    if c.read_only:
        svc["read_only"] = True
    if c.tmpfs:
        svc["tmpfs"] = list(c.tmpfs)
    svc["cap_drop"] = list(c.cap_drop)
    svc["security_opt"] = list(c.security_opt)
    svc["mem_limit"] = c.memory
    svc["labels"] = plan.sidecar_labels(sc.role)
    return svc


def render_compose(plan: DeploymentPlan) -> str:
    """The compose YAML text."""
    header = (
        f"# Generated by vllmtune from profile {plan.name} (hash {plan.profile_hash}); "
        "re-render instead of editing.\n"
        f"# Start: docker compose -p {plan.name} -f THIS_FILE up -d   (Compose v1: docker-compose -p {plan.name} ...)\n"
    )
    for sc in plan.sidecars:
        hint = image_build_hint(sc)
        if hint:
            header += (
                f"# The proxy image is on no registry: first {hint}\n"
                "#   (or push it to yours: set prompt_cache.image to REGISTRY/NAME, then add --push)\n"
            )
    return header + dump_yaml(compose_dict(plan))
