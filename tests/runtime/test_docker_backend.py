"""`vllmtune up/ps/logs/down` on a real Docker engine with a local stand-in image.

The image (tests/docker_image) is tagged vllm/vllm-openai:v0.32.0, takes the same argv as the
real one and serves /health and /v1/models; fault injection comes through server.env.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.cli import vt
from tests.support.dockerenv import docker_host, ensure_test_image, free_port
from tests.support.profiles import docker_profile as profile
from vllmtune.plan import load_plan

pytestmark = pytest.mark.docker
IMAGE = "vllm/vllm-openai:v0.32.0"


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    require(docker_host() is not None, "a Docker engine (DOCKER_HOST)")
    ensure_test_image(IMAGE)


def test_up_ps_logs_down_and_noop(tmp_path: Path, names: list[str]) -> None:
    p = profile(tmp_path, "vt-basic")
    names.append("vt-basic")
    port = free_port()
    r = vt("up", p, "-d", "--port", str(port), "--output", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["status"], data["endpoint"], data["model"]) == ("started", f"http://127.0.0.1:{port}/v1", "x")
    t = data["timings"]  # vllmtune's own share is what the server's start-up does not explain (no timing bound)
    assert t["vllmtune_overhead_s"] >= 0 and abs(t["total_s"] - t["server_start_s"] - t["vllmtune_overhead_s"]) < 0.01
    ps = json.loads(vt("ps", "--runtime", "docker", "--output", "json").stdout)
    [row] = [x for x in ps if x["name"] == "vt-basic"]
    assert (row["state"], row["health"], row["port"], row["served_name"]) == ("running", "healthy", port, "x")
    # labels tie the container to its profile
    labels = json.loads(
        subprocess.run(
            ["docker", "inspect", row["ident"], "--format", "{{json .Config.Labels}}"], capture_output=True, text=True
        ).stdout
    )
    assert labels["vllmtune.io/profile"] == "vt-basic"
    assert labels["vllmtune.io/profile-hash"] == load_plan(p).profile_hash  # the plan's, computed here
    assert "Starting vLLM API server" in vt("logs", "vt-basic").stdout
    # same profile again: a no-op
    again = json.loads(vt("up", p, "-d", "--port", str(port), "--output", "json").stdout)
    assert (again["status"], again["ident"]) == ("unchanged", data["ident"])
    r = vt("down", p)
    assert r.stdout == "vt-basic: stopped and removed (docker)\n"
    assert vt("down", p).stdout == "vt-basic: nothing to stop\n"  # a profile: idempotent
    gone = vt("down", "vt-basic", "--runtime", "docker")  # a name that matches nothing: an error
    assert (gone.returncode, gone.stdout) == (1, "")
    assert gone.stderr.startswith("error: no server named 'vt-basic' to stop")


def test_changed_profile_needs_replace(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-change")
    port = free_port()
    first = profile(tmp_path, "vt-change", "batching: {max_num_batched_tokens: 1024}\n")
    assert vt("up", first, "-d", "--port", str(port)).returncode == 0
    changed = profile(tmp_path, "vt-change", "prefix_caching: true\nbatching: {max_num_batched_tokens: 512}\n")
    r = vt("up", changed, "-d", "--port", str(port))
    assert r.returncode == 1
    # each changed flag in words, as diff and drift say it (issue 14: not "+512 -1024")
    assert r.stderr == (
        "error: vt-change is already running with a different launch:\n"
        "  max_num_batched_tokens: 1024 -> 512 (--max-num-batched-tokens)\n"
        "  enable_prefix_caching: (not set) -> on (--enable-prefix-caching)\n"
        "run again with --replace to replace it, or vllmtune down vt-change\n"
    )
    r = vt("up", changed, "-d", "--port", str(port), "--replace", "--output", "json")
    assert json.loads(r.stdout)["status"] == "replaced"


def test_crash_during_start_is_diagnosed_and_cleaned_up(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-crash")
    p = profile(
        tmp_path,
        "vt-crash",
        "server:\n  env:\n    FAKE_VLLM_CRASH: "
        "'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB'\n",
    )
    r = vt("up", p, "-d", "--port", str(free_port()))
    assert r.returncode == 1
    assert "error: the server exited during start-up\n" in r.stderr
    assert "  | ERROR" in r.stderr  # the log tail is shown
    assert r.stderr.endswith(
        "reason: CUDA out of memory\nfix: lower model.max_model_len or "
        "batching.max_num_seqs, raise resources.gpu_memory_utilization, use "
        "a quantized checkpoint, or add GPUs (tensor_parallel_size); run "
        "`vllmtune fit` to see what fits\n"
    )
    assert "Traceback" not in r.stderr
    assert all(x["name"] != "vt-crash" for x in json.loads(vt("ps", "--output", "json").stdout))


def test_keep_on_failure_and_timeout(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-sick")
    p = profile(tmp_path, "vt-sick", "server:\n  env:\n    FAKE_VLLM_NEVER_HEALTHY: '1'\n")
    r = vt("up", p, "-d", "--port", str(free_port()), "--timeout", "3", "--keep-on-failure")
    assert r.returncode == 1
    assert "\nerror: not ready after 3 s (last phase: loading weights); raise --timeout" in r.stderr
    [row] = [x for x in json.loads(vt("ps", "--output", "json").stdout) if x["name"] == "vt-sick"]
    assert row["health"] == "unhealthy (503)"


def test_gpus_without_nvidia_runtime(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-gpu")
    r = vt("up", profile(tmp_path, "vt-gpu", gpus=1), "-d", "--port", str(free_port()))
    assert r.returncode == 1
    assert r.stderr == (
        "error: GPUs were requested but Docker has no NVIDIA runtime (the engine said: could not "
        'select device driver "" with capabilities: [[gpu]]).\ninstall the NVIDIA Container '
        "Toolkit and restart Docker: https://docs.nvidia.com/datacenter/cloud-native/"
        "container-toolkit/latest/install-guide.html\nor run without GPUs (--gpus 0, a CPU build "
        "of vLLM) or with --runtime local\n"
    )
    assert (
        subprocess.run(["docker", "ps", "-aq", "--filter", "name=vt-gpu"], capture_output=True, text=True).stdout == ""
    )  # the created container is gone too
    # --gpus given explicitly, in docker's spellings
    for spec in ("all", "2", "0,1"):
        assert (
            "no NVIDIA runtime"
            in vt("up", profile(tmp_path, "vt-gpu"), "-d", "--gpus", spec, "--port", str(free_port())).stderr
        )


def test_port_in_use_names_the_holder(tmp_path: Path, names: list[str]) -> None:
    names += ["vt-a", "vt-b"]
    port = free_port()
    assert vt("up", profile(tmp_path, "vt-a"), "-d", "--port", str(port)).returncode == 0
    r = vt("up", profile(tmp_path, "vt-b"), "-d", "--port", str(port))
    assert (r.returncode, r.stderr) == (
        1,
        f"error: port {port} is already published by container "
        f"vt-a; stop it (docker rm -f vt-a) or choose another "
        "port (vllmtune up --port N)\n",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = vt("up", profile(tmp_path, "vt-b"), "-d", "--port", str(busy))
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: port {busy} is already in use by python")


def test_missing_image_and_secret(tmp_path: Path) -> None:
    p = profile(tmp_path, "vt-img").replace("", "")
    Path(p).write_text(Path(p).read_text().replace("{version: '0.32.0'}", "{version: '0.31.0', image: nosuch/vllm}"))
    r = vt("up", p, "-d", "--port", str(free_port()))
    assert r.returncode == 1
    pulling, error = r.stderr.split("\n", 1)
    assert pulling.startswith("vt-img: pulling nosuch/vllm:v0.31.0 (")  # the progress line says what takes time
    assert error.startswith("error: image nosuch/vllm:v0.31.0 is not on this machine and pulling it failed: ")
    s = profile(tmp_path, "vt-secret", "server:\n  hf_token: {env: VT_NOT_SET_TOKEN}\n")
    r = vt("up", s, "-d")
    assert (r.returncode, r.stderr) == (
        1,
        "error: server.hf_token refers to $VT_NOT_SET_TOKEN, "
        "which is not set: export VT_NOT_SET_TOKEN=... and run "
        "again\n",
    )


def test_secret_reaches_the_container_but_not_the_labels(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-key")
    port = free_port()
    p = profile(tmp_path, "vt-key", "server:\n  api_key: {env: VT_KEY}\n")
    r = vt("up", p, "-d", "--port", str(port), env={"VT_KEY": "s3cret"})
    assert r.returncode == 0, r.stderr
    inspect = subprocess.run(["docker", "inspect", "vt-key"], capture_output=True, text=True).stdout
    config = json.loads(inspect)[0]["Config"]
    assert "VLLM_API_KEY=s3cret" in config["Env"]
    assert "s3cret" not in json.dumps(config["Labels"])


def _container_ids(name: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=vllmtune.io/profile={name}"], capture_output=True, text=True
    ).stdout.strip()


def _wait_for(predicate, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_while_waiting_removes_the_container(tmp_path: Path, names: list[str]) -> None:
    import signal

    names.append("vt-slow")
    p = profile(tmp_path, "vt-slow", "server:\n  env:\n    FAKE_VLLM_STARTUP_DELAY: '60'\n")
    proc = vt.popen("up", p, "-d", "--port", str(free_port()))
    assert _wait_for(lambda: _container_ids("vt-slow") != "")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    # What it does while it cleans up, then the one-word verdict.
    lines = err.splitlines()
    assert lines[-1] == "interrupted"
    assert lines[-2].startswith("vt-slow: interrupted: stopping and removing the container ("), (
        err
    )  # the server, by name
    assert _container_ids("vt-slow") == ""


def test_foreground_streams_logs_until_ctrl_c(tmp_path: Path, names: list[str]) -> None:
    import signal

    from tests.support.dockerenv import wait_for_http

    names.append("vt-fg")
    port = free_port()
    proc = vt.popen("up", profile(tmp_path, "vt-fg"), "--port", str(port))
    assert wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
    assert _wait_for(lambda: _container_ids("vt-fg") != "")
    import time

    time.sleep(1.0)  # let `up` switch to streaming
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "streaming logs; Ctrl-C stops the server" in out
    assert "Starting vLLM API server" in out
    assert proc.returncode == 130
    assert "stopping vt-fg ..." in err
    assert _container_ids("vt-fg") == ""


def test_drift_against_the_running_container(tmp_path: Path, names: list[str]) -> None:
    names.append("vt-drift")
    port = free_port()
    p = profile(tmp_path, "vt-drift")
    assert vt("up", p, "-d", "--port", str(port)).returncode == 0
    r = vt("drift", p, "--runtime", "docker")
    assert (r.returncode, r.stdout) == (0, "docker container vt-drift: no drift\n")
    edited = profile(tmp_path, "vt-drift", "prefix_caching: true\nserver:\n  env: {LOG_LEVEL: debug}\n")
    r = vt("drift", edited, "--runtime", "docker", "--output", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["drift"] == [
        "enable_prefix_caching: running (not set), profile on (--enable-prefix-caching)",
        "env LOG_LEVEL: running None, profile 'debug'",
    ]
