"""An unreachable Docker daemon is an error, never "nothing running"; ``down`` of a name that
matches no server is an error with the names that exist (issue 14, bug 5).

The daemon is "unreachable" for real: DOCKER_HOST points at a socket path where nothing listens
(and at a closed TCP port), so no engine is needed; the local backend reads real state files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.test_ps_models import record
from tests.support.cli import Cli
from vllmtune.runtime import manage
from vllmtune.runtime.docker_backend import unreachable_reason

vt = Cli(timeout=60, env={"VLLMTUNE_NO_CACHE": "1"})


def unreachable(where: str, reason: str) -> str:
    return (
        f"error: cannot reach the Docker daemon at {where}: {reason}\n"
        "start it (sudo systemctl start docker, or dockerd) or point DOCKER_HOST at a running "
        "daemon; or use --runtime local\n"
    )


@pytest.fixture
def no_daemon(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "state").mkdir()
    return {"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock", "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}


@pytest.mark.parametrize(
    "args",
    [
        ("ps",),
        ("ps", "--output", "json"),
        ("ps", "--runtime", "docker"),
        ("down", "nosuch"),
        ("down", "preset:cpu-tiny"),
        ("down", "nosuch", "--runtime", "docker"),
        ("drift", "preset:cpu-tiny"),
        ("drift", "preset:cpu-tiny", "--runtime", "docker"),
        ("logs", "nosuch"),
        ("up", "preset:cpu-tiny", "-d"),
    ],
)
def test_unreachable_daemon_is_an_error(no_daemon: dict[str, str], args: tuple[str, ...]) -> None:
    r = vt(*args, env=no_daemon)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.endswith(unreachable(no_daemon["DOCKER_HOST"], "No such file or directory"))
    assert "Traceback" not in r.stderr


def test_up_with_an_unreachable_daemon_says_it_whole(tmp_path: Path, no_daemon: dict[str, str]) -> None:
    # No engine needed (moved out of test_docker_backend.py, whose engine fixture skipped it).
    path = tmp_path / "vt-nodaemon.yaml"
    path.write_text("name: vt-nodaemon\nvllm: {version: '0.32.0'}\nmodel: {id: org/model-x}\n")
    r = vt("up", str(path), "-d", env=no_daemon)
    assert (r.returncode, r.stdout, r.stderr) == (
        1,
        "",
        unreachable(no_daemon["DOCKER_HOST"], "No such file or directory"),
    )


def test_refused_tcp_daemon_message_is_whole(no_daemon: dict[str, str]) -> None:
    # The SDK's text is "Error while fetching server API version: HTTPConnectionPool(...": say why.
    env = {**no_daemon, "DOCKER_HOST": "tcp://127.0.0.1:9"}
    r = vt("ps", env=env)
    assert (r.returncode, r.stderr) == (1, unreachable("tcp://127.0.0.1:9", "Connection refused"))


def test_local_only_commands_do_not_need_the_daemon(no_daemon: dict[str, str]) -> None:
    r = vt("ps", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stdout, r.stderr) == (0, "no servers started by vllmtune\n", "")


def test_down_of_an_unknown_name_says_what_exists(no_daemon: dict[str, str]) -> None:
    servers = Path(no_daemon["VLLMTUNE_STATE_DIR"]) / "servers"
    servers.mkdir()
    for name in ("my-llama", "other"):
        (servers / f"{name}.json").write_text(json.dumps(record(name, "tiny", 8001)))
    r = vt("down", "my-lama", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        "error: no server named 'my-lama' to stop; did you mean 'my-llama'?\n"
        "servers started by vllmtune: my-llama, other\n"
    )
    r = vt("down", "zzz", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stderr) == (
        1,
        "error: no server named 'zzz' to stop\nservers started by vllmtune: my-llama, other\n",
    )
    # A profile whose server is not running: nothing to stop, idempotent (exit 0).
    r = vt("down", "preset:cpu-tiny", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stdout, r.stderr) == (0, "tiny-cpu: nothing to stop\n", "")
    r = vt("down", "my-llama", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stdout) == (0, "my-llama: stopped and removed (local)\n")
    servers.joinpath("other.json").unlink()
    r = vt("down", "my-llama", "--runtime", "local", env=no_daemon)
    assert (r.returncode, r.stderr) == (
        1,
        "error: no server named 'my-llama' to stop (no servers started by vllmtune are running)\n",
    )


def test_a_machine_without_docker_is_the_local_backend_alone(
    no_daemon: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No DOCKER_HOST, no socket, no docker CLI: nothing to report about Docker (unit level:
    # the machine running the tests has Docker).
    for k, v in no_daemon.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(manage, "docker_in_use", lambda: False)
    assert manage.ps_rows(None) == []
    assert manage.down("preset:cpu-tiny", None) == "tiny-cpu: nothing to stop"


def test_unreachable_reason_reads_the_root_cause() -> None:
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory")
        except OSError as inner:
            raise RuntimeError("Error while fetching server API version: ('Connection aborted.', ...)") from inner
    except RuntimeError as exc:
        assert unreachable_reason(exc) == "No such file or directory"
    text = (
        'Error while fetching server API version: (Caused by NewConnectionError("x: [Errno 111] Connection refused"))'
    )
    assert unreachable_reason(RuntimeError(text)) == "Connection refused"
    assert unreachable_reason(RuntimeError("Error while fetching server API version: teapot")) == "teapot"
