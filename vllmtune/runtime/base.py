"""What every runtime backend provides, and what it records about a server it started."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan
from vllmtune.util.files import write_atomic
from vllmtune.util.net import port_free

REDIS_READY_SECONDS = 30.0  # how long a started Redis may take to answer PING (both backends)
# a replica started beside the first one (a router in front); by the time the first answers,
# it is close behind (both backends)
REPLICA_READY_SECONDS = 600.0


@dataclass(frozen=True)
class ServerRecord:
    """A server vllmtune started, as ``ps`` shows it."""

    name: str
    backend: str  # docker | local
    profile_hash: str
    port: int
    served_name: str
    started_at: float
    state: str  # running | exited | created | ...
    ident: str  # container id or pid
    summary: dict[str, Any]  # what was launched: image, args, env names, gpus
    # Every name the server answers to: the base model, then its LoRA adapters. Records
    # written before vllmtune stored it have only served_name.
    served_models: tuple[str, ...] = field(default=())
    # The stack's parts, vLLM first then its sidecars: {"role", "name", "state", "port"}
    # (role server | cache | redis; name: the container or the process id).
    parts: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The record as stored (and as ``up --output json`` shows it)."""
        return {**asdict(self), "served_models": list(self.served_models), "parts": [dict(p) for p in self.parts]}

    @property
    def front_port(self) -> int:
        """The port clients use: the cache proxy's when the prompt cache is on, else vLLM's."""
        for p in self.parts:
            if p.get("role") == "cache" and p.get("port"):
                return int(p["port"])
        return self.port

    def shown(self) -> dict[str, Any]:
        """The record as ``ps --output json`` shows it: a local server's summary says which
        ``vllm`` ran (executable, installed version), not the docker image it never used."""
        data = self.to_json()
        if self.backend == "local":
            summary = {k: v for k, v in self.summary.items() if k != "image"}
            argv = self.summary.get("argv") or []
            exe = str(argv[0]) if argv else None
            summary["vllm"] = {"executable": exe, "version": installed_vllm_version(exe) if exe else None}
            data["summary"] = summary
        return data


