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


LMCACHE_PROFILE = (
    "name: p\nvllm: {version: '0.32.0', image: my/vllm-lmcache}\nmodel: {id: org/m}\n"
    "resources: {tensor_parallel_size: 2}\nkv_offload: {backend: lmcache, size: SIZE}\n"
)


def test_kv_offload_lmcache_is_the_charts_lmcache_config() -> None:
    # the chart's lmcacheConfig writes --kv-transfer-config and the CPU tier's env itself
    from tests.render.test_exporters import chart, helm_merge, schema_problems
    from tests.test_plan import plan_of
    from vllmtune.render.production_stack import values

    doc = values(plan_of(LMCACHE_PROFILE.replace("SIZE", "15GiB")))
    spec = doc["servingEngineSpec"]["modelSpec"][0]
    assert spec["lmcacheConfig"] == {"enabled": True, "cpuOffloadingBufferSize": 7.5}  # per rank, GiB
    assert spec["vllmConfig"]["extraArgs"] == ["--host", "0.0.0.0", "--port", "8000"]
    assert spec["env"] == [{"name": "LMCACHE_CHUNK_SIZE", "value": "256"}]
    schema, defaults = chart("production-stack")
    assert schema_problems(doc, schema) == []
    assert schema_problems(helm_merge(defaults, doc), schema) == []


def test_kv_offload_lmcache_below_one_gib_per_rank_keeps_its_env() -> None:
    # the chart skips its env when the size's integer part is 0 (`gt (int ...) 0`): vllmtune sets it
    from tests.test_plan import plan_of
    from vllmtune.render.production_stack import values

    spec = values(plan_of(LMCACHE_PROFILE.replace("SIZE", "1GiB")))["servingEngineSpec"]["modelSpec"][0]
    assert spec["lmcacheConfig"] == {"enabled": True}
    assert spec["env"] == [
        {"name": "LMCACHE_CHUNK_SIZE", "value": "256"},
        {"name": "LMCACHE_LOCAL_CPU", "value": "True"},
        {"name": "LMCACHE_MAX_LOCAL_CPU_SIZE", "value": "0.5"},
    ]


def test_kv_offload_native_stays_in_extra_args() -> None:
    from tests.test_plan import plan_of
    from vllmtune.render.production_stack import values

    plan = plan_of(LMCACHE_PROFILE.replace("backend: lmcache, ", "").replace("SIZE", "8GiB"))
    spec = values(plan)["servingEngineSpec"]["modelSpec"][0]
    assert "lmcacheConfig" not in spec
    assert spec["vllmConfig"]["extraArgs"] == [
        "--kv-offloading-backend", "native", "--kv-offloading-size", "8", "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
