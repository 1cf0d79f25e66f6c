"""`vllmtune up` with the prompt cache on a real Docker engine: the whole stack the renderers
describe -- a user-defined network, vLLM (the stand-in image, tests/docker_image), the REAL
cache-proxy image built from this checkout on an offline Debian base, and Redis (the Debian
redis-server standing in for the plan's redis image; scripts/setup_proxy_base.sh)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.cli import Cli
from tests.support.dockerenv import (
    PROXY_BASE_IMAGE,
    ensure_proxy_image,
    free_port,
    require_engine_and_base,
)
from tests.support.profiles import docker_profile, prompt_cache
from vllmtune import __version__

pytestmark = [pytest.mark.docker, pytest.mark.slow]
PROXY_IMAGE = f"vllmtune/cache-proxy:{__version__}"


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    require_engine_and_base()
    ensure_proxy_image(PROXY_IMAGE)


vt = Cli(timeout=180)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60).stdout


def profile(tmp_path: Path, name: str, cache: str, extra: str = "") -> tuple[str, int]:
    """A profile with the prompt cache on; returns (path, the proxy's port)."""
    proxy_port = free_port()
    return docker_profile(tmp_path, name, prompt_cache(proxy_port, cache) + extra), proxy_port


def parts_of(name: str) -> list[str]:
    """Names of every container labelled with the profile (all parts, any state)."""
    out = docker("ps", "-a", "--filter", f"label=vllmtune.io/profile={name}", "--format", "{{.Names}}")
    return sorted(out.split())


def networks_of(name: str) -> list[str]:
    return docker("network", "ls", "--filter", f"label=vllmtune.io/profile={name}", "--format", "{{.Name}}").split()


def completion(endpoint: str) -> tuple[str, dict[str, object]]:
    """One deterministic completion: (X-Cache, body)."""
    req = urllib.request.Request(
        endpoint + "/completions",
        data=json.dumps({"model": "x", "prompt": "hello", "max_tokens": 5, "temperature": 0}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers.get("X-Cache", ""), json.loads(resp.read())


def _wait_for(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_memory_stack_up_hit_ps_down(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-stack")
    p, proxy_port = profile(tmp_path, "vt-stack", "backend: memory")
    port = free_port()
    r = vt("up", p, "-d", "--port", str(port))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("vt-stack: ready in ")
    assert r.stdout.splitlines()[0].endswith(
        f": http://127.0.0.1:{proxy_port}/v1 (model x, docker {r.stdout.split('docker ')[1][:12]})"
    )
    assert r.stdout.splitlines()[1] == f"  through the prompt-cache proxy; vLLM itself: http://127.0.0.1:{port}/v1"
    phases = [line.split(" (", 1)[0] for line in r.stderr.splitlines()]
    assert phases[-3:] == ["vt-stack: ready", "vt-stack: starting cache proxy", "vt-stack: cache proxy ready"]

    # the printed endpoint is the proxy: a deterministic request twice, the second from the cache
    endpoint = f"http://127.0.0.1:{proxy_port}/v1"
    first, body1 = completion(endpoint)
    second, body2 = completion(endpoint)
    assert (first, second) == ("MISS", "HIT")
    assert body2 == {**body1, "cached": True}  # the same answer, marked as served from the cache
    assert body1["choices"][0]["text"] == "Hello from fake vLLM."  # type: ignore[index]

    # ps: one server, its parts
    [row] = [
        x for x in json.loads(vt("ps", "--runtime", "docker", "--output", "json").stdout) if x["name"] == "vt-stack"
    ]
    assert (row["state"], row["health"], row["port"]) == ("running", "healthy", port)
    assert [(x["role"], x["name"], x["state"], x["port"]) for x in row["parts"]] == [
        ("server", "vt-stack", "running", port),
        ("cache", "vt-stack-cache", "running", proxy_port),
    ]
    text = vt("ps", "--runtime", "docker").stdout.splitlines()
    i = next(i for i, line in enumerate(text) if line.startswith("vt-stack "))
    assert text[i + 1 : i + 3] == [
        f"  server  vt-stack        running  port {port}",
        f"  cache   vt-stack-cache  running  port {proxy_port}",
    ]
    # labelled as the rendered script labels them; hardened as it hardens them
    inspect = json.loads(docker("inspect", "vt-stack-cache"))[0]
    assert inspect["Config"]["Labels"]["app.kubernetes.io/component"] == "cache"
    assert inspect["Config"]["Labels"]["vllmtune.io/profile"] == "vt-stack"
    assert inspect["Config"]["User"] == "10001:10001"
    host = inspect["HostConfig"]
    assert (host["ReadonlyRootfs"], host["CapDrop"], host["SecurityOpt"], host["Memory"]) == (
        True,
        ["ALL"],
        ["no-new-privileges"],
        512 << 20,
    )
    assert list(host["Tmpfs"]) == ["/tmp"]
    assert set(inspect["NetworkSettings"]["Networks"]) == {"vt-stack-net"}
    assert host["RestartPolicy"]["Name"] == "unless-stopped"  # applied once the stack is ready
    assert "vllmtune cache: http://0.0.0.0:" in vt("logs", "vt-stack-cache").stdout  # a part's log by name

    again = vt("up", p, "-d", "--port", str(port), "--output", "json")
    data = json.loads(again.stdout)
    assert (data["status"], data["endpoint"], data["vllm_endpoint"]) == (
        "unchanged",
        f"http://127.0.0.1:{proxy_port}/v1",
        f"http://127.0.0.1:{port}/v1",
    )
    changed, _ = profile(tmp_path, "vt-stack", "backend: memory, ttl: 1h")
    r = vt("up", changed, "-d", "--port", str(port))
    assert r.returncode == 1
    assert r.stderr.startswith("error: vt-stack is already running with a different launch:\n  cache proxy args: ")
    assert r.stderr.endswith("\nrun again with --replace to replace it, or vllmtune down vt-stack\n")

    assert vt("down", "vt-stack").stdout == "vt-stack: stopped and removed (docker)\n"
    assert parts_of("vt-stack") == []
    assert networks_of("vt-stack") == []


def test_redis_stack_and_the_password_stays_in_the_environment(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-redis")
    p, proxy_port = profile(tmp_path, "vt-redis", "backend: redis")
    port = free_port()
    r = vt("up", p, "-d", "--port", str(port), "--output", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --output json: no progress lines
    data = json.loads(r.stdout)
    assert data["endpoint"] == f"http://127.0.0.1:{proxy_port}/v1"
    assert [completion(data["endpoint"])[0] for _ in range(2)] == ["MISS", "HIT"]
    # the answer is in Redis (not only the proxy's in-process L1)
    size = docker("exec", "vt-redis-redis", "sh", "-c", 'REDISCLI_AUTH="$VLLMTUNE_REDIS_PASSWORD" redis-cli dbsize')
    assert int(size) >= 1
    assert docker("exec", "vt-redis-redis", "redis-cli", "ping").strip().startswith("NOAUTH")  # no password, no entry

    env = dict(e.split("=", 1) for e in json.loads(docker("inspect", "vt-redis-redis"))[0]["Config"]["Env"])
    password = env["VLLMTUNE_REDIS_PASSWORD"]
    assert len(password) >= 24  # generated for this launch (secrets module)
    proxy_env = json.loads(docker("inspect", "vt-redis-cache"))[0]["Config"]["Env"]
    assert f"VLLMTUNE_REDIS_PASSWORD={password}" in proxy_env  # the proxy authenticates with it
    server_env = json.loads(docker("inspect", "vt-redis"))[0]["Config"]["Env"]
    assert not any(e.startswith("VLLMTUNE_REDIS_PASSWORD=") for e in server_env)  # vLLM never sees it
    for name in parts_of("vt-redis"):
        c = json.loads(docker("inspect", name))[0]
        assert password not in json.dumps([c["Args"], c["Path"], c["Config"]["Cmd"], c["Config"]["Labels"]])
    assert password not in vt("ps").stdout + vt("ps", "--output", "json").stdout
    assert password not in docker("ps", "-a", "--no-trunc")
    assert password not in vt("logs", "vt-redis-redis").stdout + vt("logs", "vt-redis-cache").stdout
    assert [x["role"] for x in json.loads(vt("ps", "--output", "json").stdout)[0]["parts"]] == [
        "server",
        "cache",
        "redis",
    ]
    assert vt("down", p).stdout == "vt-redis: stopped and removed (docker)\n"
    assert (parts_of("vt-redis"), networks_of("vt-redis")) == ([], [])

    # the user's own password, when set, is the one both use
    r = vt("up", p, "-d", "--port", str(port), env={"VLLMTUNE_REDIS_PASSWORD": "mine-0123456789"})
    assert r.returncode == 0, r.stderr
    env = dict(e.split("=", 1) for e in json.loads(docker("inspect", "vt-redis-redis"))[0]["Config"]["Env"])
    assert env["VLLMTUNE_REDIS_PASSWORD"] == "mine-0123456789"
    assert completion(f"http://127.0.0.1:{proxy_port}/v1")[0] == "MISS"  # a fresh Redis


def test_a_failing_part_removes_everything(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-fail")
    crash = "server:\n  env:\n    FAKE_VLLM_CRASH: 'RuntimeError: engine core failed'\n"
    p, _ = profile(tmp_path, "vt-fail", "backend: redis", crash)
    r = vt("up", p, "-d", "--port", str(free_port()))
    assert r.returncode == 1
    assert "error: the server exited during start-up\n" in r.stderr
    assert (parts_of("vt-fail"), networks_of("vt-fail")) == ([], [])  # Redis and the network too

    # the proxy part's image is not the proxy (it serves, but not /cache/stats): all go, at once
    p, proxy_port = profile(tmp_path, "vt-fail", "backend: redis")
    t0 = time.monotonic()
    r = vt("up", p, "-d", "--port", str(free_port()), "--cache-image", "vllmtune-test/fake-vllm:latest")
    assert r.returncode == 1
    assert (
        f"error: http://127.0.0.1:{proxy_port}/cache/stats answers 404: what runs there is not the cache proxy "
        "(check its image)\n"
    ) in r.stderr
    # the part's own log is shown (its start-up lines; the 404's access-log line may not be
    # flushed yet when the log is read, so it is not asserted)
    assert "  | INFO:     Uvicorn running on http://0.0.0.0:" in r.stderr
    assert time.monotonic() - t0 < 30
    assert (parts_of("vt-fail"), networks_of("vt-fail")) == ([], [])

    # a proxy that exits: its log is shown, the rest removed
    p, _ = profile(tmp_path, "vt-fail", "backend: redis, max_temperature: 0.1")
    r = vt("up", p, "-d", "--port", str(free_port()), "--cache-image", PROXY_BASE_IMAGE)
    assert r.returncode == 1
    assert "error: docker could not start vt-fail-cache (vllmtune-test/debian-python:bookworm): " in r.stderr
    assert (parts_of("vt-fail"), networks_of("vt-fail")) == ([], [])


def test_ctrl_c_removes_every_part(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-intr")
    slow = "server:\n  env:\n    FAKE_VLLM_STARTUP_DELAY: '60'\n"
    p, _ = profile(tmp_path, "vt-intr", "backend: redis", slow)
    proc = vt.popen("up", p, "-d", "--port", str(free_port()))
    assert _wait_for(lambda: parts_of("vt-intr") == ["vt-intr", "vt-intr-redis"])
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130
    lines = err.splitlines()
    assert lines[-1] == "interrupted"
    assert lines[-2].startswith(
        "vt-intr: interrupted: stopping and removing the containers (vLLM, cache proxy, Redis) "
        "and the network vt-intr-net ("
    ), err
    assert (parts_of("vt-intr"), networks_of("vt-intr")) == ([], [])


def test_up_builds_the_missing_proxy_image(tmp_path: Path, names: list[str]) -> None:
    # No registry has vllmtune/cache-proxy: `up` builds it from the installed package.
    names.append("vt-build")
    subprocess.run(["docker", "rmi", PROXY_IMAGE], capture_output=True, timeout=60)
    try:
        p, proxy_port = profile(tmp_path, "vt-build", "backend: memory")
        r = vt("up", p, "-d", "--port", str(free_port()), env={"VLLMTUNE_CACHE_PROXY_BASE": PROXY_BASE_IMAGE})
        assert r.returncode == 0, r.stderr
        lines = [line.rsplit(" (", 1)[0] for line in r.stderr.splitlines()]
        assert lines[0] == (
            f"vt-build: {PROXY_IMAGE} is not on this machine (no registry has it): building it from the installed package"
        )
        assert lines[1].startswith(
            f"vt-build: building {PROXY_IMAGE} on {PROXY_BASE_IMAGE} from the installed vllmtune"
        )
        assert f"vt-build: building {PROXY_IMAGE}: step 4/11: COPY site/ /opt/vllmtune/" in lines
        assert any(line.startswith(f"vt-build: built {PROXY_IMAGE} (") for line in r.stderr.splitlines())
        assert completion(f"http://127.0.0.1:{proxy_port}/v1")[0] == "MISS"
    finally:
        ensure_proxy_image(PROXY_IMAGE, force=True)  # whatever happened above, the next test has the image


def test_build_image_offline(tmp_path: Path) -> None:
    tag = "vllmtune-test/cache-proxy:build-test"
    try:
        r = vt("cache", "build-image", "--tag", tag, "--base", PROXY_BASE_IMAGE)
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{tag}\n"
        lines = r.stderr.splitlines()
        assert lines[0].startswith(
            f"building {tag} on {PROXY_BASE_IMAGE} from the installed vllmtune {__version__}, h11 "
        )
        assert lines[-1].startswith(f"built {tag} (")
        cfg = json.loads(docker("image", "inspect", tag))[0]["Config"]
        assert (cfg["User"], cfg["Entrypoint"]) == ("10001", ["python3", "-m", "vllmtune.cache"])
        # what the image holds: vllmtune and the proxy's pure-Python libraries, nothing of the CLI's
        listing = docker("run", "--rm", "--entrypoint", "ls", tag, "/opt/vllmtune").split()
        assert "vllmtune" in listing and "h11" in listing and "redis" in listing
        assert not {"pydantic", "yaml", "typer", "rich", "jinja2", "docker"} & set(listing)
        help_text = docker("run", "--rm", tag, "--help")
        assert help_text.startswith("usage: python -m vllmtune.cache")
        # a base that cannot run the proxy (the busybox stand-in: its python3 only answers the
        # compose healthcheck) fails at the build's own check, with the reason, not a traceback
        bad = vt("cache", "build-image", "--tag", tag + "-bad", "--base", "vllmtune-test/fake-vllm:latest")
        assert bad.returncode == 1
        assert f"\nerror: building the cache-proxy image {tag}-bad failed: The command " in bad.stderr
        assert bad.stderr.endswith(
            "returned a non-zero code: 2\nthe base image vllmtune-test/fake-vllm:latest cannot run the proxy: "
            "use one with python3 >= 3.10 (--base IMAGE)\n"
        )
        assert "Traceback" not in bad.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", tag, tag + "-bad"], capture_output=True, timeout=60)


def test_the_rendered_script_runs_the_same_stack(tmp_path: Path) -> None:
    # issue 16 item 7: the docker script, run by bash on the real engine, with the same images
    p, proxy_port = profile(tmp_path, "vt-script", "backend: redis", f"server: {{port: {free_port()}}}\n")
    script = tmp_path / "run.sh"
    r = vt("render", p, "-t", "docker", "-o", str(script))
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "HF_CACHE": str(tmp_path / "hf"), "VLLMTUNE_REDIS_PASSWORD": "script-pw-0123456789"}
    try:
        run = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr
        assert parts_of("vt-script") == ["vt-script", "vt-script-cache", "vt-script-redis"]
        assert networks_of("vt-script") == ["vt-script-net"]  # labelled as up labels it
        assert _wait_for(lambda: _answers(f"http://127.0.0.1:{proxy_port}/cache/stats"))
        endpoint = f"http://127.0.0.1:{proxy_port}/v1"
        assert _wait_for(lambda: _answers(endpoint + "/models"))
        assert [completion(endpoint)[0] for _ in range(2)] == ["MISS", "HIT"]
        redis = json.loads(docker("inspect", "vt-script-redis"))[0]
        assert (redis["Config"]["User"], redis["HostConfig"]["ReadonlyRootfs"]) == ("10001:10001", True)
        assert "script-pw-0123456789" not in json.dumps(redis["Args"])
        # what the script started, `vllmtune down` removes (the same labels)
        assert vt("down", "vt-script", "--runtime", "docker").returncode == 0
        assert (parts_of("vt-script"), networks_of("vt-script")) == ([], [])
    finally:
        subprocess.run(["docker", "rm", "-f", "vt-script", "vt-script-cache", "vt-script-redis"], capture_output=True)
        subprocess.run(["docker", "network", "rm", "vt-script-net"], capture_output=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_the_rendered_compose_file_runs_on_compose_v1(tmp_path: Path) -> None:
    # docker-compose 1.29 (what Debian 12 ships) up on the rendered file: healthchecks gate the
    # proxy on vLLM and Redis (depends_on: service_healthy), and the proxy answers from Redis.
    require(shutil.which("docker-compose") is not None, "docker-compose (Compose v1; scripts/setup_system.sh)")
    p, proxy_port = profile(tmp_path, "vt-compose", "backend: redis", f"server: {{port: {free_port()}}}\n")
    compose = tmp_path / "compose.yaml"
    r = vt("render", p, "-t", "compose", "-o", str(compose))
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "VLLMTUNE_REDIS_PASSWORD": "compose-pw-0123456789"}
    cmd = ["docker-compose", "-p", "vt-compose", "-f", str(compose)]
    try:
        run = subprocess.run([*cmd, "up", "-d"], capture_output=True, text=True, env=env, timeout=180)
        assert run.returncode == 0, run.stderr
        endpoint = f"http://127.0.0.1:{proxy_port}/v1"
        assert _wait_for(lambda: _answers(f"http://127.0.0.1:{proxy_port}/cache/stats"), timeout=60)
        assert [completion(endpoint)[0] for _ in range(2)] == ["MISS", "HIT"]
        size = docker(
            "exec", "vt-compose_redis_1", "sh", "-c", 'REDISCLI_AUTH="$VLLMTUNE_REDIS_PASSWORD" redis-cli dbsize'
        )
        assert int(size) >= 1
    finally:
        subprocess.run([*cmd, "down", "-v"], capture_output=True, env=env, timeout=120)
    assert parts_of("vt-compose") == []
