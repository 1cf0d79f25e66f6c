"""runtime.base's public names called directly: ServerRecord (stored and shown forms, the front
port), Started, the Backend protocol's members, the logs tail (last_lines, docker_tail),
stack_state, the secret readers (whole refusal messages), port_free / port_holder_process on a
socket this test holds, state_dir, write_json."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.runtime.base import (
    Backend,
    ServerRecord,
    Started,
    docker_tail,
    ensure_port_free,
    last_lines,
    port_free,
    port_holder_process,
    secret_values,
    sidecar_secret_values,
    stack_state,
    state_dir,
    write_json,
)

SUMMARY = {"image": "vllm/vllm-openai:v0.9.2", "args": ["--model", "m"], "env": {}, "gpus": "0", "port": 8000}
PARTS = (
    {"role": "server", "name": "abc", "state": "running", "port": 8000},
    {"role": "cache", "name": "def", "state": "running", "port": 8080},
)


def _record(**over: object) -> ServerRecord:
    fields: dict[str, object] = {
        "name": "s", "backend": "docker", "profile_hash": "h", "port": 8000, "served_name": "m",
        "started_at": 1.5, "state": "running", "ident": "abc", "summary": SUMMARY,
    }  # fmt: skip
    fields.update(over)
    return ServerRecord(**fields)  # type: ignore[arg-type]


def test_server_record_json_front_port_and_shown() -> None:
    rec = _record(served_models=("m", "lora1"), parts=PARTS)
    assert rec.to_json() == {
        "name": "s", "backend": "docker", "profile_hash": "h", "port": 8000, "served_name": "m",
        "started_at": 1.5, "state": "running", "ident": "abc", "summary": SUMMARY,
        "served_models": ["m", "lora1"], "parts": [dict(p) for p in PARTS],
    }  # fmt: skip
    assert json.loads(json.dumps(rec.to_json())) == rec.to_json()
    assert rec.front_port == 8080  # the proxy's
    assert _record().front_port == 8000
    assert _record(parts=({"role": "cache", "port": 0},)).front_port == 8000
    assert rec.shown() == rec.to_json()  # docker: as stored


def test_server_record_shown_for_a_local_server(tmp_path: Path) -> None:
    env = tmp_path / "venv"
    (env / "bin").mkdir(parents=True)
    info = env / "lib" / "python3.11" / "site-packages" / "vllm-0.9.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.9.2\n\nlong description\n")
    exe = env / "bin" / "vllm"
    exe.write_text(f"#!{env / 'bin' / 'python'}\nimport sys\n")
    rec = _record(backend="local", summary={**SUMMARY, "argv": [str(exe), "serve", "m"]})
    shown = rec.shown()
    assert shown["summary"] == {
        "args": ["--model", "m"], "env": {}, "gpus": "0", "port": 8000, "argv": [str(exe), "serve", "m"],
        "vllm": {"executable": str(exe), "version": "0.9.2"},
    }  # fmt: skip
    assert _record(backend="local").shown()["summary"]["vllm"] == {"executable": None, "version": None}


def test_started_and_the_backend_protocol() -> None:
    s = Started(ident="123", alive=lambda: True, new_log_lines=lambda: ["a"])
    assert (s.ident, s.alive(), s.new_log_lines()) == ("123", True, ["a"])
    members = {n for n in vars(Backend) if not n.startswith("_")} | set(Backend.__annotations__)
    assert members == {"name", "say", "preflight", "find", "start", "start_front", "describe_parts", "mark_ready",
                       "stop", "list", "logs"}  # fmt: skip


def test_stack_state() -> None:
    summary = {"sidecars": [{"role": "cache"}, {"role": "redis"}]}
    both = ({"role": "cache", "state": "running"}, {"role": "redis", "state": "running"})
    assert stack_state("running", summary, both) == "running"
    assert stack_state("running", summary, both[:1]) == "degraded"
    assert (
        stack_state("running", summary, ({"role": "cache", "state": "running"}, {"role": "redis", "state": "exited"}))
        == "degraded"
    )
    assert stack_state("exited", summary, both) == "exited"
    assert stack_state("running", {}, ()) == "running"


def _plan(tmp_path: Path, body: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text("extends: cpu-tiny\nname: sec\n" + body)
    return load_plan(str(p))


def test_secret_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(tmp_path, "server:\n  hf_token: {env: T_HF}\n  secret_env: {WANDB_API_KEY: {env: T_WANDB}}\n")
    monkeypatch.setenv("T_HF", "hf-1")
    monkeypatch.setenv("T_WANDB", "w-2")
    assert secret_values(plan) == {"HF_TOKEN": "hf-1", "WANDB_API_KEY": "w-2"}
    monkeypatch.setenv("T_HF", "")
    monkeypatch.delenv("T_WANDB")
    with pytest.raises(LaunchError) as err:
        secret_values(plan)
    assert str(err.value) == (
        "server.hf_token refers to $T_HF, which is not set: export T_HF=... and run again\n"
        "server.secret_env.WANDB_API_KEY refers to $T_WANDB, which is not set: export T_WANDB=... and run again"
    )
    assert sidecar_secret_values(plan) == {}


def test_sidecar_secret_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _plan(tmp_path, "prompt_cache: {enabled: true, backend: redis}\n")
    monkeypatch.delenv("VLLMTUNE_REDIS_PASSWORD", raising=False)
    generated = sidecar_secret_values(own)
    assert list(generated) == ["VLLMTUNE_REDIS_PASSWORD"] and len(generated["VLLMTUNE_REDIS_PASSWORD"]) == 32
    assert sidecar_secret_values(own) != generated  # one per launch
    monkeypatch.setenv("VLLMTUNE_REDIS_PASSWORD", "mine")
    assert sidecar_secret_values(own) == {"VLLMTUNE_REDIS_PASSWORD": "mine"}
    external = _plan(tmp_path, "prompt_cache: {enabled: true, backend: redis, redis_url: {env: T_REDIS}}\n")
    monkeypatch.setenv("T_REDIS", "redis://:pw@r:6379/0")
    assert sidecar_secret_values(external) == {"VLLMTUNE_REDIS_URL": "redis://:pw@r:6379/0"}
    monkeypatch.delenv("T_REDIS")
    with pytest.raises(LaunchError) as err:
        sidecar_secret_values(external)
    assert (
        str(err.value)
        == "prompt_cache.redis_url refers to $T_REDIS, which is not set: export T_REDIS=... and run again"
    )


def test_port_free_and_its_holder() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.listen()
        assert port_free("127.0.0.1", port) is False
        comm = Path("/proc/self/comm").read_text().strip()
        assert port_holder_process(port) == f"{comm} (pid {os.getpid()})"
    assert port_free("127.0.0.1", port) is True
    assert port_holder_process(port) is None


def test_state_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VLLMTUNE_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "vllmtune"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "vllmtune"
    monkeypatch.setenv("VLLMTUNE_STATE_DIR", str(tmp_path / "mine"))
    assert state_dir() == tmp_path / "mine"


def test_write_json_creates_parents_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rec.json"
    write_json(path, {"x": [1, 2]})
    assert path.read_text() == '{\n  "x": [\n    1,\n    2\n  ]\n}'
    write_json(path, {"y": None})
    assert json.loads(path.read_text()) == {"y": None}
    assert sorted(p.name for p in path.parent.iterdir()) == ["rec.json"]  # no .tmp left behind


def test_ensure_port_free_names_the_holder_and_the_fix() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LaunchError) as err:
            ensure_port_free("127.0.0.1", port, "stop it or set prompt_cache.port", " (the cache proxy's)")
        comm = Path("/proc/self/comm").read_text().strip()
        assert str(err.value) == (
            f"port {port} (the cache proxy's) is already in use by {comm} (pid {os.getpid()}); "
            "stop it or set prompt_cache.port"
        )
    ensure_port_free("127.0.0.1", port, "unused")  # free again: no error


def test_a_logs_tail_reads_alike_on_both_backends() -> None:
    lines = ["a", "b", "c"]
    assert {tail: last_lines(lines, tail) for tail in (None, 0, 2, 5)} == {
        None: ["a", "b", "c"], 0: [], 2: ["b", "c"], 5: ["a", "b", "c"],
    }  # fmt: skip
    assert {tail: docker_tail(tail) for tail in (None, 0, 2)} == {None: "all", 0: 0, 2: 2}
