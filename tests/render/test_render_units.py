"""vllmtune.render (the package) called directly: is_directory_output, render_files (one file,
or one file per Kubernetes object in a directory) and write_files (modes, parents, errors)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.errors import RenderError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import is_directory_output, render, render_files, write_files
from vllmtune.render.k8s import render_kubernetes_files


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan("preset:cpu-tiny")


def test_is_directory_output(tmp_path: Path) -> None:
    assert is_directory_output("k8s/") is True
    assert is_directory_output(f"out{os.sep}") is True
    assert is_directory_output(str(tmp_path)) is True  # an existing directory, no slash
    assert is_directory_output(str(tmp_path / "x.yaml")) is False


def test_render_files_one_file(plan: DeploymentPlan, tmp_path: Path) -> None:
    out = str(tmp_path / "a.k8s.yaml")
    assert render_files(plan, "k8s", out) == {Path(out): render(plan, "kubernetes")}


def test_render_files_one_file_per_object(plan: DeploymentPlan, tmp_path: Path) -> None:
    files = render_files(plan, "kubernetes", str(tmp_path))
    assert files == {tmp_path / name: text for name, text in render_kubernetes_files(plan).items()}


def test_render_files_directory_for_a_single_file_target(plan: DeploymentPlan) -> None:
    with pytest.raises(RenderError) as exc:
        render_files(plan, "docker-run", "out/")
    assert str(exc.value) == "out/: is a directory; give a file name for the docker target"


def test_write_files_modes_and_parents(tmp_path: Path) -> None:
    a, b = tmp_path / "new" / "a.yaml", tmp_path / "b.sh"
    write_files({a: "x: 1\n"})
    write_files({b: "#!/bin/sh\n"}, 0o755)
    assert (a.read_text(), stat.S_IMODE(a.stat().st_mode)) == ("x: 1\n", 0o644)
    assert (b.read_text(), stat.S_IMODE(b.stat().st_mode)) == ("#!/bin/sh\n", 0o755)


def test_write_files_error_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    target = tmp_path / "f" / "x.yaml"  # a parent that is a file
    with pytest.raises(RenderError) as exc:
        write_files({target: "x"})
    assert str(exc.value) == f"{target}: cannot write: File exists"  # mkdir of the parent
