"""``ps``, ``down`` and ``logs`` across backends."""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vllmtune.errors import LaunchError
from vllmtune.runtime.base import Backend, ServerRecord
from vllmtune.runtime.docker_backend import DockerUnreachable, docker_in_use
from vllmtune.runtime.health import http_get
from vllmtune.runtime.up import get_backend

BACKENDS = ("docker", "local")


def _backends(only: str | None, quiet: bool = True) -> list[Backend]:
    """The backends to look in. Without --runtime, a machine without Docker is only the local
    backend; an unreachable daemon on a machine that uses Docker is an error (``quiet``: skip it).
    """
    found, unreachable = _reachable(only)
    if unreachable is not None and not quiet:
        raise unreachable
    return found


def _reachable(only: str | None) -> tuple[list[Backend], DockerUnreachable | None]:
    """The backends that answer, and why Docker does not (None: it answers, or is not used here)."""
    if only:
        return [get_backend(only)], None
    out: list[Backend] = []
    unreachable = None
    for name in BACKENDS:
        backend = get_backend(name)
        if name == "docker":
            try:
                backend.list()
            except DockerUnreachable as exc:
                if docker_in_use():
                    unreachable = exc
                continue
            except LaunchError:  # no Docker SDK
                if docker_in_use():
                    raise
                continue
        out.append(backend)
    return out, unreachable


def _uptime(started: float) -> str:
    if not started:
        return "-"
    s = int(time.time() - started)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _health(r: ServerRecord) -> str:
    if r.state != "running" or not r.port:
        return "-"
    status, _ = http_get(f"http://127.0.0.1:{r.port}/health", timeout=0.5)
    return {200: "healthy", 0: "starting"}.get(status, f"unhealthy ({status})")


def ps_rows(only: str | None) -> list[dict[str, Any]]:
    """Every server vllmtune started, with live health."""
    rows = []
    for backend in _backends(only, quiet=False):
        for r in backend.list():
            rows.append({**r.shown(), "health": _health(r), "uptime": _uptime(r.started_at)})
    return rows


def _is_profile(target: str) -> bool:
    return target.startswith("preset:") or target.endswith((".yaml", ".yml")) or Path(target).is_file()


def _name_of(target: str) -> str:
    """A server name, or the name inside a profile file."""
    if _is_profile(target):
        from vllmtune.profile.loader import load_profile

        return load_profile(target).profile.name
    return target


def down(target: str, only: str | None) -> str:
    """Stop and remove. A profile whose server is not running: nothing to stop (fine, idempotent).
    A name that matches no server: an error, with the names that exist."""
    name = _name_of(target)
    backends, unreachable = _reachable(only)
    stopped = [b.name for b in backends if b.stop(name)]
    if stopped:
        return f"{name}: stopped and removed ({', '.join(stopped)})"
    if unreachable is not None:
        raise unreachable
    if not _is_profile(target):  # a bare name
        known = sorted({r.name for b in backends for r in b.list()})
        raise LaunchError(f"no server named {name!r} to stop{_did_you_mean(name, known)}")
    return f"{name}: nothing to stop"


def _did_you_mean(name: str, known: list[str]) -> str:
    if not known:
        return " (no servers started by vllmtune are running)"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint}\nservers started by vllmtune: {', '.join(known)}"


def logs(name: str, follow: bool, tail: int | None, only: str | None) -> Iterator[str]:
    """Log lines of the first backend that knows the server."""
    backends, unreachable = _reachable(only)
    for backend in backends:
        leftover_log = getattr(backend, "log_path", None)  # a local server's log outlives it (a part's too)
        part = getattr(backend, "has_part", None)  # a container of a stack: NAME-cache, NAME-redis
        if (
            backend.find(name) is not None
            or (leftover_log and Path(leftover_log(name)).exists())
            or (part and part(name))
        ):
            return backend.logs(name, follow, tail)
    if unreachable is not None:
        raise unreachable
    raise LaunchError(f"no server named {name!r}; see vllmtune ps")


def running_port(name: str) -> int | None:
    """The port of a running server vllmtune started for profile ``name`` (any backend)."""
    for backend in _backends(None):
        record = backend.find(name)
        if record is not None and record.state == "running" and record.port:
            return record.port
    return None
