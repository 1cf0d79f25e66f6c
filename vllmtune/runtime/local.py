"""Local backend: ``vllm serve`` as a process group on this machine (bare metal, laptop, CI);
with the prompt cache, the proxy (``python -m vllmtune.cache``) as a second process in front of
it and, for backend redis, a ``redis-server`` -- each in its own session, recorded as parts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan, Sidecar
from vllmtune.runtime.base import (
    REDIS_READY_SECONDS,
    REPLICA_READY_SECONDS,
    ROLE_ORDER,
    SIDECAR_LABELS,
    ServerRecord,
    Started,
    ensure_port_free,
    last_lines,
    plan_summary,
    stack_state,
    state_dir,
    write_json,
)
from vllmtune.util.procs import pid_alive, stop_group

STOP_GRACE_SECONDS = 20
SIDECAR_GRACE_SECONDS = 5
LOCAL_HOSTS = {"vllm": "127.0.0.1", "redis": "127.0.0.1", "router": "127.0.0.1"}  # what {vllm} / {redis} mean here


def vllm_executable() -> str:
    """The ``vllm`` command: $VLLMTUNE_VLLM, else the one on PATH."""
    exe = os.environ.get("VLLMTUNE_VLLM") or shutil.which("vllm")
    if not exe or not os.access(exe, os.X_OK):
        raise LaunchError(
            "no `vllm` command found",
            hint="install vLLM (pip install vllm, or the CPU build), put it on PATH, "
            "or set VLLMTUNE_VLLM=/path/to/vllm",
            sep=": ",
        )
    return exe


class LocalBackend:
    """Processes recorded under the state directory: ``<name>.json`` and ``<name>.log``."""

    name = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or state_dir()) / "servers"
        self.say: Callable[[str], None] = lambda _msg: None
        # the replicas after the first (a router in front), by stack: (port, process, log) each;
        # up waits for the first through its own watch, start_front for these
        self._replicas: dict[str, list[tuple[int, subprocess.Popen[bytes], Path]]] = {}

    def _record_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def preflight(self, plan: DeploymentPlan, gpus: str | None) -> None:
        vllm_executable()
        if plan.model_host_path and not Path(plan.model_host_path).is_dir():
            raise LaunchError(
                f"model directory {plan.model_host_path} does not exist (model.id)",
                hint="for the tiny test model run: python scripts/make_tiny_model.py",
            )
        for i in range(plan.local_replicas):
            ensure_port_free(plan.host, plan.port + i, "stop it or choose another port (vllmtune up --port N)")
        for sc in plan.sidecars:
            if sc.command and not shutil.which(sc.command[0]):
                raise LaunchError(
                    f"the {SIDECAR_LABELS.get(sc.role, sc.role)} runs {sc.command[0]}, which is not installed",
                    hint=sc.local_install,
                )
            if sc.role == "redis" and not shutil.which("redis-server"):
                raise LaunchError(
                    "prompt_cache.backend redis runs a local redis-server, which is not installed",
                    hint="apt-get install redis-server (or brew install redis), or give the proxy your Redis "
                    "with prompt_cache.redis_url",
                    sep=": ",
                )
            bind = "127.0.0.1" if sc.role == "redis" else _bind(plan)
            fix = (
                "stop it, or give the proxy that Redis with prompt_cache.redis_url"
                if sc.role == "redis"
                else "stop it or choose another prompt_cache.port"
            )
            ensure_port_free(bind, sc.port, fix, f" (the {SIDECAR_LABELS.get(sc.role, sc.role)}'s)")

    def find(self, name: str) -> ServerRecord | None:
        path = self._record_path(name)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        server_state = "running" if pid_alive(int(data["ident"])) else "exited"
        # Records written before served_models existed: the base name is all we know.
        models = tuple(data.get("served_models") or ([data["served_name"]] if data.get("served_name") else []))
        states = ({**p, "state": "running" if pid_alive(int(p["pid"])) else "exited"} for p in data.get("parts") or [])
        parts = tuple(sorted(states, key=lambda p: ROLE_ORDER.get(p["role"], 9)))
        state = stack_state(server_state, data.get("summary", {}), parts)
        return ServerRecord(**{**data, "state": state, "served_models": models, "parts": parts})

    def start(self, plan: DeploymentPlan, gpus: str | None, env: dict[str, str]) -> Started:
        self.root.mkdir(parents=True, exist_ok=True)
        parts: list[dict[str, Any]] = []
        for sc in plan.sidecars:
            if sc.role == "redis":
                self.say(f"starting Redis (redis-server on 127.0.0.1:{sc.port})")
                proc = self._start_redis(plan, sc, env)
                parts.append(self._part(plan, sc.role, proc.pid, sc.port))
                self._write(plan, gpus, None, parts)  # recorded now: a failure below still removes it
                _wait_redis(proc, sc.port, env.get("VLLMTUNE_REDIS_PASSWORD", ""), self.log_path(parts[-1]["log_name"]))
        secrets = {s.name: env[s.name] for s in plan.secret_env if s.name in env}
        full_env = {**os.environ, **dict(plan.env), **secrets}
        if gpus is not None and gpus not in ("all",):
            full_env["CUDA_VISIBLE_DEVICES"] = gpus.removeprefix("device=")
        # more than one replica (a router in front): the others on the next ports, logged apart
        self._replicas[plan.name] = []
        for i in range(plan.local_replicas - 1, 0, -1):
            extra = plan.with_endpoint(port=plan.port + i).serve_argv()
            extra[0] = vllm_executable()
            self.say(f"starting replica {i + 1} of {plan.local_replicas} (port {plan.port + i})")
            other = _spawn(extra, self.log_path(f"{plan.name}-{i + 1}"), env=full_env)
            self._replicas[plan.name].append((plan.port + i, other, self.log_path(f"{plan.name}-{i + 1}")))
            parts.append(
                {
                    "role": "server",
                    "name": str(other.pid),
                    "pid": other.pid,
                    "port": plan.port + i,
                    "log_name": f"{plan.name}-{i + 1}",
                }
            )
            self._write(plan, gpus, None, parts)  # recorded now: a failure below still stops it
        argv = plan.serve_argv()
        argv[0] = vllm_executable()
        log = self.log_path(plan.name)
        proc = _spawn(argv, log, env=full_env)  # own group: down stops it all
        parts.insert(0, {"role": "server", "name": str(proc.pid), "pid": proc.pid, "port": plan.port})
        self._write(plan, gpus, proc.pid, parts, argv)
        return Started(ident=str(proc.pid), alive=lambda: proc.poll() is None, new_log_lines=_tail(log))

    def start_front(self, plan: DeploymentPlan, env: dict[str, str]) -> list[tuple[str, str, Started]]:
        """The cache proxy as a second process: ``python -m vllmtune.cache`` with the sidecar's
        args, vLLM at 127.0.0.1, bound where vLLM is (127.0.0.1 unless --host)."""
        from vllmtune.runtime.health import wait_http

        host = "127.0.0.1" if _bind(plan) in ("0.0.0.0", "::") else _bind(plan)
        # every replica answers before the router (and the proxy) start: up saw only the first
        for port, proc, log_file in sorted(self._replicas.pop(plan.name, []), key=lambda r: r[0]):
            self.say(f"waiting for the replica on port {port}")
            wait_http(
                f"vLLM replica on port {port}",
                f"http://{host}:{port}/health",
                _alive(proc),
                _tail(log_file),
                REPLICA_READY_SECONDS,
                [],
            )
        out = []
        data = json.loads(self._record_path(plan.name).read_text())
        for sc in plan.sidecars:
            if sc.role == "redis":
                continue
            ports = {f"port{i}": str(plan.port + i) for i in range(plan.local_replicas)}
            args = sc.resolved_args({**LOCAL_HOSTS, **ports}, plan.port, local=True)
            if "--host" in args:
                args[args.index("--host") + 1] = _bind(plan)
            # the router is its own program (vllm-router, from its wheel); the proxy is ours
            argv = [*sc.command, *args] if sc.command else [sys.executable, "-m", "vllmtune.cache", *args]
            log = self.log_path(plan.sidecar_name(sc.role))
            secrets = {s.name: env[s.name] for s in sc.secret_env if s.name in env}
            self.say(f"starting the {SIDECAR_LABELS.get(sc.role, sc.role)} ({_bind(plan)}:{sc.port})")
            proc = _spawn(argv, log, env={**os.environ, **dict(sc.env), **secrets})
            data["parts"].append({**self._part(plan, sc.role, proc.pid, sc.port), "argv": argv})
            write_json(self._record_path(plan.name), data)
            url = f"http://{host}:{sc.port}{sc.health_path or '/'}"
            out.append(
                (
                    SIDECAR_LABELS.get(sc.role, sc.role),
                    url,
                    Started(ident=str(proc.pid), alive=lambda p=proc: p.poll() is None, new_log_lines=_tail(log)),
                )
            )
        return out

    def _part(self, plan: DeploymentPlan, role: str, pid: int, port: int) -> dict[str, Any]:
        name = plan.sidecar_name(role)
        return {"role": role, "name": str(pid), "pid": pid, "port": port, "log_name": name}

    def _start_redis(self, plan: DeploymentPlan, sc: Sidecar, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``redis-server -``: the password comes in on stdin (as the container's sh heredoc
        does), never in argv; bound to 127.0.0.1 only. The rest is the sidecar's args."""
        log = self.log_path(plan.sidecar_name(sc.role))
        password = env.get("VLLMTUNE_REDIS_PASSWORD", "")
        config = f"port {sc.port}\nbind 127.0.0.1\nrequirepass {password}\n"
        proc = _spawn(["redis-server", "-", *sc.args], log, stdin=subprocess.PIPE, cwd=self.root)
        assert proc.stdin is not None
        proc.stdin.write(config.encode())
        proc.stdin.close()
        return proc

    def _write(
        self,
        plan: DeploymentPlan,
        gpus: str | None,
        pid: int | None,
        parts: list[dict[str, Any]],
        argv: list[str] | None = None,
    ) -> None:
        log = self.log_path(plan.name)
        record = ServerRecord(
            name=plan.name,
            backend=self.name,
            profile_hash=plan.profile_hash,
            port=plan.port,
            served_name=plan.served_name,
            started_at=time.time(),
            state="running",
            # before vLLM starts, the record holds its first part (Redis), so that stop() finds it
            ident=str(pid if pid is not None else parts[0]["pid"]),
            summary={**plan_summary(plan, gpus), "argv": argv or [], "log": str(log)},
            served_models=plan.served_names or (plan.served_name,),
            parts=tuple(parts),
        )
        write_json(self._record_path(plan.name), record.to_json())

    def describe_parts(self, plan: DeploymentPlan) -> str:
        if not plan.sidecars:
            return "the process"
        roles = ", ".join(["vLLM", *(SIDECAR_LABELS.get(sc.role, sc.role) for sc in plan.sidecars)])
        return f"the processes ({roles})"

    def mark_ready(self, plan: DeploymentPlan) -> None:
        """Nothing to change: a local process has no restart policy."""

    def stop(self, name: str) -> bool:
        path = self._record_path(name)
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        parts = data.get("parts") or [{"role": "server", "pid": int(data["ident"])}]
        order = {"cache": 0, "router": 0, "server": 1, "redis": 2}
        for part in sorted(parts, key=lambda p: order.get(p["role"], 1)):
            grace = STOP_GRACE_SECONDS if part["role"] == "server" else SIDECAR_GRACE_SECONDS
            stop_group(int(part["pid"]), grace)
        path.unlink(missing_ok=True)
        return True

    def list(self) -> list[ServerRecord]:
        if not self.root.exists():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            record = self.find(path.stem)
            if record is not None:
                out.append(record)
        return out

    def logs(self, name: str, follow: bool, tail: int | None) -> Iterator[str]:
        """A server's log, or a part's (NAME-cache, NAME-redis)."""
        log = self.log_path(name)
        if not log.exists():
            raise LaunchError(f"no local server named {name!r} has logs here ({log})")
        with log.open("r", encoding="utf-8", errors="replace") as fh:
            yield from last_lines(fh.read().splitlines(), tail)
            while follow:
                line = fh.readline()
                if line:
                    yield line.rstrip("\n")
                    continue
                if self.find(name) is None or self.find(name).state != "running":  # type: ignore[union-attr]
                    yield from (rest.rstrip("\n") for rest in fh)  # what it wrote before it ended
                    return
                time.sleep(0.2)


