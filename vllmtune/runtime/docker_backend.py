"""Docker backend through the Docker SDK (imported lazily: ``render`` never pays for it).

The container is built from the same plan fields as the rendered ``docker run`` script:
image, args, env, published port, mounts, shm/ipc, GPU device requests and labels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vllmtune.containers import SidecarContainer, before_server, network_labels, network_name, sidecar_container
from vllmtune.errors import DockerUnreachable as DockerUnreachable
from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan, DockerReplica
from vllmtune.runtime.base import (
    REDIS_READY_SECONDS,
    REPLICA_READY_SECONDS,
    ROLE_ORDER,
    SIDECAR_LABELS,
    ServerRecord,
    Started,
    docker_tail,
    ensure_port_free,
    plan_summary,
    stack_state,
)

MANAGED = "app.kubernetes.io/managed-by=vllmtune"
SERVER = "app.kubernetes.io/component=server"  # the vLLM container, not its sidecars
COMPONENT = "app.kubernetes.io/component"
PROFILE = "vllmtune.io/profile"
SUMMARY_LABEL = "vllmtune.io/launch"
# Comma-joined served names (base model, then LoRA adapters): names never contain a comma.
SERVED_LABEL = "vllmtune.io/served-models"
REPLICA_LABEL = "vllmtune.io/replica"  # 1..N when a router is in front of N servers
DEFAULT_SOCKET = "/var/run/docker.sock"
NVIDIA_TOOLKIT = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"


def _docker_where() -> str:
    """Where the Docker SDK looks for the daemon."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def docker_in_use() -> bool:
    """Does this machine use Docker at all (so that an unreachable daemon is news)?
    DOCKER_HOST set, the default socket there, or the docker CLI / dockerd installed."""
    return bool(
        os.environ.get("DOCKER_HOST")
        or os.path.exists(DEFAULT_SOCKET)
        or shutil.which("docker")
        or shutil.which("dockerd")
    )


def unreachable_reason(exc: BaseException) -> str:
    """The root cause of a failed connection, whole ("No such file or directory"), not the
    SDK's wrapper text ("Error while fetching server API version: (...")."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(exc).split())
    found = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if found:
        return found.group(1).strip()
    return text.removeprefix("Error while fetching server API version: ")[:500]


def _device_requests(gpus: str | None, plan_gpus: int) -> list[Any]:
    """``--gpus`` as docker run takes it: all, a count, or device ids ("0,1" / "device=0,1")."""
    import docker

    spec = gpus if gpus is not None else (str(plan_gpus) if plan_gpus else None)
    if spec in (None, "0", "none", ""):
        return []
    assert spec is not None
    if spec == "all":
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if spec.isdigit():
        return [docker.types.DeviceRequest(count=int(spec), capabilities=[["gpu"]])]
    ids = spec.removeprefix("device=").strip('"').split(",")
    if not all(i.strip() for i in ids):
        raise LaunchError(f"--gpus {spec!r}", hint="use all, a count (2) or device ids (0,1)", sep=": ")
    return [docker.types.DeviceRequest(device_ids=[i.strip() for i in ids], capabilities=[["gpu"]])]


def replica_device_requests(gpus: str | None, plan: DeploymentPlan, index: int) -> list[Any]:
    """The GPUs of server ``index``. One server: ``--gpus`` as docker run takes it. Several (a
    router in front): each its own devices -- the plan's (all, or no --gpus) or a list of
    ``up --gpus`` ids split in order; 0 / none: none."""
    import docker

    replicas = plan.docker_replicas
    if len(replicas) == 1:
        return _device_requests(gpus, plan.gpus)
    if gpus in ("0", "none", "") or not plan.gpus:
        return []
    ids = list(replicas[index].gpu_device_ids)
    if gpus not in (None, "all"):
        given = [i.strip() for i in gpus.removeprefix("device=").strip('"').split(",")]
        if len(given) != plan.gpus * len(replicas) or not all(given):
            raise LaunchError(
                f"--gpus {gpus!r}: {len(replicas)} replicas of {plan.gpus} GPU(s) each need "
                f"{plan.gpus * len(replicas)} device ids",
                hint=f"give them all (--gpus {','.join(str(i) for i in range(plan.gpus * len(replicas)))}), "
                "or --gpus all for the plan's (replica i: GPUs i*n .. i*n+n-1)",
                sep=": ",
            )
        ids = given[index * plan.gpus : (index + 1) * plan.gpus]
    return [docker.types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]


def _first_replica(c: Any) -> bool:
    """Is this server container the stack's record (its only server, or replica 1 of N)?"""
    return str(c.labels.get(REPLICA_LABEL, "1")) == "1"


