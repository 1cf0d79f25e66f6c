"""Rendered vLLM argv checked by its real consumer: vLLM 0.32.0's own `vllm serve` parser
(and its engine-argument validation), from the CPU build in its own venv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import ROOT, require
from tests.render.test_golden import DOCKER_GOLDENS, SOURCES, vllm_argv_of_script
from tests.render.test_roundtrip_property import DOCKER_SHAPES, assert_shape, plan_of, profiles
from tests.support.hypothesis_profiles import examples
from tests.support.realvllm import parse_with_real_vllm, vllm_venv_python
from vllmtune.plan import load_plan

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module", autouse=True)
def venv() -> None:
    require(vllm_venv_python() is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")


def serve_args(plan: Any) -> list[str]:
    return plan.serve_argv()[2:]  # what follows `vllm serve`


def test_every_032_preset_and_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plans = [load_plan(s) for s in SOURCES]
    plans = [p for p in plans if p.vllm_version == "0.32.0"]
    assert len(plans) >= 6
    results = parse_with_real_vllm([serve_args(p) for p in plans])
    for plan, res in zip(plans, results, strict=True):
        assert res["ok"], f"{plan.name}: {res}"
    by_name = {p.name: r["namespace"] for p, r in zip(plans, results, strict=True)}
    ns = by_name["llama-8b-all-levers"]
    assert ns["enable_prefix_caching"] is True
    assert ns["max_num_batched_tokens"] == 8192
    assert ns["quantization"] == "awq_marlin"
    assert "draft_model" in str(ns["speculative_config"])
    assert by_name["llama-8b-baseline"]["enable_prefix_caching"] is False


def test_the_real_parser_rejects_what_vllmtune_refuses() -> None:
    # The catalog and the parser agree: a typo vllmtune catches is one vLLM would reject.
    [res] = parse_with_real_vllm([["m", "--enable-prefx-caching"]])
    assert not res["ok"]


def collect(shape: str) -> list[list[str]]:
    """vLLM 0.32.0 argv of generated profiles of one shape: valid by construction, none dropped."""
    collected: list[list[str]] = []

    @settings(max_examples=examples(40), suppress_health_check=list(HealthCheck))
    @given(doc=profiles(shape))
    def draw(doc: dict[str, Any]) -> None:
        doc["vllm"]["version"] = "0.32.0"
        plan = plan_of(doc)
        assert_shape(plan, doc, shape)
        collected.append(serve_args(plan))

    draw()
    return collected


def test_generated_profiles_with_hostile_strings_parse() -> None:
    argvs = {shape: collect(shape) for shape in DOCKER_SHAPES}
    assert {shape: len(a) for shape, a in argvs.items()} == dict.fromkeys(DOCKER_SHAPES, examples(40))
    every = [argv for a in argvs.values() for argv in a]
    results = parse_with_real_vllm(every)
    bad = [(argv, r) for argv, r in zip(every, results, strict=True) if not r["ok"]]
    assert bad == []


def test_every_032_golden_script_argv_parses(tmp_path: Path) -> None:
    # The committed files themselves (tests/golden/*.sh), run under bash with a recording docker:
    # what the container would get, given to vLLM 0.32.0's own parser.
    argvs = []
    for i, path in enumerate(DOCKER_GOLDENS):
        (tmp_path / str(i)).mkdir()
        image, argv = vllm_argv_of_script(path, tmp_path / str(i))
        if image.endswith(":v0.32.0"):
            argvs.append((path.name, argv))
    assert len(argvs) >= 6
    results = parse_with_real_vllm([a for _, a in argvs])
    assert [(name, r["ok"]) for (name, _), r in zip(argvs, results, strict=True)] == [(n, True) for n, _ in argvs]


def test_the_engine_levers_parse(tmp_path: Path) -> None:
    # parallelism, scheduling, compilation, sleep mode and runtime LoRA as 0.32.0's parser reads them
    path = tmp_path / "levers.yaml"
    path.write_text(
        "name: levers\nvllm: {version: '0.32.0'}\nmodel: {id: org/m}\nsleep_mode: true\n"
        "parallelism: {data: 2, expert: true, eplb: true}\n"
        "scheduling: {async: true, long_prefill_token_threshold: 1024, priority: true}\n"
        "compilation: {enforce_eager: false, cudagraph_capture_sizes: [1, 2, 4], performance_mode: throughput}\n"
        "lora: {runtime_updates: true}\nresources: {tensor_parallel_size: 2}\nkv_offload: {size: 8GiB}\n"
    )
    [res] = parse_with_real_vllm([serve_args(load_plan(str(path)))])
    assert res["ok"], res
    ns = res["namespace"]
    assert (ns["data_parallel_size"], ns["tensor_parallel_size"]) == (2, 2)
    assert (ns["enable_expert_parallel"], ns["enable_eplb"], ns["enable_sleep_mode"]) == (True, True, True)
    assert (ns["async_scheduling"], ns["long_prefill_token_threshold"], ns["scheduling_policy"]) == (
        True,
        1024,
        "priority",
    )
    assert (ns["enforce_eager"], ns["cudagraph_capture_sizes"], ns["performance_mode"]) == (
        False,
        [1, 2, 4],
        "throughput",
    )
    assert ns["enable_lora"] is True
    assert (ns["kv_offloading_backend"], ns["kv_offloading_size"]) == ("native", 8.0)


def test_kv_offload_lmcache_parses_as_the_in_process_connector(tmp_path: Path) -> None:
    # vLLM 0.32.0 reads the rendered --kv-transfer-config as LMCacheConnectorV1, not the
    # multi-process connector --kv-offloading-backend lmcache would select
    path = tmp_path / "lmcache.yaml"
    path.write_text(
        "name: lmcache\nvllm: {version: '0.32.0', image: my/vllm-lmcache}\nmodel: {id: org/m}\n"
        "resources: {tensor_parallel_size: 2}\nkv_offload: {backend: lmcache, size: 8GiB}\n"
    )
    [res] = parse_with_real_vllm([serve_args(load_plan(str(path)))])
    assert res["ok"], res
    ns = res["namespace"]
    config = ns["kv_transfer_config"]  # the KVTransferConfig, as str()
    assert config.startswith("KVTransferConfig(kv_connector='LMCacheConnectorV1', ")
    assert ", kv_role='kv_both', " in config and "kv_connector_extra_config={}" in config
    assert ns["kv_offloading_size"] is None  # no native tier beside it (its backend default is inert without a size)
