"""render.k8s (the package) called directly: render_kubernetes_files names one file per object
(kind-name.yaml) and each file holds that golden object."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from tests.render.k8s._golden import golden_objects
from vllmtune.plan import load_plan
from vllmtune.render.k8s import render_kubernetes_files


def test_render_kubernetes_files_one_file_per_golden_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    files = render_kubernetes_files(load_plan("profiles/examples/llama-70b-2x8.yaml"))
    assert list(files) == [
        "persistentvolumeclaim-llama-70b-hf-cache.yaml",
        "job-llama-70b-download-99668f5da8.yaml",
        "leaderworkerset-llama-70b-group.yaml",
        "service-llama-70b.yaml",
        "scaledobject-llama-70b.yaml",
        "podmonitor-llama-70b.yaml",
        "configmap-llama-70b-dashboard.yaml",
    ]
    golden = list(golden_objects("llama-70b-2x8").values())
    assert [yaml.safe_load(text) for text in files.values()] == golden