def installed_vllm_version(executable: str) -> str | None:
    """The vLLM version installed beside a ``vllm`` console script (its interpreter's environment's
    ``vllm-*.dist-info``), read from the file system: importing vLLM to ask takes seconds."""
    try:
        with open(executable, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode("utf-8", "replace").split()
    if not parts:
        return None
    interpreter = Path(parts[-1] if parts[0].endswith("/env") and len(parts) > 1 else parts[0])
    if not interpreter.is_absolute():
        return None
    root = interpreter.parent.parent
    for info in sorted(root.glob("lib/python3*/site-packages/vllm-*.dist-info")):
        meta = info / "METADATA"
        try:
            for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line:
                    break
        except OSError:
            continue
    return None


@dataclass
class Started:
    """A server that is starting: how to watch it."""

    ident: str
    alive: Any  # Callable[[], bool]
    new_log_lines: Any  # Callable[[], list[str]]


class Backend(Protocol):
    """up/down/ps/logs for one kind of runtime."""

    name: str
    say: Callable[[str], None]  # progress lines (image builds, the sidecars' start)

    def preflight(self, plan: DeploymentPlan, gpus: str | None) -> None: ...

    def find(self, name: str) -> ServerRecord | None: ...

    def start(self, plan: DeploymentPlan, gpus: str | None, env: dict[str, str]) -> Started:
        """What starts before vLLM (Redis, waited for), then vLLM; ``env`` holds every secret
        of the launch and each part gets only the names it reads."""
        ...

    def start_front(self, plan: DeploymentPlan, env: dict[str, str]) -> list[tuple[str, str, Started]]:
        """What starts once vLLM answers (the cache proxy): (what, health URL, watch) each."""
        ...

    def describe_parts(self, plan: DeploymentPlan) -> str:
        """What stopping the stack removes ("the containers (...) and the network ...")."""
        ...

    def mark_ready(self, plan: DeploymentPlan) -> None: ...

    def stop(self, name: str) -> bool: ...

    def list(self) -> list[ServerRecord]: ...

    def logs(self, name: str, follow: bool, tail: int | None) -> Iterator[str]:
        """The log's last ``tail`` lines (None: all of it, 0: none), then with ``follow`` each new
        line until the server ends (see last_lines and docker_tail: both backends read ``tail`` so)."""
        ...


def last_lines(lines: list[str], tail: int | None) -> list[str]:
    """The last ``tail`` lines (None: all; 0: none, as ``tail -n 0`` and ``docker logs --tail 0``)."""
    return lines if tail is None else lines[max(len(lines) - tail, 0) :]


def docker_tail(tail: int | None) -> int | str:
    """``tail`` as the Docker API's logs ``tail`` parameter spells it ("all", or a line count)."""
    return "all" if tail is None else tail


def stack_state(server_state: str, summary: dict[str, Any], parts: tuple[dict[str, Any], ...]) -> str:
    """A stack's state: the server's, or "degraded" when it runs but a sidecar of its launch
    does not (``up`` then starts the whole stack again)."""
    if server_state != "running":
        return server_state
    running = {p["role"] for p in parts if p.get("state") == "running"}
    expected = {s["role"] for s in summary.get("sidecars", [])}
    return "degraded" if expected - running else server_state


def plan_summary(plan: DeploymentPlan, gpus: str | None) -> dict[str, Any]:
    """What identifies a launch: a change here means the server must be replaced."""
    out: dict[str, Any] = {
        "image": plan.image,
        "args": list(plan.args),
        "env": dict(plan.env),
        "secret_env": sorted(s.name for s in plan.secret_env),
        "gpus": gpus if gpus is not None else str(plan.gpus),
        "port": plan.port,
    }
    if plan.sidecars:  # absent without them: summaries of servers started before stay equal
        out["sidecars"] = [{"role": sc.role, "image": sc.image, "args": list(sc.args)} for sc in plan.sidecars]
    return out


def summary_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two launch summaries."""
    out = []
    for key in ("image", "gpus", "port"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    if old.get("args") != new.get("args"):
        from vllmtune.argdiff import describe

        out += describe(old.get("args", []), new.get("args", []))  # max_num_seqs: 8 -> 16 (--max-num-seqs)
    if old.get("env") != new.get("env") or old.get("secret_env") != new.get("secret_env"):
        out.append("environment changed")
    before = {s["role"]: s for s in old.get("sidecars", [])}
    after = {s["role"]: s for s in new.get("sidecars", [])}
    for role in sorted(set(before) | set(after)):
        label = SIDECAR_LABELS.get(role, role)
        if role not in before:
            out.append(f"{label}: added")
        elif role not in after:
            out.append(f"{label}: removed")
        elif before[role]["image"] != after[role]["image"]:
            out.append(f"{label} image: {before[role]['image']} -> {after[role]['image']}")
        elif before[role]["args"] != after[role]["args"]:
            out.append(f"{label} args: {' '.join(before[role]['args'])} -> {' '.join(after[role]['args'])}")
    return out


SIDECAR_LABELS = {"cache": "cache proxy", "redis": "Redis", "router": "router", "server": "vLLM"}
ROLE_ORDER = {"server": 0, "router": 1, "cache": 2, "redis": 3}  # how ps lists a stack's parts
GENERATED_PASSWORD = "VLLMTUNE_REDIS_PASSWORD"  # generated per launch unless the user sets it


def sidecar_secret_values(plan: DeploymentPlan) -> dict[str, str]:
    """Secrets of the sidecars, by the name each container reads. The Redis password comes from
    $VLLMTUNE_REDIS_PASSWORD when set, else is generated for this launch (only the proxy and
    Redis ever see it: as environment, never in argv, labels or logs)."""
    import secrets

    env: dict[str, str] = {}
    missing = []
    for sc in plan.sidecars:
        for s in sc.secret_env:
            if s.name in env:
                continue
            value = os.environ.get(s.source_env)
            if value:
                env[s.name] = value
            elif s.name == GENERATED_PASSWORD:
                env[s.name] = secrets.token_urlsafe(24)
            else:
                missing.append(
                    f"{s.field} refers to ${s.source_env}, which is not set: export {s.source_env}=... and run again"
                )
    if missing:
        raise LaunchError("\n".join(missing))
    return env


def secret_values(plan: DeploymentPlan) -> dict[str, str]:
    """Secrets for the server, read from this machine's environment (never from the profile)."""
    env: dict[str, str] = {}
    missing = []
    for s in plan.secret_env:
        value = os.environ.get(s.source_env)
        if value is None or value == "":
            missing.append(
                f"{s.field} refers to ${s.source_env}, which is not set: export {s.source_env}=... and run again"
            )
        else:
            env[s.name] = value
    if missing:
        raise LaunchError("\n".join(missing))
    return env


def ensure_port_free(bind: str, port: int, fix: str, whose: str = "") -> None:
    """Raise LaunchError, naming the process that holds it, when bind:port cannot be listened on;
    ``whose`` follows the port number in the message (" (the cache proxy's)"), ``fix`` ends it."""
    if not port_free(bind, port):
        holder = port_holder_process(port) or "another process"
        raise LaunchError(f"port {port}{whose} is already in use by {holder}", hint=fix)


def port_holder_process(port: int) -> str | None:
    """Which local process listens on a TCP port (Linux /proc), e.g. 'python3 (pid 123)'."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (proc / "comm").read_text().strip()
                    return f"{cmd} (pid {proc.name})"
        except OSError:
            continue
    return "another process"


def state_dir() -> Path:
    """Where the local backend keeps records and logs (XDG state dir; VLLMTUNE_STATE_DIR wins)."""
    env = os.environ.get("VLLMTUNE_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "vllmtune"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(data, indent=2))
