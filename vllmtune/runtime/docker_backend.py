"""Docker backend through the Docker SDK (imported lazily: ``render`` never pays for it).

The container is built from the same plan fields as the rendered ``docker run`` script:
image, args, env, published port, mounts, shm/ipc, GPU device requests and labels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan
from vllmtune.runtime.base import (
    ServerRecord,
    Started,
    plan_summary,
    port_free,
    port_holder_process,
)

MANAGED = "app.kubernetes.io/managed-by=vllmtune"
SERVER = "app.kubernetes.io/component=server"  # the vLLM container, not its sidecars
SUMMARY_LABEL = "vllmtune.io/launch"
# Comma-joined served names (base model, then LoRA adapters): names never contain a comma.
SERVED_LABEL = "vllmtune.io/served-models"
DEFAULT_SOCKET = "/var/run/docker.sock"
NVIDIA_TOOLKIT = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"


class DockerUnreachable(LaunchError):
    """No Docker daemon answers where DOCKER_HOST (or the default socket) points."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(
            f"cannot reach the Docker daemon at {where}: {reason}\n"
            "start it (sudo systemctl start docker, or dockerd) or point DOCKER_HOST at a running "
            "daemon; or use --runtime local"
        )


def docker_where() -> str:
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


def device_requests(gpus: str | None, plan_gpus: int) -> list[Any]:
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
        raise LaunchError(f"--gpus {spec!r}: use all, a count (2) or device ids (0,1)")
    return [docker.types.DeviceRequest(device_ids=[i.strip() for i in ids], capabilities=[["gpu"]])]


class DockerBackend:
    """Containers labelled ``app.kubernetes.io/managed-by=vllmtune``."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
            except ImportError:
                raise LaunchError(
                    "the Docker SDK (python package docker) is not installed: pip install 'docker>=7.0', "
                    "or use --runtime local"
                ) from None
            try:
                self._client = docker.from_env(timeout=30)
                self._client.ping()
            except docker.errors.DockerException as exc:
                raise DockerUnreachable(docker_where(), unreachable_reason(exc)) from None
        return self._client

    def _container(self, name: str) -> Any | None:
        labels = [MANAGED, SERVER, f"vllmtune.io/profile={name}"]
        found = self.client.containers.list(all=True, filters={"label": labels})
        if found:
            return found[0]
        return None

    def preflight(self, plan: DeploymentPlan, gpus: str | None) -> None:
        import docker

        device_requests(gpus, plan.gpus)  # validates the spelling
        try:
            self.client.images.get(plan.image)
        except docker.errors.ImageNotFound:
            try:
                repo, tag = plan.image.rsplit(":", 1)
                self.client.images.pull(repo, tag=tag)
            except docker.errors.DockerException as exc:
                raise LaunchError(
                    f"image {plan.image} is not on this machine and pulling it failed: "
                    f"{_short(exc)}\ncheck the network / registry login (docker login), or load "
                    "the image (docker load) first"
                ) from None
        # name conflicts with a container vllmtune does not manage
        try:
            other = self.client.containers.get(plan.docker_container)
        except docker.errors.NotFound:
            other = None
        if other is not None and other.labels.get("vllmtune.io/profile") != plan.name:
            raise LaunchError(
                f"a container named {plan.docker_container!r} exists and was not "
                "started by vllmtune; remove it or set deploy.docker.container_name"
            )
        self._check_port(plan)

    def _check_port(self, plan: DeploymentPlan) -> None:
        for c in self.client.containers.list():
            for bindings in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
                for b in bindings or []:
                    if b.get("HostPort") == str(plan.port):
                        raise LaunchError(
                            f"port {plan.port} is already published by container "
                            f"{c.name}; stop it (docker rm -f {c.name}) or choose "
                            "another port (vllmtune up --port N)"
                        )
        if not port_free(plan.docker_bind, plan.port):
            holder = port_holder_process(plan.port) or "another process"
            raise LaunchError(
                f"port {plan.port} is already in use by {holder}; stop it or choose another port (vllmtune up --port N)"
            )

    def find(self, name: str) -> ServerRecord | None:
        c = self._container(name)
        return None if c is None else _record(c)

    def start(self, plan: DeploymentPlan, gpus: str | None, env: dict[str, str]) -> Started:
        import docker

        volumes: dict[str, dict[str, str]] = {}
        for m in plan.mounts:
            source = os.path.expanduser(m.source)
            if m.kind == "cache":
                Path(source).mkdir(parents=True, exist_ok=True)
            volumes[source] = {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
        labels = dict(plan.labels)
        labels[SUMMARY_LABEL] = json.dumps(plan_summary(plan, gpus), sort_keys=True)
        labels[SERVED_LABEL] = ",".join(plan.served_names or (plan.served_name,))
        kwargs: dict[str, Any] = {
            "name": plan.docker_container,
            "command": list(plan.args),
            "environment": {**dict(plan.env), **env},
            "ports": {f"{plan.port}/tcp": (plan.docker_bind, plan.port)},
            "volumes": volumes,
            "labels": labels,
            "device_requests": device_requests(gpus, plan.gpus),
            "detach": True,
        }
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
                    "GPUs were requested but Docker has no NVIDIA runtime (the engine said: "
                    f"{text}).\ninstall the NVIDIA Container Toolkit and restart Docker: "
                    f"{NVIDIA_TOOLKIT}\nor run without GPUs (--gpus 0, a CPU build of vLLM) or "
                    "with --runtime local"
                ) from None
            if "port is already allocated" in text or "address already in use" in text:
                raise LaunchError(f"port {plan.port} is already in use: {text}") from None
            raise LaunchError(f"docker could not start the container: {text}") from None
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

    def mark_ready(self, plan: DeploymentPlan) -> None:
        """Apply the restart policy only now: a crash during start-up must not loop."""
        c = self._container(plan.name)
        if c is not None and plan.docker_restart != "no":
            c.update(restart_policy={"Name": plan.docker_restart})

    def stop(self, name: str) -> bool:
        import docker

        c = self._container(name)
        if c is None:
            return False
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        return True

    def list(self) -> list[ServerRecord]:
        found = self.client.containers.list(all=True, filters={"label": [MANAGED, SERVER]})
        return [_record(c) for c in found]

    def logs(self, name: str, follow: bool, tail: int | None) -> Iterator[str]:
        c = self._container(name)
        if c is None:
            raise LaunchError(f"no container started by vllmtune for {name!r}")
        stream = c.logs(stream=True, follow=follow, tail=tail if tail else "all")
        buf = b""
        for chunk in stream:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")


def _record(c: Any) -> ServerRecord:
    labels = c.labels
    summary = json.loads(labels.get(SUMMARY_LABEL, "{}"))
    started = c.attrs.get("Created", "")  # e.g. 2026-11-23T21:25:01.123456789Z (UTC)
    try:
        from datetime import datetime, timezone

        ts = datetime.fromisoformat(started[:19]).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        ts = 0.0
    served = _served(summary)
    # Containers started before the label existed: the base name is all we know.
    models = tuple(n for n in labels.get(SERVED_LABEL, "").split(",") if n) or ((served,) if served else ())
    return ServerRecord(
        name=labels.get("vllmtune.io/profile", c.name),
        backend="docker",
        profile_hash=labels.get("vllmtune.io/profile-hash", ""),
        port=int(summary.get("port", 0)),
        served_name=served,
        started_at=ts,
        state=c.status,
        ident=c.id[:12],
        summary=summary,
        served_models=models,
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
