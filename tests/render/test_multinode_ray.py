"""The multi-node start-up scripts run for REAL: the leader and worker commands of a rendered
LeaderWorkerSet (taken from the rendered YAML, not from the Python constants) form a two-node
Ray cluster on this machine, and each fails with its message when its peer never comes.

The Ray venv comes from scripts/setup_ray.sh. When this user may create namespaces (root),
everything runs in a private network + PID namespace whose only interface is lo: the Ray
nodes then pick 127.0.0.1 as their address and bind nothing else, and killing the
namespace's init ends every process the scripts daemonized. Otherwise they run on the host
network and the test ends them by id (the processes carrying this test's RAY_TMPDIR).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.render.k8s_expand import as_run
from tests.support.dockerenv import free_port
from vllmtune.plan import load_plan
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render import render

pytestmark = pytest.mark.slow

_REAL_HOME = os.environ.get("VLLMTUNE_REAL_HOME", os.path.expanduser("~"))
RAY_VENV = Path(os.environ.get("VLLMTUNE_RAY_VENV", f"{_REAL_HOME}/.cache/vllmtune/ray-venv"))
WAITING = "vllmtune: 1 of 2 nodes in the Ray cluster"

PROFILE = {
    "name": "two-nodes",
    "vllm": {"version": "0.32.0"},
    "model": {"id": "Qwen/Qwen2.5-0.5B-Instruct"},
    "resources": {"gpus": 1, "nodes": 2, "tensor_parallel_size": 1, "pipeline_parallel_size": 2},
    "deploy": {"kubernetes": {"pvc": {"access_mode": "ReadWriteMany"}}},
}

# Runs in place of `vllm serve` (the leader's args): what vLLM's Ray executor would see.
PROOF_PY = """\
import json, os, ray
ray.init(address="auto", logging_level="ERROR")
nodes = [
    {"ip": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0),
     "head": "node:__internal_head__" in n["Resources"]}
    for n in ray.nodes() if n["Alive"]
]
ppid = os.getppid()  # 0 when the parent is outside this PID namespace
parent = open(f"/proc/{ppid}/comm").read().strip() if ppid else ""
print("cluster: " + json.dumps({"alive": len(nodes), "nodes": nodes, "parent": parent}), flush=True)
"""


# PID 1 of the private namespace: reaps the daemons `ray start` leaves behind as they exit
# (a zombie would keep `ray stop` waiting for it).
REAPER_PY = """\
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.2)


