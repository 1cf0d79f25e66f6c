"""``ps``, ``down`` and ``logs`` across backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vllmtune.errors import LaunchError
from vllmtune.runtime.base import Backend, ServerRecord
from vllmtune.runtime.health import http_get
from vllmtune.runtime.up import get_backend

BACKENDS = ("docker", "local")


def _backends(only: str | None, quiet: bool = True) -> list[Backend]:
    """The backends to look in. Without --runtime an unreachable Docker daemon is skipped."""
    if only:
        return [get_backend(only)]
    out: list[Backend] = []
    for name in BACKENDS:
        backend = get_backend(name)
        if name == "docker":
            try:
                backend.list()
            except LaunchError:
                if not quiet:
                    raise
                continue
            except ImportError:
                continue
        out.append(backend)
    return out


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
    for backend in _backends(only, quiet=only is None):
        for r in backend.list():
            rows.append({**r.to_json(), "health": _health(r), "uptime": _uptime(r.started_at)})
    return rows


def _name_of(target: str) -> str:
    """A server name, or the name inside a profile file."""
    if target.startswith("preset:") or target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from vllmtune.profile.loader import load_profile

        return load_profile(target).profile.name
    return target


def down(target: str, only: str | None) -> str:
    """Stop and remove; say what happened (nothing to stop is fine)."""
    name = _name_of(target)
    stopped = [b.name for b in _backends(only, quiet=only is None) if b.stop(name)]
    if not stopped:
        return f"{name}: nothing to stop"
    return f"{name}: stopped and removed ({', '.join(stopped)})"


def logs(name: str, follow: bool, tail: int | None, only: str | None) -> Iterator[str]:
    """Log lines of the first backend that knows the server."""
    for backend in _backends(only, quiet=only is None):
        leftover_log = getattr(backend, "log_path", None)  # a local server's log outlives it
        if backend.find(name) is not None or (leftover_log and Path(leftover_log(name)).exists()):
            return backend.logs(name, follow, tail)
    raise LaunchError(f"no server named {name!r}; see vllmtune ps")


def running_port(name: str) -> int | None:
    """The port of a running server vllmtune started for profile ``name`` (any backend)."""
    for backend in _backends(None):
        record = backend.find(name)
        if record is not None and record.state == "running" and record.port:
            return record.port
    return None