class DockerBackend:
    """Containers labelled ``app.kubernetes.io/managed-by=vllmtune``."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None
        # progress lines (image builds, pulls, the sidecars' start); up.py points it at the phase line
        self.say: Callable[[str], None] = lambda _msg: None
        # the replicas after the first (a router in front), by stack; up waits for the first
        # through its own watch, start_front for these
        self._replicas: dict[str, list[tuple[DockerReplica, Any]]] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
            except ImportError:
                raise LaunchError(
                    "the Docker SDK (python package docker) is not installed",
                    hint="pip install 'docker>=7.0', or use --runtime local",
                    sep=": ",
                ) from None
            try:
                self._client = docker.from_env(timeout=30)
                self._client.ping()
            except docker.errors.DockerException as exc:
                raise DockerUnreachable(_docker_where(), unreachable_reason(exc)) from None
        return self._client

    def _container(self, name: str) -> Any | None:
        labels = [MANAGED, SERVER, f"vllmtune.io/profile={name}"]
        found = [c for c in self.client.containers.list(all=True, filters={"label": labels}) if _first_replica(c)]
        if found:
            return found[0]
        return None

    def preflight(self, plan: DeploymentPlan, gpus: str | None) -> None:
        import docker

        for i in range(len(plan.docker_replicas)):
            replica_device_requests(gpus, plan, i)  # validates the spelling
        self._ensure_pulled(plan.image)
        for sc in plan.sidecars:
            if sc.role == "cache":
                from vllmtune.runtime.proxy_image import ensure_image

                ensure_image(self.client, sc.image, self.say)
            else:
                self._ensure_pulled(sc.image)
        # name conflicts with a container vllmtune does not manage
        names = [*(r.container for r in plan.docker_replicas), *(plan.sidecar_name(sc.role) for sc in plan.sidecars)]
        for name in names:
            try:
                other = self.client.containers.get(name)
            except docker.errors.NotFound:
                other = None
            if other is not None and other.labels.get(PROFILE) != plan.name:
                raise LaunchError(
                    f"a container named {name!r} exists and was not started by vllmtune",
                    hint="remove it or set deploy.docker.container_name",
                )
        if plan.sidecars:
            try:
                net = self.client.networks.get(network_name(plan))
            except docker.errors.NotFound:
                net = None
            if net is not None and (net.attrs.get("Labels") or {}).get(PROFILE) != plan.name:
                raise LaunchError(
                    f"a Docker network named {network_name(plan)!r} exists and was not created by vllmtune",
                    hint=f"remove it (docker network rm {network_name(plan)}) or rename the profile",
                )
        for r in plan.docker_replicas:
            self._check_port(plan.docker_bind, r.host_port, "--port N")
        for sc in plan.sidecars:
            if sc.publish:
                self._check_port(plan.docker_bind, sc.port, "prompt_cache.port")

    def _ensure_pulled(self, image: str) -> None:
        import docker

        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                repo, tag = image.rsplit(":", 1)
                self.say(f"pulling {image}")
                self.client.images.pull(repo, tag=tag)
            except docker.errors.DockerException as exc:
                raise LaunchError(
                    f"image {image} is not on this machine and pulling it failed: {_short(exc)}",
                    hint="check the network / registry login (docker login), or load the image (docker load) first",
                    sep="\n",
                ) from None

    def _check_port(self, bind: str, port: int, how: str) -> None:
        hint = "vllmtune up --port N" if how == "--port N" else how
        for c in self.client.containers.list():
            for bindings in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
                for b in bindings or []:
                    if b.get("HostPort") == str(port):
                        raise LaunchError(
                            f"port {port} is already published by container {c.name}",
                            hint=f"stop it (docker rm -f {c.name}) or choose another port ({hint})",
                        )
        ensure_port_free(bind, port, f"stop it or choose another port ({hint})")

    def start(self, plan: DeploymentPlan, gpus: str | None, env: dict[str, str]) -> Started:
        """The network and what starts before vLLM (Redis, waited for), then vLLM itself.
        ``env``: every secret of the launch; each container gets only the ones it reads."""

        if plan.sidecars:
            self._network(plan)
        for c in (sidecar_container(plan, sc) for sc in plan.sidecars):
            if before_server(c):
                self.say(f"starting {SIDECAR_LABELS.get(c.role, c.role)} ({c.name})")
                self._wait_redis(self._run_sidecar(c, env), c)
        volumes: dict[str, dict[str, str]] = {}
        for m in plan.mounts:
            source = os.path.expanduser(m.source)
            if m.kind == "cache":
                Path(source).mkdir(parents=True, exist_ok=True)
            volumes[source] = {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
        # the replicas after the first start first: up then waits for the first, start_front for them
        self._replicas[plan.name] = []
        for i in range(len(plan.docker_replicas) - 1, 0, -1):
            r = plan.docker_replicas[i]
            self.say(f"starting replica {i + 1} of {len(plan.docker_replicas)} ({r.container}, port {r.host_port})")
            self._replicas[plan.name].append((r, self._run_server(plan, r, i, gpus, env, volumes)))
        return _watch(self._run_server(plan, plan.docker_replicas[0], 0, gpus, env, volumes))

    def _run_server(
        self,
        plan: DeploymentPlan,
        r: DockerReplica,
        index: int,
        gpus: str | None,
        env: dict[str, str],
        volumes: dict[str, dict[str, str]],
    ) -> Any:
        """Create and start one vLLM server container."""
        import docker

        labels = dict(r.labels)
        labels[SUMMARY_LABEL] = json.dumps(plan_summary(plan, gpus), sort_keys=True)
        labels[SERVED_LABEL] = ",".join(plan.served_names or (plan.served_name,))
        kwargs: dict[str, Any] = {
            "name": r.container,
            "command": list(plan.args),
            "environment": {**dict(plan.env), **{s.name: env[s.name] for s in plan.secret_env if s.name in env}},
            "ports": {f"{plan.port}/tcp": (plan.docker_bind, r.host_port)},
            "volumes": volumes,
            "labels": labels,
            "device_requests": replica_device_requests(gpus, plan, index),
            "detach": True,
        }
        if plan.sidecars:
            kwargs["network"] = network_name(plan)
        if plan.shm.ipc_host:
            kwargs["ipc_mode"] = "host"
        else:
            kwargs["shm_size"] = plan.shm.size
        container = self.client.containers.create(plan.image, **kwargs)
        try:
            container.start()
        except docker.errors.APIError as exc:
            container.remove(force=True)
            text = str(exc.explanation or exc)
            if "could not select device driver" in text:
                raise LaunchError(
                    f"GPUs were requested but Docker has no NVIDIA runtime (the engine said: {text}).",
                    hint=f"install the NVIDIA Container Toolkit and restart Docker: {NVIDIA_TOOLKIT}\n"
                    "or run without GPUs (--gpus 0, a CPU build of vLLM) or with --runtime local",
                    sep="\n",
                ) from None
            if "port is already allocated" in text or "address already in use" in text:
                raise LaunchError(f"port {r.host_port} is already in use: {text}") from None
            raise LaunchError(f"docker could not start the container: {text}") from None
        return container

    def start_front(self, plan: DeploymentPlan, env: dict[str, str]) -> list[tuple[str, str, Started]]:
        """What starts once vLLM answers (the router, the cache proxy): (what, health URL, watch)
        each. Every replica answers first: the router needs all its workers."""
        from vllmtune.runtime.health import wait_http

        host = "127.0.0.1" if plan.docker_bind in ("0.0.0.0", "::") else plan.docker_bind
        for r, container in sorted(self._replicas.pop(plan.name, []), key=lambda rc: rc[0].host_port):
            self.say(f"waiting for replica {r.container} (port {r.host_port})")
            watch = _watch(container)
            wait_http(
                f"vLLM replica {r.container}",
                f"http://{host}:{r.host_port}{plan.health.path}",
                watch.alive,
                watch.new_log_lines,
                REPLICA_READY_SECONDS,
                [],
            )
        out = []
        for c in (sidecar_container(plan, sc) for sc in plan.sidecars):
            if before_server(c):
                continue
            self.say(f"starting {SIDECAR_LABELS.get(c.role, c.role)} ({c.name})")
            container = self._run_sidecar(c, env)
            url = f"http://{host}:{c.port}{c.health_path}" if c.publish and c.health_path else ""
            out.append((SIDECAR_LABELS.get(c.role, c.role), url, _watch(container)))
        return out

    def _network(self, plan: DeploymentPlan) -> None:
        import docker

        try:
            self.client.networks.get(network_name(plan))
        except docker.errors.NotFound:
            self.client.networks.create(network_name(plan), driver="bridge", labels=network_labels(plan))

    def _run_sidecar(self, c: SidecarContainer, env: dict[str, str]) -> Any:
        """Create and start one sidecar from the spec the rendered script uses."""
        import docker

        kwargs = sidecar_run_kwargs(c, env)
        container = self.client.containers.create(c.image, **kwargs)
        try:
            container.start()
        except docker.errors.APIError as exc:
            text = str(exc.explanation or exc)
            raise LaunchError(f"docker could not start {c.name} ({c.image}): {text}") from None
        return container

    def _wait_redis(self, container: Any, c: SidecarContainer) -> None:
        """Redis answers PING with the password (read from its environment inside: no argv)."""
        import docker

        probe = ["sh", "-c", 'REDISCLI_AUTH="$VLLMTUNE_REDIS_PASSWORD" redis-cli ping']
        deadline = time.monotonic() + REDIS_READY_SECONDS
        while True:
            try:
                container.reload()
                if container.status not in ("created", "running"):
                    break
                code, out = container.exec_run(probe)
                if code == 0 and b"PONG" in out:
                    return
            except docker.errors.APIError:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        logs = container.logs(tail=20).decode("utf-8", "replace").rstrip()
        tail = "\n".join("  | " + line for line in logs.splitlines()) or "  | (no log output)"
        raise LaunchError(f"Redis ({c.name}) did not answer PING within {REDIS_READY_SECONDS:.0f} s\n{tail}")

    def parts(self, name: str) -> list[Any]:
        """Every container of a stack: vLLM and its sidecars."""
        return list(self.client.containers.list(all=True, filters={"label": [MANAGED, f"{PROFILE}={name}"]}))

    def describe_parts(self, plan: DeploymentPlan) -> str:
        """What stopping a stack removes, for the interrupt line."""
        if not plan.sidecars:
            return "the container"
        roles = ", ".join(["vLLM", *(SIDECAR_LABELS.get(sc.role, sc.role) for sc in plan.sidecars)])
        return f"the containers ({roles}) and the network {network_name(plan)}"

    def mark_ready(self, plan: DeploymentPlan) -> None:
        """Apply the restart policy only now: a crash during start-up must not loop."""
        if plan.docker_restart == "no":
            return
        for c in self.parts(plan.name):
            c.update(restart_policy={"Name": plan.docker_restart})

    def stop(self, name: str) -> bool:
        """Remove every part of the stack (the proxy first, vLLM, Redis) and its network."""
        import docker

        order = {"cache": 0, "server": 1, "redis": 2}
        found = sorted(self.parts(name), key=lambda c: order.get(c.labels.get(COMPONENT, ""), 1))
        for c in found:
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        nets = self.client.networks.list(filters={"label": [MANAGED, f"{PROFILE}={name}"]})
        for net in nets:
            try:
                net.remove()
            except docker.errors.NotFound:
                pass
        return bool(found or nets)

    def list(self) -> list[ServerRecord]:
        found = self.client.containers.list(all=True, filters={"label": [MANAGED, SERVER]})
        return [_record(c, self.parts(c.labels.get(PROFILE, ""))) for c in found if _first_replica(c)]

    def find(self, name: str) -> ServerRecord | None:
        c = self._container(name)
        return None if c is None else _record(c, self.parts(name))

    def logs(self, name: str, follow: bool, tail: int | None) -> Iterator[str]:
        """A server's log, or a part's by its container name (NAME-cache, NAME-redis)."""
        c = self._container(name) or self._part_by_name(name)
        if c is None:
            raise LaunchError(f"no container started by vllmtune for {name!r}")
        stream = c.logs(stream=True, follow=follow, tail=docker_tail(tail))
        buf = b""
        for chunk in stream:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")

    def has_part(self, name: str) -> bool:
        """Is ``name`` a container of a stack vllmtune started (NAME-cache, NAME-redis)?"""
        return self._part_by_name(name) is not None

    def _part_by_name(self, name: str) -> Any | None:
        found = self.client.containers.list(all=True, filters={"label": [MANAGED], "name": name})
        return next((c for c in found if c.name == name), None)


def sidecar_run_kwargs(c: SidecarContainer, env: dict[str, str]) -> dict[str, Any]:
    """Docker SDK ``containers.create`` arguments of a sidecar: the rendered script's
    ``docker run`` flags (vllmtune/render/docker.py), from the same spec."""
    kwargs: dict[str, Any] = {
        "name": c.name,
        "command": list(c.command),
        "environment": {**dict(c.env), **{s.name: env[s.name] for s in c.secret_env if s.name in env}},
        "labels": dict(c.labels),
        "network": c.network,
        "read_only": c.read_only,
        "tmpfs": {path: "" for path in c.tmpfs},
        "cap_drop": list(c.cap_drop),
        "security_opt": list(c.security_opt),
        "mem_limit": c.memory,
        "detach": True,
    }
    if c.entrypoint:
        kwargs["entrypoint"] = [c.entrypoint]
    if c.user is not None:
        kwargs["user"] = c.user
    if c.publish:
        kwargs["ports"] = {f"{c.port}/tcp": (c.publish[0], c.publish[1])}
    return kwargs


def _watch(container: Any) -> Started:
    """How up.py watches a starting container: alive, and its new log lines."""
    import docker

    seen = 0

    def new_lines() -> list[str]:
        nonlocal seen
        try:
            raw: bytes = container.logs(stdout=True, stderr=True)
            lines = raw.decode("utf-8", "replace").splitlines()
        except docker.errors.DockerException:
            return []
        fresh, seen = lines[seen:], len(lines)
        return fresh

    def alive() -> bool:
        try:
            container.reload()
        except docker.errors.NotFound:
            return False
        return bool(container.status in ("created", "running"))

    return Started(ident=container.id[:12], alive=alive, new_log_lines=new_lines)


def _part(c: Any) -> dict[str, Any]:
    role = c.labels.get(COMPONENT, "server")
    port = 0
    for bindings in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
        for b in bindings or []:
            port = int(b.get("HostPort") or 0) or port
    return {"role": role, "name": c.name, "state": c.status, "port": port}


def _record(c: Any, parts: list[Any] | None = None) -> ServerRecord:
    labels = c.labels
    summary = json.loads(labels.get(SUMMARY_LABEL, "{}"))
    started = c.attrs.get("Created", "")  # e.g. 2026-11-23T21:25:01.123456789Z (UTC)
    try:
        from datetime import datetime, timezone

        ts = datetime.fromisoformat(started[:19]).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        ts = 0.0
    # Containers started before the label existed: the base name from their launch argv is all we know.
    models = tuple(n for n in labels.get(SERVED_LABEL, "").split(",") if n)
    served = models[0] if models else _served(summary)
    models = models or ((served,) if served else ())
    part_rows = tuple(sorted((_part(p) for p in parts or [c]), key=lambda p: ROLE_ORDER.get(p["role"], 9)))
    return ServerRecord(
        name=labels.get("vllmtune.io/profile", c.name),
        backend="docker",
        profile_hash=labels.get("vllmtune.io/profile-hash", ""),
        port=int(summary.get("port", 0)),
        served_name=served,
        started_at=ts,
        state=stack_state(c.status, summary, part_rows),
        ident=c.id[:12],
        summary=summary,
        served_models=models,
        parts=part_rows,
    )


def _served(summary: dict[str, Any]) -> str:
    args = summary.get("args", [])
    for flag in ("--served-model-name", "--model"):
        if flag in args:
            return str(args[args.index(flag) + 1])
    return ""


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text.splitlines()[0][:300]
