"""Plan -> a compose-spec file (no obsolete ``version:`` key), as a dict dumped once.

What both Compose v2 (``docker compose``) and v1 1.27+ (``docker-compose``, the one Debian 12
ships) accept: no top-level ``name:`` (v1 rejects it); the project name is given with ``-p``,
as the header's start command says."""

from __future__ import annotations

from typing import Any

from vllmtune.containers import image_build_hint, sidecar_container, sidecar_hosts
from vllmtune.plan import DeploymentPlan, DockerReplica, Sidecar
from vllmtune.profile.yamlio import dump_yaml


def esc(text: str) -> str:
    """Compose interpolates ``$`` in every string; a literal one is written ``$$``."""
    return text.replace("$", "$$")


def _health_test(port: int, path: str) -> list[str]:
    """A healthcheck that needs only the python3 every vLLM image has (no curl)."""
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    return ["CMD", "python3", "-c", code]


def compose_dict(plan: DeploymentPlan) -> dict[str, Any]:
    """The compose document as plain data."""
    named: dict[str, Any] = {}
    services: dict[str, Any] = {r.service: _server_service(plan, r, named) for r in plan.docker_replicas}
    for sc in plan.sidecars:
        services[sc.role] = _sidecar_service(plan, sc)
    doc: dict[str, Any] = {"services": services}
    if named:
        doc["volumes"] = named
    return doc


def _server_service(plan: DeploymentPlan, replica: DockerReplica, named: dict[str, Any]) -> dict[str, Any]:
    """One vLLM server as a compose service (``named``: the named volumes it uses, filled in)."""
    service: dict[str, Any] = {
        "image": plan.image,
        "container_name": replica.container,
        "restart": plan.compose_restart,
        "command": [esc(a) for a in plan.args],
        "ports": [f"{plan.docker_bind}:{replica.host_port}:{plan.port}"],
    }
    env: dict[str, str] = {k: esc(v) for k, v in plan.env}
    for s in plan.secret_env:  # interpolated by compose from the caller's environment
        env[s.name] = f"${{{s.source_env}:?set {s.source_env} ({s.field})}}"
    if env:
        service["environment"] = env
    volumes: list[str] = []
    for m in plan.mounts:
        if m.kind == "cache":
            source = plan.compose_hf_cache
            if plan.compose_hf_cache_volume:
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
        device: dict[str, Any] = {"driver": "nvidia", "count": plan.gpus, "capabilities": ["gpu"]}
        if replica.gpu_device_ids:  # its own GPUs (compose: count and device_ids exclude each other)
            device = {"driver": "nvidia", "device_ids": list(replica.gpu_device_ids), "capabilities": ["gpu"]}
        service["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
    service["healthcheck"] = {
        "test": _health_test(plan.port, plan.health.path),
        "interval": f"{plan.health.period_seconds}s",
        "timeout": f"{plan.health.check_timeout_seconds}s",
        "retries": plan.health.check_retries,
        # Long enough for a first start that downloads the weights.
        "start_period": f"{plan.compose_start_period_seconds}s",
    }
    service["labels"] = dict(replica.labels)
    return service


def _sidecar_service(plan: DeploymentPlan, sc: Sidecar) -> dict[str, Any]:
    """A sidecar as a compose service: reaches vLLM and Redis by service name."""
    svc: dict[str, Any] = {"image": sc.image, "restart": plan.compose_restart}
    if sc.command:
        svc["entrypoint"] = [esc(a) for a in sc.command]
    svc["command"] = [esc(a) for a in sc.resolved_args(sidecar_hosts(plan, compose=True), plan.port)]
    if sc.publish:
        svc["ports"] = [f"{plan.docker_bind}:{sc.port}:{sc.port}"]
    env = {k: esc(v) for k, v in sc.env}
    for s in sc.secret_env:
        env[s.name] = f"${{{s.source_env}:?set {s.source_env} ({s.field})}}"
    if env:
        svc["environment"] = env
    if sc.waits_for:
        # "vllm": every server (a router waits for all its workers)
        waits = [s for w in sc.waits_for for s in ([r.service for r in plan.docker_replicas] if w == "vllm" else [w])]
        svc["depends_on"] = {w: {"condition": "service_healthy"} for w in waits}
    h = sc.health
    test = _health_test(sc.port, h.path) if h.path else ["CMD-SHELL", esc(h.command)] if h.command else None
    if test is not None:
        svc["healthcheck"] = {
            "test": test,
            "interval": f"{h.interval_seconds}s",
            "timeout": f"{h.timeout_seconds}s",
            "retries": h.retries,
        }
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
            if sc.build_hint:
                header += f"# The {sc.role} image is on no registry: first {hint}\n"
            else:
                header += (
                    f"# The proxy image is on no registry: first {hint}\n"
                    "#   (or push it to yours: set prompt_cache.image to REGISTRY/NAME, then add --push)\n"
                )
    return header + dump_yaml(compose_dict(plan))
