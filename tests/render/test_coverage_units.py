"""render.coverage called directly: warnings_for lists only the Reported fields whose ``when``
holds (a field of another target never warns), refuse_if_strict turns them into one error,
local_adapters spots a bind-mounted LoRA directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.errors import RenderError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.coverage import Coverage, Reported, local_adapters, refuse_if_strict, warnings_for


def test_warnings_for_names_each_reported_field_that_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:cpu-tiny")
    coverage: Coverage = {
        "model.id": "model.name",
        "deploy.docker.*": Reported("settings of the docker target"),
        "server.port": Reported("the chart picks the port", when=lambda p: p.port == 8000),
        "server.host": Reported("never for this plan", when=lambda p: False, mapped="host"),
    }
    assert warnings_for("kserve", coverage, plan) == (
        "preset:cpu-tiny: server.port: kserve cannot express it; the chart picks the port",
    )


def test_warnings_for_strips_the_wildcard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:cpu-tiny")
    coverage: Coverage = {"autoscaling.*": Reported("no autoscaler", when=lambda p: True)}
    assert warnings_for("llm-d", coverage, plan) == (
        "preset:cpu-tiny: autoscaling: llm-d cannot express it; no autoscaler",
    )


def test_reported_defaults() -> None:
    r = Reported("why")
    assert (r.reason, r.when, r.mapped) == ("why", None, "")


def test_refuse_if_strict_is_one_error_listing_every_field() -> None:
    with pytest.raises(RenderError) as exc:
        refuse_if_strict(
            "kserve", ("p.yaml: a: kserve cannot express it; x", "p.yaml: b: kserve cannot express it; y"), True
        )
    assert str(exc.value) == (
        "kserve: 2 profile field(s) cannot be expressed (--strict):\n"
        "  p.yaml: a: kserve cannot express it; x\n"
        "  p.yaml: b: kserve cannot express it; y\n"
        "hint: remove them from the profile, or render without --strict to get warnings instead"
    )


def test_refuse_if_strict_passes_without_strict_or_without_warnings() -> None:
    refuse_if_strict("kserve", ("w",), False)  # raises nothing
    refuse_if_strict("kserve", (), True)


def _lora_plan(tmp_path: Path, source: str) -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: cpu-tiny\nname: lo\nlora:\n  adapters: [{{name: sql, source: '{source}'}}]\n")
    return load_plan(str(p))


def test_local_adapters(tmp_path: Path) -> None:
    (tmp_path / "adapter").mkdir()
    assert local_adapters(_lora_plan(tmp_path, str(tmp_path / "adapter"))) is True
    assert local_adapters(_lora_plan(tmp_path, "yard1/llama-2-7b-sql-lora-test")) is False
