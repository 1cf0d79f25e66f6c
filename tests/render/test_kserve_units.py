"""render.kserve called directly: render_kserve is the reviewed golden file (a KServe
LLMInferenceService, headed by what it cannot express) and refuses a multi-node plan;
kserve_warnings names each field it cannot carry."""

from __future__ import annotations

import pytest

from tests.conftest import GOLDEN, ROOT
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.coverage import LOCAL_MODEL
from vllmtune.render.kserve import kserve_warnings, render_kserve

LADDER = "profiles/examples/cpu-ladder.yaml"


def _plan(source: str, monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan(source)


@pytest.mark.parametrize("stem", ["baseline", "all-levers", "cpu-ladder"])
def test_render_kserve_is_the_golden_file(stem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = LADDER if stem == "cpu-ladder" else f"preset:{stem}"
    plan = _plan(source, monkeypatch)
    assert render_kserve(plan) == (GOLDEN / "exports" / f"{stem}.kserve.yaml").read_text()


def test_kserve_warnings_of_a_plan_it_carries_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kserve_warnings(_plan("preset:baseline", monkeypatch)) == ()


def test_kserve_warnings_local_model_and_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kserve_warnings(_plan(LADDER, monkeypatch)) == (
        f"{LADDER}: model.id: kserve cannot express it; {LOCAL_MODEL}",
        f"{LADDER}: prompt_cache: kserve cannot express it; "
        "an LLMInferenceService has no place for the prompt-cache proxy; deploy it beside (vllmtune render -t kubernetes renders it)",
        f"{LADDER}: quantization.checkpoint: kserve cannot express it; {LOCAL_MODEL}",
    )
