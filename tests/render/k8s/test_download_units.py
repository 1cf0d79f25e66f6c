"""render.k8s.download called directly: the downloads digest, the download Job (whole, against
the reviewed golden), and the init containers for each deploy.kubernetes.model_download mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.render.k8s._golden import golden_objects
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.k8s.base import DOWNLOAD_PY, escape_var_refs, harden
from vllmtune.render.k8s.download import download_job, downloads_digest, init_containers

SEVENTY_B = "profiles/examples/llama-70b-2x8.yaml"


@pytest.fixture
def seventy_b(monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan(SEVENTY_B)


def _mode(tmp_path: Path, mode: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: all-levers\nname: dl\ndeploy: {{kubernetes: {{model_download: {mode}}}}}\n")
    return load_plan(str(p))


def test_downloads_digest_names_the_golden_job(seventy_b: DeploymentPlan) -> None:
    digest = downloads_digest(seventy_b)
    assert digest == "99668f5da8"
    assert ("Job", f"llama-70b-download-{digest}") in golden_objects("llama-70b-2x8")


def test_downloads_digest_changes_with_what_is_downloaded(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: baseline\nname: dl\n")
    b.write_text("extends: baseline\nname: dl\nmodel: {id: org/other-model}\n")
    da, db = downloads_digest(load_plan(str(a))), downloads_digest(load_plan(str(b)))
    assert re.fullmatch(r"[0-9a-f]{10}", da) and re.fullmatch(r"[0-9a-f]{10}", db)
    assert da != db


def test_download_job_is_the_golden_job(seventy_b: DeploymentPlan) -> None:
    job = escape_var_refs(download_job(seventy_b))
    assert job == golden_objects("llama-70b-2x8")[("Job", "llama-70b-download-99668f5da8")]


def test_init_containers_job_mode_waits_for_the_marker(seventy_b: DeploymentPlan) -> None:
    golden = golden_objects("llama-70b-2x8")[("LeaderWorkerSet", "llama-70b-group")]
    leader_init = golden["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["initContainers"]
    assert escape_var_refs(init_containers(seventy_b)) == leader_init
    assert [c["name"] for c in leader_init] == ["wait-for-model"]


def test_init_containers_init_container_mode_downloads_in_the_pod(tmp_path: Path) -> None:
    plan = _mode(tmp_path, "init-container")
    expected = {
        "name": "download",
        "image": "vllm/vllm-openai:v0.32.0",
        "command": ["python3", "-c", DOWNLOAD_PY],
        "args": list(plan.downloads),
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "dl-secrets", "key": "hf-token"}}}],
        "volumeMounts": [{"name": "hf-cache", "mountPath": "/root/.cache/huggingface"}],
    }
    assert init_containers(plan) == [harden(expected, plan.k8s_download_hardening)]
    assert plan.downloads  # the all-levers model is downloaded


def test_init_containers_server_mode_has_none(tmp_path: Path) -> None:
    assert init_containers(_mode(tmp_path, "server")) == []
