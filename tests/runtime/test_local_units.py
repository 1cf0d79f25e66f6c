"""runtime.local.LocalBackend called directly (no vLLM): preflight's refusals (whole messages),
records read back by find/list, stop on a real process group, logs, describe_parts; and
manage.running_port over the records."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.runtime import local, manage
from vllmtune.runtime.local import LocalBackend


def _plan(tmp_path: Path, extra: str = "") -> DeploymentPlan:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: cpu-tiny\nname: loc\nmodel: {{id: {model}}}\n" + extra)
    return load_plan(str(p))


def _fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "vllm"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("VLLMTUNE_VLLM", str(exe))


def test_preflight_without_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLMTUNE_VLLM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LaunchError) as err:
        LocalBackend(tmp_path).preflight(_plan(tmp_path), None)
    assert str(err.value) == (
        "no `vllm` command found: install vLLM (pip install vllm, or the CPU build), put it on PATH, "
        "or set VLLMTUNE_VLLM=/path/to/vllm"
    )


def test_preflight_refuses_a_missing_model_dir_and_a_busy_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vllm(tmp_path, monkeypatch)
    p = tmp_path / "gone.yaml"
    p.write_text(f"extends: cpu-tiny\nname: gone\nmodel: {{id: {tmp_path / 'nope'}}}\n")
    with pytest.raises(LaunchError) as err:
        LocalBackend(tmp_path).preflight(load_plan(str(p)), None)
    assert str(err.value) == (
        f"model directory {tmp_path / 'nope'} does not exist (model.id); "
        "for the tiny test model run: python scripts/make_tiny_model.py"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        plan = _plan(tmp_path, f"server: {{host: 127.0.0.1, port: {port}}}\n")
        with pytest.raises(LaunchError) as err:
            LocalBackend(tmp_path).preflight(plan, None)
        comm = Path("/proc/self/comm").read_text().strip()
        assert str(err.value) == (
            f"port {port} is already in use by {comm} (pid {os.getpid()}); "
            f"stop it or choose another port (vllmtune up --port N)"
        )


def _record(root: Path, name: str, pid: int, parts: list[dict[str, object]] | None = None) -> None:
    data: dict[str, object] = {
        "name": name, "backend": "local", "profile_hash": "h", "port": 8123, "served_name": "m",
        "started_at": 1.0, "state": "running", "ident": str(pid), "summary": {"image": "", "args": []},
    }  # fmt: skip
    if parts is not None:
        data["parts"] = parts
    (root / "servers").mkdir(parents=True, exist_ok=True)
    (root / "servers" / f"{name}.json").write_text(json.dumps(data))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_find_and_list_read_records_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend(tmp_path)
    assert (backend.find("none"), backend.list()) == (None, [])
    _record(tmp_path, "live", os.getpid())
    _record(tmp_path, "dead", _dead_pid(), parts=[{"role": "cache", "pid": os.getpid(), "port": 8080}])
    live, dead = backend.find("live"), backend.find("dead")
    assert live is not None and dead is not None
    assert (live.state, live.served_models, live.parts, live.front_port) == ("running", ("m",), (), 8123)
    assert (dead.state, dead.parts, dead.front_port) == (
        "exited",
        ({"role": "cache", "pid": os.getpid(), "port": 8080, "state": "running"},),
        8080,
    )
    assert [r.name for r in backend.list()] == ["dead", "live"]
    monkeypatch.setenv("VLLMTUNE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(manage, "_backends", lambda _which: [backend])
    assert manage.running_port("live") == 8123
    assert manage.running_port("dead") is None  # exited
    assert manage.running_port("none") is None


def test_stop_ends_the_process_and_removes_the_record(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    assert backend.stop("none") is False
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    _record(tmp_path, "s", proc.pid)
    assert backend.stop("s") is True
    assert proc.wait(timeout=30) == -15  # SIGTERM
    assert backend.find("s") is None


def test_logs_and_describe_parts(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    log = backend.log_path("loc")
    with pytest.raises(LaunchError) as err:
        list(backend.logs("loc", follow=False, tail=None))
    assert str(err.value) == f"no local server named 'loc' has logs here ({log})"
    log.parent.mkdir(parents=True)
    log.write_text("a\nb\nc\n")
    assert list(backend.logs("loc", follow=False, tail=2)) == ["b", "c"]
    assert list(backend.logs("loc", follow=False, tail=None)) == ["a", "b", "c"]
    assert list(backend.logs("loc", follow=True, tail=None)) == ["a", "b", "c"]  # no server running: ends
    assert backend.describe_parts(_plan(tmp_path)) == "the process"
    cached = _plan(tmp_path, "prompt_cache: {enabled: true, backend: redis}\n")
    assert backend.describe_parts(cached) == "the processes (vLLM, cache proxy, Redis)"


def test_logs_tail_then_follow_a_real_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tail None: the whole log (up's foreground mode); N: its last N lines; 0: none (as tail -n 0);
    then, following, each line the process writes until it ends (the Docker backend's tests ask
    the Docker API with the same values)."""
    backend = LocalBackend(tmp_path)
    log = backend.log_path("loc")
    go = tmp_path / "go"

    def first_wait(seconds: float) -> None:  # the old lines are out: now let the process write
        go.touch()
        time.sleep(seconds)

    monkeypatch.setattr(local, "time", SimpleNamespace(sleep=first_wait))
    seen = {}
    for tail in (None, 1, 0):
        go.unlink(missing_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("old1\nold2\n")
        script = f"while [ ! -e {go} ]; do sleep 0.05; done; echo new1; echo new2"
        with log.open("ab") as fh:
            proc = subprocess.Popen(["sh", "-c", script], stdout=fh, start_new_session=True)
        _record(tmp_path, "loc", proc.pid)
        seen[tail] = list(backend.logs("loc", follow=True, tail=tail))
        assert proc.wait(timeout=30) == 0
    assert seen == {None: ["old1", "old2", "new1", "new2"], 1: ["old2", "new1", "new2"], 0: ["new1", "new2"]}