def _bind(plan: DeploymentPlan) -> str:
    """Where the local stack listens: vLLM's address (127.0.0.1 unless --host)."""
    return plan.host


def _spawn(
    argv: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    stdin: int = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A part of the stack in its own session (``stop_group`` ends it all), its output to ``log``."""
    with log.open("wb") as fh:
        return subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, stdin=stdin, env=env, cwd=cwd, start_new_session=True
        )


def _alive(proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """Whether the process still runs, call by call."""
    return lambda: proc.poll() is None


def _tail(log: Path) -> Callable[[], list[str]]:
    """New whole lines of a log file, call by call."""
    offset = 0

    def new_lines() -> list[str]:
        nonlocal offset
        try:
            with log.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return []
        cut = data.rfind(b"\n") + 1  # only whole lines
        offset += cut
        return data[:cut].decode("utf-8", "replace").splitlines()

    return new_lines


def _wait_redis(proc: subprocess.Popen[bytes], port: int, password: str, log: Path) -> None:
    """Redis answers AUTH + PING on 127.0.0.1 (RESP over a socket: no client library needed)."""
    pw = password.encode()
    hello = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(pw), pw)
    deadline = time.monotonic() + REDIS_READY_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(hello)
                answer = b""
                while b"PONG" not in answer and len(answer) < 200:
                    chunk = s.recv(200)
                    if not chunk:
                        break
                    answer += chunk
                if b"+PONG" in answer:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    lines = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
    tail = "\n".join("  | " + line for line in lines) or "  | (no log output)"
    raise LaunchError(
        f"Redis (redis-server on 127.0.0.1:{port}) did not answer PING within {REDIS_READY_SECONDS:.0f} s\n{tail}"
    )
