"""runtime.docker_backend.DockerBackend called directly, with no daemon: a --gpus spelling is
refused before Docker is asked, an unreachable daemon is a whole DockerUnreachable, and the
logs call made of each tail value (the local backend's tests read the same values)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from vllmtune.errors import DockerUnreachable, LaunchError
from vllmtune.plan import load_plan
from vllmtune.runtime.docker_backend import DockerBackend


def test_preflight_refuses_a_bad_gpus_spelling_before_asking_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    monkeypatch.chdir(ROOT)
    with pytest.raises(LaunchError) as err:
        DockerBackend().preflight(load_plan("preset:cpu-tiny"), "device=0,,1")
    assert str(err.value) == "--gpus 'device=0,,1': use all, a count (2) or device ids (0,1)"


def test_an_unreachable_daemon_is_docker_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = f"unix://{tmp_path}/no-daemon.sock"
    monkeypatch.setenv("DOCKER_HOST", where)
    backend = DockerBackend()
    assert backend.name == "docker"
    with pytest.raises(DockerUnreachable) as err:
        backend.list()
    assert err.value.where == where
    assert str(err.value) == (
        f"cannot reach the Docker daemon at {where}: No such file or directory\n"
        "start it (sudo systemctl start docker, or dockerd) or point DOCKER_HOST at a running daemon; "
        "or use --runtime local"
    )


class _Container:
    """What logs() asks of a container: the Docker SDK's logs call, recorded."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def logs(self, **kwargs: Any) -> Iterator[bytes]:
        self.calls.append(kwargs)
        return iter([b"new1\nne", b"w2\n"])


def test_logs_asks_docker_for_the_tail_as_the_local_backend_reads_it() -> None:
    container = _Container()
    backend = DockerBackend()
    backend._container = lambda _name: container  # type: ignore[method-assign]
    for tail in (None, 1, 0):
        assert list(backend.logs("loc", follow=True, tail=tail)) == ["new1", "new2"]
    assert container.calls == [
        {"stream": True, "follow": True, "tail": "all"},
        {"stream": True, "follow": True, "tail": 1},
        {"stream": True, "follow": True, "tail": 0},  # none of the old lines, as `docker logs --tail 0`
    ]


def _ids(requests: list[Any]) -> list[Any]:
    return [(r["Count"], r["DeviceIDs"]) for r in requests]


def test_replica_device_requests_give_each_replica_its_own_gpus(tmp_path: Path) -> None:
    from vllmtune.runtime.docker_backend import replica_device_requests

    (tmp_path / "p.yaml").write_text(
        'name: r\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'
        "resources: {gpus: 2, tensor_parallel_size: 2}\nrouting: {}\ndeploy: {kubernetes: {replicas: 2}}\n"
    )
    plan = load_plan(str(tmp_path / "p.yaml"))
    for gpus in (None, "all"):  # the plan's: replica i gets GPUs 2i, 2i+1
        assert [_ids(replica_device_requests(gpus, plan, i)) for i in (0, 1)] == [
            [(0, ["0", "1"])],
            [(0, ["2", "3"])],
        ]
    # up --gpus with every id: split in order
    assert [_ids(replica_device_requests("device=4,5,6,7", plan, i)) for i in (0, 1)] == [
        [(0, ["4", "5"])],
        [(0, ["6", "7"])],
    ]
    assert replica_device_requests("0", plan, 1) == []
    with pytest.raises(LaunchError) as err:
        replica_device_requests("2", plan, 0)
    assert str(err.value) == (
        "--gpus '2': 2 replicas of 2 GPU(s) each need 4 device ids: give them all (--gpus 0,1,2,3), "
        "or --gpus all for the plan's (replica i: GPUs i*n .. i*n+n-1)"
    )


def test_one_server_takes_gpus_as_docker_run_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmtune.runtime.docker_backend import replica_device_requests

    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:cpu-tiny")
    assert replica_device_requests(None, plan, 0) == []  # a CPU plan
    assert _ids(replica_device_requests("2", plan, 0)) == [(2, [])]
    assert _ids(replica_device_requests("all", plan, 0)) == [(-1, [])]
