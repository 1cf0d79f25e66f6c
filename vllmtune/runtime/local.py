"""Local backend: ``vllm serve`` as a process group on this machine (bare metal, laptop, CI);
with the prompt cache, the proxy (``python -m vllmtune.cache``) as a second process in front of
it and, for backend redis, a ``redis-server`` -- each in its own session, recorded as parts."""

from __future__ import annotations

import json
import os
import shutil
import signal
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
    ROLE_ORDER,
    SIDECAR_LABELS,
    ServerRecord,
    Started,
    plan_summary,
    port_free,
    port_holder_process,
    stack_state,
    state_dir,
    write_json,
)

STOP_GRACE_SECONDS = 20
SIDECAR_GRACE_SECONDS = 5
REDIS_READY_SECONDS = 30.0
LOCAL_HOSTS = {"vllm": "127.0.0.1", "redis": "127.0.0.1"}  # what {vllm} / {redis} mean here


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


class LocalBackend:
    """Processes recorded under the state directory: ``<name>.json`` and ``<name>.log``."""

    name = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or state_dir()) / "servers"
        self.say: Callable[[str], None] = lambda _msg: None

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
        if not port_free(plan.host, plan.port):
            holder = port_holder_process(plan.port) or "another process"
            raise LaunchError(
                f"port {plan.port} is already in use by {holder}; stop it or choose another port (vllmtune up --port N)"
            )
        for sc in plan.sidecars:
            if sc.role == "redis" and not shutil.which("redis-server"):
                raise LaunchError(
                    "prompt_cache.backend redis runs a local redis-server, which is not installed",
                    hint="apt-get install redis-server (or brew install redis), or give the proxy your Redis "
                    "with prompt_cache.redis_url",
                    sep=": ",
                )
            bind = "127.0.0.1" if sc.role == "redis" else _bind(plan)
            if not port_free(bind, sc.port):
                holder = port_holder_process(sc.port) or "another process"
                fix = (
                    "stop it, or give the proxy that Redis with prompt_cache.redis_url"
                    if sc.role == "redis"
                    else "stop it or choose another prompt_cache.port"
                )
                what = SIDECAR_LABELS.get(sc.role, sc.role)
                raise LaunchError(f"port {sc.port} (the {what}'s) is already in use by {holder}; {fix}")

    def find(self, name: str) -> ServerRecord | None:
        path = self._record_path(name)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        server_state = "running" if _alive(int(data["ident"])) else "exited"
        # Records written before served_models existed: the base name is all we know.
        models = tuple(data.get("served_models") or ([data["served_name"]] if data.get("served_name") else []))
        states = ({**p, "state": "running" if _alive(int(p["pid"])) else "exited"} for p in data.get("parts") or [])
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
        argv = plan.serve_argv()
        argv[0] = vllm_executable()
        log = self.log_path(plan.name)
        secrets = {s.name: env[s.name] for s in plan.secret_env if s.name in env}
        full_env = {**os.environ, **dict(plan.env), **secrets}
        if gpus is not None and gpus not in ("all",):
            full_env["CUDA_VISIBLE_DEVICES"] = gpus.removeprefix("device=")
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )  # own group: down stops it all
        parts.insert(0, {"role": "server", "name": str(proc.pid), "pid": proc.pid, "port": plan.port})
        self._write(plan, gpus, proc.pid, parts, argv)
        return Started(ident=str(proc.pid), alive=lambda: proc.poll() is None, new_log_lines=_tail(log))

    def start_front(self, plan: DeploymentPlan, env: dict[str, str]) -> list[tuple[str, str, Started]]:
        """The cache proxy as a second process: ``python -m vllmtune.cache`` with the sidecar's
        args, vLLM at 127.0.0.1, bound where vLLM is (127.0.0.1 unless --host)."""
        out = []
        data = json.loads(self._record_path(plan.name).read_text())
        for sc in plan.sidecars:
            if sc.role == "redis":
                continue
            args = sc.resolved_args(LOCAL_HOSTS)
            if "--host" in args:
                args[args.index("--host") + 1] = _bind(plan)
            argv = [sys.executable, "-m", "vllmtune.cache", *args]
            log = self.log_path(plan.sidecar_name(sc.role))
            secrets = {s.name: env[s.name] for s in sc.secret_env if s.name in env}
            self.say(f"starting the cache proxy ({_bind(plan)}:{sc.port})")
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    argv,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **dict(sc.env), **secrets},
                    start_new_session=True,
                )
            data["parts"].append({**self._part(plan, sc.role, proc.pid, sc.port), "argv": argv})
            write_json(self._record_path(plan.name), data)
            host = "127.0.0.1" if _bind(plan) in ("0.0.0.0", "::") else _bind(plan)
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
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                ["redis-server", "-", *sc.args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,
                cwd=self.root,
                start_new_session=True,
            )
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
        order = {"cache": 0, "server": 1, "redis": 2}
        for part in sorted(parts, key=lambda p: order.get(p["role"], 1)):
            grace = STOP_GRACE_SECONDS if part["role"] == "server" else SIDECAR_GRACE_SECONDS
            _stop_pid(int(part["pid"]), grace)
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
            lines = fh.read().splitlines()
            yield from lines[-tail:] if tail else lines
            while follow:
                line = fh.readline()
                if line:
                    yield line.rstrip("\n")
                    continue
                if self.find(name) is None or self.find(name).state != "running":  # type: ignore[union-attr]
                    return
                time.sleep(0.2)


def _bind(plan: DeploymentPlan) -> str:
    """Where the local stack listens: vLLM's address (127.0.0.1 unless --host)."""
    return plan.host


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


def _stop_pid(pid: int, grace: float) -> None:
    """SIGTERM the process alone (``vllm serve`` shuts its engine down cleanly; signalling the
    whole group kills the engine first and floods the log), then its group once it is gone."""
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Children of the group that outlived the leader (engine cores) go too.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
