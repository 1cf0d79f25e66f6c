"""render.production_stack called directly: render_production_stack is the reviewed golden file
(production-stack's vllm-stack Helm values, headed by what it cannot express) and refuses a
multi-node plan; production_stack_warnings names each field it cannot carry."""

from __future__ import annotations

import pytest

from tests.conftest import GOLDEN, ROOT
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.coverage import LOCAL_MODEL
from vllmtune.render.production_stack import production_stack_warnings, render_production_stack

LADDER = "profiles/examples/cpu-ladder.yaml"


def _plan(source: str, monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan(source)


@pytest.mark.parametrize("stem", ["baseline", "all-levers", "cpu-ladder"])
def test_render_production_stack_is_the_golden_file(stem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = LADDER if stem == "cpu-ladder" else f"preset:{stem}"
    plan = _plan(source, monkeypatch)
    assert render_production_stack(plan) == (GOLDEN / "exports" / f"{stem}.production-stack.values.yaml").read_text()


def test_production_stack_warnings_of_a_plan_it_carries_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    assert production_stack_warnings(_plan("preset:baseline", monkeypatch)) == ()


def test_production_stack_warnings_local_model_and_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert production_stack_warnings(_plan(LADDER, monkeypatch)) == (
        f"{LADDER}: model.id: production-stack cannot express it; {LOCAL_MODEL}",
        f"{LADDER}: prompt_cache: production-stack cannot express it; "
        "the chart has no place for the prompt-cache proxy; deploy it beside the release (vllmtune render -t kubernetes renders it)",
        f"{LADDER}: quantization.checkpoint: production-stack cannot express it; {LOCAL_MODEL}",
    )
