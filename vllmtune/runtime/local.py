"""Local backend: ``vllm serve`` as a process group on this machine (bare metal, laptop, CI)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan
from vllmtune.runtime.base import (
    ServerRecord,
    Started,
    plan_summary,
    port_free,
    port_holder_process,
    state_dir,
    write_json,
)

STOP_GRACE_SECONDS = 20


def vllm_executable() -> str:
    """The ``vllm`` command: $VLLMTUNE_VLLM, else the one on PATH."""
    exe = os.environ.get("VLLMTUNE_VLLM") or shutil.which("vllm")
    if not exe or not os.access(exe, os.X_OK):
        raise LaunchError(
            "no `vllm` command found: install vLLM (pip install vllm, or the CPU "
            "build), put it on PATH, or set VLLMTUNE_VLLM=/path/to/vllm"
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

    def _record_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def preflight(self, plan: DeploymentPlan, gpus: str | None) -> None:
        vllm_executable()
        if plan.model_host_path and not Path(plan.model_host_path).is_dir():
            raise LaunchError(
                f"model directory {plan.model_host_path} does not exist (model.id); "
                "for the tiny test model run: python scripts/make_tiny_model.py"
            )
        if not port_free(plan.host, plan.port):
            holder = port_holder_process(plan.port) or "another process"
            raise LaunchError(
                f"port {plan.port} is already in use by {holder}; stop it or choose another port (vllmtune up --port N)"
            )

    def find(self, name: str) -> ServerRecord | None:
        path = self._record_path(name)
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        state = "running" if _alive(int(data["ident"])) else "exited"
        # Records written before served_models existed: the base name is all we know.
        models = tuple(data.get("served_models") or ([data["served_name"]] if data.get("served_name") else []))
        return ServerRecord(**{**data, "state": state, "served_models": models})

    def start(self, plan: DeploymentPlan, gpus: str | None, env: dict[str, str]) -> Started:
        argv = plan.serve_argv()
        argv[0] = vllm_executable()
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.log_path(plan.name)
        full_env = {**os.environ, **dict(plan.env), **env}
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
        record = ServerRecord(
            name=plan.name,
            backend=self.name,
            profile_hash=plan.profile_hash,
            port=plan.port,
            served_name=plan.served_name,
            started_at=time.time(),
            state="running",
            ident=str(proc.pid),
            summary={**plan_summary(plan, gpus), "argv": argv, "log": str(log)},
            served_models=plan.served_names or (plan.served_name,),
        )
        write_json(self._record_path(plan.name), record.to_json())
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

        return Started(ident=str(proc.pid), alive=lambda: proc.poll() is None, new_log_lines=new_lines)

    def mark_ready(self, plan: DeploymentPlan) -> None:
        """Nothing to change: a local process has no restart policy."""

    def stop(self, name: str) -> bool:
        record = self.find(name)
        if record is None:
            return False
        pid = int(record.ident)
        if _alive(pid):
            # SIGTERM to `vllm serve` alone: it shuts its engine down cleanly; signalling the
            # whole group kills the engine first and floods the log with EngineDeadError.
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # Children of the group that outlived the leader (engine cores) go too.
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._record_path(name).unlink(missing_ok=True)
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