class RayMachine:
    """Runs commands where the Ray nodes of one test live, and ends them all afterwards."""

    def __init__(self) -> None:
        # Short: Ray puts Unix sockets under it (108-byte limit), so not under pytest's tmp_path.
        self.dir = Path(tempfile.mkdtemp(prefix="vt-ray-", dir="/tmp"))
        (self.dir / "home").mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.holder: subprocess.Popen[bytes] | None = None
        self.init_pid = 0
        self.prefix: list[str] = []
        self._enter_namespace()

    @property
    def isolated(self) -> bool:
        """True when the nodes run in the private loopback-only namespace."""
        return self.holder is not None

    def _enter_namespace(self) -> None:
        if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
            return
        holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child"]
            + ["sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable, REAPER_PY],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and holder.poll() is None:
            pids = children.read_text().split() if children.exists() else []
            # The namespace's init becomes the reaper once lo is up.
            if pids and Path(f"/proc/{pids[0]}/comm").read_text().startswith("python"):
                self.holder, self.init_pid = holder, int(pids[0])
                self.prefix = ["nsenter", f"--target={self.init_pid}", "--net", "--pid", "--mount", "--"]
                return
            time.sleep(0.05)
        holder.kill()  # not allowed here (e.g. a container without CAP_SYS_ADMIN): host network
        holder.wait(timeout=10)

    def env(self, container: dict[str, Any], **overrides: str) -> dict[str, str]:
        """This machine's environment with the rendered container's env on top (the pod's
        own IP standing for status.podIP), then the test's overrides."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            PATH=f"{RAY_VENV}/bin:{os.environ['PATH']}",
            HOME=str(self.dir / "home"),
            RAY_TMPDIR=str(self.dir),
            # Two object stores on a 24 GB machine shared with real vLLM runs: keep them small.
            RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION="0.01",
        )
        for var in container["env"]:
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                assert var["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}, var
                env[var["name"]] = "127.0.0.1"
        env.update(overrides)
        return env

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start argv (stdout/stderr to NAME.out/NAME.err) in its own process group."""
        with open(self.dir / f"{name}.out", "wb") as out, open(self.dir / f"{name}.err", "wb") as err:
            proc = subprocess.Popen(
                self.prefix + argv,
                env=env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def output(self, name: str) -> tuple[str, str]:
        """(stdout, stderr) of a started command so far."""
        out, err = ((self.dir / f"{name}.{s}").read_text(errors="replace") for s in ("out", "err"))
        return out, err

    def close(self) -> None:
        """Stop Ray and every process the scripts started; each step bounded."""
        if self.holder is not None:
            try:  # scoped to the namespace: it sees only the processes started in it
                subprocess.run(
                    [*self.prefix, str(RAY_VENV / "bin/ray"), "stop", "--force"],
                    env=self.env({"env": []}),
                    capture_output=True,
                    timeout=60,
                )
            except subprocess.TimeoutExpired:
                pass
            # PID 1 of the namespace: when it dies the kernel kills everything left inside.
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.holder.wait(timeout=10)
        else:
            # On the host `ray stop` would stop every Ray of the machine: end only the daemons
            # of this test, recognised by their RAY_TMPDIR.
            mark = f"RAY_TMPDIR={self.dir}".encode()
            for _ in range(3):
                pids = [p for p in _pids() if mark in _environ(p).split(b"\0")]
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if not pids:
                    break
                time.sleep(1)
        for proc in self.procs:  # what is left of the commands themselves (nsenter, bash)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


@pytest.fixture
def machine() -> Iterator[RayMachine]:
    require((RAY_VENV / "bin/ray").exists(), f"the Ray venv {RAY_VENV} (scripts/setup_ray.sh)")
    m = RayMachine()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def containers(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(leader container, worker container) of the rendered LeaderWorkerSet."""
    path = tmp_path / "two-nodes.yaml"
    path.write_text(dump_yaml(PROFILE), encoding="utf-8")
    plan = load_plan(str(path))
    assert plan.multi_node is not None
    docs = [d for d in yaml.safe_load_all(render(plan, "kubernetes")) if d]
    [lws] = [d for d in docs if d["kind"] == "LeaderWorkerSet"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    [leader] = [as_run(c) for c in template["leaderTemplate"]["spec"]["containers"]]
    [worker] = [as_run(c) for c in template["workerTemplate"]["spec"]["containers"]]
    # What the pods would run: the leader's command execs its args, vLLM on Ray.
    assert leader["command"][:2] == ["bash", "-c"] and leader["command"][3:] == ["vllmtune-leader"]
    assert leader["args"][:2] == ["vllm", "serve"]
    assert leader["args"][leader["args"].index("--distributed-executor-backend") + 1] == "ray"
    assert worker["command"][:2] == ["bash", "-c"] and worker["command"][3:] == ["vllmtune-worker"]
    assert "args" not in worker
    for c in (leader, worker):
        values = {v["name"]: v.get("value") for v in c["env"]}
        assert values["VLLMTUNE_NODES"] == "2"
        assert values["VLLMTUNE_RAY_PORT"] == str(plan.multi_node.ray_port)  # the test picks a free one
        assert values["VLLMTUNE_RAY_WAIT_SECONDS"] == str(plan.multi_node.ray_wait_seconds)  # and a short one
    return leader, worker


def _proof_argv() -> list[str]:
    return [str(RAY_VENV / "bin/python"), "-c", PROOF_PY]


def test_leader_waits_for_the_worker_then_execs_on_a_two_node_cluster(
    machine: RayMachine, containers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    leader_c, worker_c = containers
    port = str(free_port())
    t0 = time.monotonic()
    leader = machine.start(
        "leader",
        leader_c["command"] + _proof_argv(),
        machine.env(leader_c, VLLMTUNE_RAY_PORT=port, VLLMTUNE_RAY_WAIT_SECONDS="90"),
    )

    def leader_waiting() -> bool:
        assert leader.poll() is None, f"the leader exited alone: {machine.output('leader')}"
        return WAITING in machine.output("leader")[0]

    # The worker pod starts later than the leader: only once the leader reported waiting.
    wait_until(leader_waiting, 120, "the leader's first waiting line")
    t_worker = time.monotonic()
    worker = machine.start(
        "worker",
        worker_c["command"],
        machine.env(worker_c, VLLMTUNE_RAY_PORT=port, VLLMTUNE_RAY_WAIT_SECONDS="90", LWS_LEADER_ADDRESS="127.0.0.1"),
    )
    try:
        rc = leader.wait(timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the leader did not finish: {machine.output('leader')} worker: {machine.output('worker')}")
    t_done = time.monotonic()
    out, err = machine.output("leader")
    assert rc == 0, (out, err, machine.output("worker"))
    assert "Usage stats collection is disabled" in out  # --disable-usage-stats reached `ray start`

    lines = out.splitlines()
    assert lines[-1].startswith("cluster: "), out
    waiting = [line for line in lines if line.startswith("vllmtune:")]
    assert waiting and set(waiting) == {WAITING}, out
    assert lines.index(waiting[-1]) < len(lines) - 1

    cluster = json.loads(lines[-1].removeprefix("cluster: "))
    assert cluster["alive"] == 2, cluster
    assert sorted(n["head"] for n in cluster["nodes"]) == [False, True]
    assert all(n["cpus"] > 0 for n in cluster["nodes"]), cluster
    assert cluster["parent"] != "bash"  # exec'd: the script's shell is gone
    # The worker stays a Ray node: `ray start --block` does not return.
    assert worker.poll() is None, machine.output("worker")
    print(
        f"\nRay cluster of 2 nodes ({'private loopback namespace' if machine.isolated else 'host network'}): "
        f"leader start -> worker start {t_worker - t0:.1f}s, worker start -> cluster seen by the exec'd "
        f"command {t_done - t_worker:.1f}s, leader start -> done {t_done - t0:.1f}s, "
        f"{len(waiting)} waiting line(s)"
    )
    # Which address the nodes picked is only known in the loopback-only namespace: without one
    # the rest is proven and this check is a skip (a failure under VLLMTUNE_REQUIRE_REAL=1).
    require(machine.isolated, "a private network namespace for the Ray nodes (root with unshare, nsenter, ip)")
    assert {n["ip"] for n in cluster["nodes"]} == {"127.0.0.1"}, cluster


def test_leader_alone_gives_up_at_its_deadline(
    machine: RayMachine, containers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    leader_c, _ = containers
    leader = machine.start(
        "leader",
        leader_c["command"] + _proof_argv(),
        machine.env(leader_c, VLLMTUNE_RAY_PORT=str(free_port()), VLLMTUNE_RAY_WAIT_SECONDS="6"),
    )
    rc = leader.wait(timeout=120)
    out, err = machine.output("leader")
    assert rc == 1, (out, err)
    assert err.splitlines()[-1] == "vllmtune: 1 of 2 nodes joined the Ray cluster in 6s"
    waiting = [line for line in out.splitlines() if line.startswith("vllmtune:")]
    assert waiting and set(waiting) == {WAITING}, out
    assert "cluster: " not in out  # vLLM never started


def test_worker_alone_gives_up_at_its_deadline(
    machine: RayMachine, containers: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, worker_c = containers
    port = str(free_port())
    t0 = time.monotonic()
    worker = machine.start(
        "worker",
        worker_c["command"],
        machine.env(worker_c, VLLMTUNE_RAY_PORT=port, VLLMTUNE_RAY_WAIT_SECONDS="6", LWS_LEADER_ADDRESS="127.0.0.1"),
    )
    rc = worker.wait(timeout=120)
    elapsed = time.monotonic() - t0
    out, err = machine.output("worker")
    assert rc == 1, (out, err)
    assert (out, err) == ("", f"vllmtune: the Ray head 127.0.0.1:{port} did not answer in 6s\n")
    # One probe of an absent head blocks ~40s: the deadline must still hold.
    assert elapsed < 6 + 10, f"the worker gave up after {elapsed:.0f}s"
