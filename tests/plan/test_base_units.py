"""vllmtune.plan.base.host_path: the one "is this a local path" of plan and fit."""

from __future__ import annotations

from pathlib import Path

from vllmtune.plan.base import host_path


def test_a_hub_id_has_no_host_path() -> None:
    assert host_path("meta-llama/Llama-3.1-8B-Instruct", "/p/profile.yaml") is None


def test_a_relative_path_is_relative_to_the_profile_file(tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "p.yaml"
    assert host_path("./models/m", str(profile)) == str(tmp_path / "profiles" / "models" / "m")
    assert host_path("../m", str(profile)) == str(tmp_path / "m")


def test_an_absolute_path_stays_and_home_is_expanded(tmp_path: Path) -> None:
    assert host_path(str(tmp_path / "m"), "/elsewhere/p.yaml") == str(tmp_path / "m")
    assert host_path("~/models/m", "/elsewhere/p.yaml") == str(Path.home() / "models" / "m")


def test_a_preset_s_relative_path_is_relative_to_the_working_directory() -> None:
    assert host_path("./m", "preset:baseline") == str(Path.cwd() / "m")
