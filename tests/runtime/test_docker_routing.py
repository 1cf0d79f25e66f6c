"""`vllmtune up --runtime docker` with a router in front of two replicas, on a real Docker engine:
two vLLM containers (the stand-in image, tests/docker_image) on their own ports, the REAL
vllm-router 0.1.17 (its installed wheel copied onto the offline Debian base:
tests/support/dockerenv.ensure_router_image) listing both, round-robin spreading requests over
them, ``ps`` showing one stack of three parts and ``down`` removing them all."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.dockerenv import (
    ensure_router_image,
    free_port,
    require_engine_and_base,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

vt = Cli(timeout=240)


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    require_engine_and_base()
    ensure_router_image()


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60).stdout


def completions_seen(container: str) -> int:
    """How many completions a stand-in server answered (its access log lines)."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
    return len(re.findall(r'"POST /v1/completions HTTP/1.1" 200', logs.stdout + logs.stderr))


def test_two_replicas_behind_the_real_router(tmp_path: Path, names: list[str]) -> None:
    name = "vt-route"
    names.append(name)
    port, router_port = free_port(), free_port()
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(
        f"name: {name}\nvllm: {{version: '0.32.0'}}\nmodel: {{id: org/model-x, served_name: x}}\n"
        f"resources: {{gpus: 0}}\nrouting: {{policy: round_robin, port: {router_port}}}\n"
        f"deploy: {{docker: {{hf_cache: {tmp_path / 'hf'}}}, kubernetes: {{replicas: 2}}}}\n"
    )
    # up --port P: the replicas on P and P+1, the router's workers follow (never the profile's 8000)
    r = vt("up", str(profile), "-d", "--port", str(port))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(
        f": http://127.0.0.1:{router_port}/v1 (model x, docker {r.stdout.split('docker ')[1][:12]})"
    )
    phases = [line.split(" (", 1)[0] for line in r.stderr.splitlines()]
    assert f"{name}: starting replica 2 of 2" in phases
    assert f"{name}: waiting for replica {name}-2" in phases
    assert phases[-2:] == [f"{name}: starting router", f"{name}: router ready"]

    inspect = {c["Name"].lstrip("/"): c for c in json.loads(docker("inspect", name, f"{name}-2", f"{name}-router"))}
    published = {n: inspect[n]["HostConfig"]["PortBindings"][f"{port}/tcp"][0]["HostPort"] for n in (name, f"{name}-2")}
    assert published == {name: str(port), f"{name}-2": str(port + 1)}
    assert inspect[f"{name}-router"]["Args"][-3:] == [
        "--worker-urls",
        f"http://{name}:{port}",
        f"http://{name}-2:{port}",
    ]
    assert inspect[f"{name}-2"]["Config"]["Labels"]["vllmtune.io/replica"] == "2"

    for _ in range(4):  # through the router: round_robin gives each replica two
        req = urllib.request.Request(
            f"http://127.0.0.1:{router_port}/v1/completions",
            data=json.dumps({"model": "x", "prompt": "hello", "max_tokens": 5}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["choices"][0]["text"] == "Hello from fake vLLM."
    assert (completions_seen(name), completions_seen(f"{name}-2")) == (2, 2)

    # ps: one stack (not one per replica), its three parts
    rows = [x for x in json.loads(vt("ps", "--runtime", "docker", "--output", "json").stdout) if x["name"] == name]
    assert [(p["role"], p["name"], p["state"]) for p in rows[0]["parts"]] == [
        ("server", name, "running"),
        ("server", f"{name}-2", "running"),
        ("router", f"{name}-router", "running"),
    ] and len(rows) == 1

    assert vt("down", name, "--runtime", "docker").returncode == 0
    assert docker("ps", "-a", "--filter", f"label=vllmtune.io/profile={name}", "--format", "{{.Names}}").split() == []
