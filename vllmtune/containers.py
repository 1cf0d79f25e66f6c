"""The sidecar containers of a plan on one Docker engine, as data.

The rendered ``docker run`` script (vllmtune/render/docker.py) and ``vllmtune up``'s Docker
runtime (vllmtune/runtime/docker_backend.py) both turn these specs into containers -- one as
words of a script, one as Docker SDK arguments -- so that name, network, labels, hardening,
environment and argv cannot drift apart. Imports only the plan (``render`` stays fast).
"""

from __future__ import annotations

from dataclasses import dataclass

from vllmtune.plan import DeploymentPlan, SecretEnv, Sidecar, docker_size


@dataclass(frozen=True)
class SidecarContainer:
    """One sidecar (the cache proxy, its Redis) as ``docker run`` starts it."""

    role: str  # cache | redis
    name: str
    image: str
    network: str
    restart: str
    labels: tuple[tuple[str, str], ...]
    publish: tuple[str, int] | None  # (host address, port): the same port inside and outside
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]  # passed by name: the value comes from the environment
    entrypoint: str | None  # None: the image's own
    command: tuple[str, ...]  # argv after the entrypoint
    port: int
    health_path: str | None
    before_server: bool  # started before vLLM (Redis), or once vLLM answers (the proxy)
    # hardening (Sidecar.hardening): what the Kubernetes securityContext says, in Docker's words
    user: str | None  # "uid:gid"
    read_only: bool
    tmpfs: tuple[str, ...]  # writable paths under a read-only root
    memory: str  # docker's spelling ("512m")
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = ("no-new-privileges",)


def network_name(plan: DeploymentPlan) -> str:
    """The user-defined network that lets the sidecars reach vLLM by name."""
    return f"{plan.name}-net"


def network_labels(plan: DeploymentPlan) -> dict[str, str]:
    """The network's labels: ``vllmtune down`` removes it with the containers."""
    return {**dict(plan.labels), "app.kubernetes.io/component": "network"}


def sidecar_hosts(plan: DeploymentPlan, compose: bool = False) -> dict[str, str]:
    """What ``{vllm}`` / ``{replicaN}`` / ``{redis}`` / ``{router}`` in a sidecar's args mean on a
    Docker network: container names, or compose's service names."""
    hosts = {"vllm": plan.docker_replicas[0].service if compose else plan.docker_container}
    for i, r in enumerate(plan.docker_replicas):
        hosts[f"replica{i}"] = r.service if compose else r.container
    for role in ("redis", "router"):
        hosts[role] = role if compose else plan.sidecar_name(role)
    return hosts


def sidecar_container(plan: DeploymentPlan, sc: Sidecar) -> SidecarContainer:
    """The container of one sidecar."""
    h = sc.hardening
    return SidecarContainer(
        role=sc.role,
        name=plan.sidecar_name(sc.role),
        image=sc.image,
        network=network_name(plan),
        restart=plan.docker_restart,
        labels=tuple(plan.sidecar_labels(sc.role).items()),
        publish=(plan.docker_bind, sc.port) if sc.publish else None,
        env=sc.env,
        secret_env=sc.secret_env,
        entrypoint=sc.command[0] if sc.command else None,
        command=(*sc.command[1:], *sc.resolved_args(sidecar_hosts(plan), plan.port)),
        port=sc.port,
        health_path=sc.health_path,
        before_server=sc.before_server,
        user=None if h.run_as_user is None else f"{h.run_as_user}:{h.run_as_user}",
        read_only=h.read_only_root,
        tmpfs=h.writable_paths if h.read_only_root else (),
        memory=docker_size(h.memory_limit),
    )


def before_server(c: SidecarContainer) -> bool:
    """Does this sidecar start before vLLM (Redis), or once vLLM answers (the proxy)?"""
    return c.before_server


def image_build_hint(sc: Sidecar) -> str | None:
    """The command that builds a sidecar's image, for rendered output; None for an image on a
    registry. The proxy image is built from the installed package: ``vllmtune up`` does it when
    the image is missing; for a registry of the user's, prompt_cache.image and ``--push``."""
    if not sc.built_here:
        return None
    return sc.build_hint or f"vllmtune cache build-image --tag {sc.image}"
