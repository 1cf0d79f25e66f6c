"""vllmtune/containers.py: the rendered docker script and `vllmtune up` start the sidecars from
one spec -- checked here by reading the script's `docker run` words back (shlex, as bash
would) and comparing them with the Docker SDK arguments `up` passes. Plus what the proxy
imports and what its image's build context holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.containers import network_labels, network_name, sidecar_container
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.docker import render_docker
from vllmtune.runtime.base import plan_summary, summary_changes
from vllmtune.runtime.docker_backend import sidecar_run_kwargs


def _plan(tmp_path: Path, extra: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text("extends: all-levers\nname: stk\n" + extra)
    return load_plan(str(p))


def _script_runs(script: str, tmp_path: Path) -> dict[str, list[str]]:
    """container name -> the argv of its `docker run`, as bash runs the script (a `docker` on
    PATH that records its argv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "docker-argv.jsonl"
    fake = bin_dir / "docker"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.exit(1 if sys.argv[1:3] == ['network', 'inspect'] else 0)\n"  # no network yet: it is created
    )
    fake.chmod(0o755)
    (tmp_path / "run.sh").write_text(script)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HF_TOKEN": "<HF_TOKEN from the environment>",
        "VLLMTUNE_REDIS_PASSWORD": "<VLLMTUNE_REDIS_PASSWORD from the environment>",
        "HF_CACHE": str(tmp_path / "hf"),
    }
    r = subprocess.run(["bash", str(tmp_path / "run.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    runs = {}
    for line in log.read_text().splitlines():
        words = ["docker", *json.loads(line)]
        if words[:3] == ["docker", "run", "--detach"]:
            runs[words[words.index("--name") + 1]] = words
        if words[:3] == ["docker", "network", "create"]:
            runs["network " + words[-1]] = words
    return runs


os_environ_of_script = {
    "HF_TOKEN": "<HF_TOKEN from the environment>",
    "VLLMTUNE_REDIS_PASSWORD": "<VLLMTUNE_REDIS_PASSWORD from the environment>",
    "VLLM_API_KEY": "<VLLM_API_KEY from the environment>",
}


def _kwargs_from_words(words: list[str]) -> dict[str, object]:
    """`docker run` flags -> the Docker SDK arguments they mean."""
    out: dict[str, object] = {
        "labels": {},
        "environment": {},
        "tmpfs": {},
        "cap_drop": [],
        "security_opt": [],
        "read_only": False,
        "detach": True,
    }
    i = 3
    while words[i].startswith("-"):
        flag = words[i]
        if flag == "--read-only":
            out["read_only"] = True
            i += 1
            continue
        value = words[i + 1]
        i += 2
        if flag == "--label":
            k, v = value.split("=", 1)
            out["labels"][k] = v  # type: ignore[index]
        elif flag == "--env":
            k, _, v = value.partition("=")
            out["environment"][k] = v if _ else os_environ_of_script[k]  # type: ignore[index]
        elif flag == "--tmpfs":
            out["tmpfs"][value] = ""  # type: ignore[index]
        elif flag in ("--cap-drop", "--security-opt"):
            out[flag[2:].replace("-", "_")].append(value)  # type: ignore[attr-defined]
        elif flag == "--publish":
            bind, host_port, port = value.rsplit(":", 2)
            out["ports"] = {f"{port}/tcp": (bind, int(host_port))}
        elif flag == "--entrypoint":
            out["entrypoint"] = [value]
        elif flag == "--memory":
            out["mem_limit"] = value
        elif flag == "--restart":
            pass  # up applies it once the stack is ready (mark_ready)
        else:
            out[flag[2:]] = value  # --name, --network, --user
    out["image"] = words[i]
    out["command"] = words[i + 1 :]
    return out


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_up_starts_the_sidecars_the_script_runs(tmp_path: Path, backend: str) -> None:
    plan = _plan(tmp_path, f"prompt_cache: {{enabled: true, backend: {backend}}}\n")
    runs = _script_runs(render_docker(plan), tmp_path)
    assert set(runs) == {"stk", "network stk-net", *(plan.sidecar_name(sc.role) for sc in plan.sidecars)}
    net = runs["network stk-net"]
    assert dict(w.split("=", 1) for w in net[4:-1:2]) == network_labels(plan)  # as up creates it
    secrets = {s.name: f"<{s.name} from the environment>" for sc in plan.sidecars for s in sc.secret_env}
    for sc in plan.sidecars:
        c = sidecar_container(plan, sc)
        sdk = {**sidecar_run_kwargs(c, secrets), "image": c.image}
        assert sdk == _kwargs_from_words(runs[c.name]), c.name
    assert runs["stk"][runs["stk"].index("--network") + 1] == network_name(plan) == "stk-net"


def test_the_script_hardens_the_sidecars_as_kubernetes_does(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "prompt_cache: {enabled: true, backend: redis}\n")
    redis = _script_runs(render_docker(plan), tmp_path)["stk-redis"]
    assert redis[redis.index("--user") + 1] == "10001:10001"
    assert "--read-only" in redis
    assert redis[redis.index("--tmpfs") + 1] == "/data"
    assert redis[redis.index("--memory") + 1] == "1536m"
    # the password: an environment variable by name, never a value in argv
    assert redis[redis.index("--env") + 1] == "VLLMTUNE_REDIS_PASSWORD"


def test_a_changed_sidecar_is_a_change_of_the_launch(tmp_path: Path) -> None:
    old = plan_summary(_plan(tmp_path, "prompt_cache: {enabled: true}\n"), None)
    assert summary_changes(old, old) == []
    redis = plan_summary(_plan(tmp_path, "prompt_cache: {enabled: true, backend: redis}\n"), None)
    assert summary_changes(old, redis) == [
        "cache proxy args: --upstream http://{vllm}:{vllm_port} --host 0.0.0.0 --port 8080 --backend memory --ttl 86400 "
        "--max-temperature 0.1 -> --upstream http://{vllm}:{vllm_port} --host 0.0.0.0 --port 8080 --backend redis "
        "--ttl 86400 --max-temperature 0.1 --redis-url redis://{redis}:6379/0",
        "Redis: added",
    ]
    off = plan_summary(_plan(tmp_path, "prompt_cache: {enabled: false}\n"), None)
    assert "sidecars" not in off  # summaries of servers started without sidecars compare equal
    assert summary_changes(off, old) == ["cache proxy: added"]


def test_the_proxy_imports_no_cli_library() -> None:
    # The image holds vllmtune and h11/redis only: the proxy must not need the CLI's libraries.
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vllmtune.cache", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert not {"pydantic", "yaml", "typer", "rich", "jinja2", "docker", "click"} & imported
    assert {"vllmtune", "h11"} <= imported


def test_build_context_holds_the_installed_package(tmp_path: Path) -> None:
    from vllmtune.runtime.proxy_image import build_context

    included = build_context(tmp_path)
    assert included[0] == "vllmtune 0.1.0"
    assert [x.split()[0] for x in included[1:3]] == ["h11", "redis"]
    site = tmp_path / "site"
    assert (site / "vllmtune" / "cache" / "proxy.py").read_text() == (
        ROOT / "vllmtune" / "cache" / "proxy.py"
    ).read_text()
    assert (site / "h11" / "__init__.py").is_file() and (site / "redis" / "asyncio" / "__init__.py").is_file()
    assert not list(site.rglob("__pycache__"))
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert "ARG BASE=python:3.12-slim\n" in dockerfile
    assert 'ENTRYPOINT ["python3", "-m", "vllmtune.cache"]\n' in dockerfile
    assert "USER 10001\n" in dockerfile
    assert "pip" not in dockerfile.replace("pip)", "")  # nothing is installed while building


def test_the_dockerfile_ships_in_the_wheel(tmp_path: Path) -> None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vllmtune"]
    assert "cache/Dockerfile" in data
    assert (ROOT / "vllmtune" / "cache" / "Dockerfile").is_file()


def test_build_failures_say_what_to_do() -> None:
    from vllmtune.runtime.proxy_image import _build_failure

    no_python = 'OCI runtime create failed: exec: "python3": executable file not found in $PATH: unknown'
    assert _build_failure("t:1", "alpine:3", no_python) == (
        f"building the cache-proxy image t:1 failed: {no_python}\n"
        "the base image alpine:3 has no python3: build on one with python3 >= 3.10 (--base IMAGE)"
    )
    offline = "pull access denied for python, repository does not exist or may require 'docker login'"
    assert _build_failure("t:1", "python:3.12-slim", offline).endswith(
        "\nthe base image python:3.12-slim is not on this machine and could not be pulled: docker pull "
        "python:3.12-slim, or build on an image you have with python3 >= 3.10 (vllmtune cache build-image "
        "--base IMAGE; for vllmtune up: VLLMTUNE_CACHE_PROXY_BASE=IMAGE)"
    )
