"""runtime.up's get_backend and follow_until_interrupted called directly, on the local backend's
real state files (a server that exited; a live process stopped by Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.interrupt import INTERRUPTIBLE
from vllmtune.errors import LaunchError
from vllmtune.runtime.docker_backend import DockerBackend
from vllmtune.runtime.local import LocalBackend
from vllmtune.runtime.up import follow_until_interrupted, get_backend


def test_get_backend_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMTUNE_STATE_DIR", str(tmp_path))
    local = get_backend("local")
    assert isinstance(local, LocalBackend)
    assert local.root == tmp_path / "servers"
    assert isinstance(get_backend("docker"), DockerBackend)
    with pytest.raises(LaunchError) as err:
        get_backend("k8s")
    assert str(err.value) == "unknown runtime 'k8s'; choose docker or local"


def _record(root: Path, name: str, pid: int, log: str) -> Path:
    servers = root / "servers"
    servers.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name, "backend": "local", "profile_hash": "h", "port": 8123, "served_name": "m",
        "started_at": 1.0, "state": "running", "ident": str(pid), "summary": {"image": "", "args": []},
    }  # fmt: skip
    (servers / f"{name}.log").write_text(log)
    path = servers / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_follow_streams_the_log_until_the_server_exits_then_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VLLMTUNE_STATE_DIR", str(tmp_path))
    done = subprocess.Popen(["true"])
    done.wait()
    record = _record(tmp_path, "gone", done.pid, "loading\nready\n")
    follow_until_interrupted("gone", "local")
    assert capsys.readouterr().out == "loading\nready\n"
    assert not record.exists()


def test_ctrl_c_stops_and_removes_the_server(tmp_path: Path) -> None:
    server = subprocess.Popen(["sleep", "60"], start_new_session=True)
    record = _record(tmp_path, "live", server.pid, "ready\n")
    code = "from vllmtune.runtime.up import follow_until_interrupted\nfollow_until_interrupted('live', 'local')\n"
    env = {**os.environ, "VLLMTUNE_STATE_DIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    follower = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **INTERRUPTIBLE,
    )
    assert follower.stdout is not None
    assert follower.stdout.readline() == "ready\n"  # inside the follow loop now
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=60)
    assert follower.returncode != 0  # the KeyboardInterrupt goes on after the stop
    assert err.startswith("stopping live ...\n")
    assert err.rstrip().endswith("KeyboardInterrupt")
    assert server.wait(timeout=30) == -signal.SIGTERM
    assert not record.exists()
