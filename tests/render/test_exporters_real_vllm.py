"""The exported files read by their real consumer: vLLM 0.32.0's own `vllm serve` parser (CPU
build, its own venv). ``vllm serve --config FILE`` must yield the same engine arguments as the
plan's argv, and so must the command production-stack's chart writes from the values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GOLDEN, require
from tests.render.test_exporters import _pairs, chart_command, golden_name, load_export, plan_of
from tests.support.realvllm import parse_with_real_vllm, vllm_venv_python
from vllmtune.plan import Default
from vllmtune.render import export_warnings

pytestmark = pytest.mark.vllm

SOURCES_032 = sorted({s for s, _ in _pairs() if plan_of(s).vllm_version == "0.32.0"})


@pytest.fixture(scope="module", autouse=True)
def venv() -> None:
    require(vllm_venv_python() is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")


def engine_args(result: dict[str, Any]) -> dict[str, Any]:
    """The parsed namespace, without what says only how the model was given (positional
    ``model_tag`` or ``--model`` / ``model:``)."""
    assert result["ok"], result
    return {k: v for k, v in result["namespace"].items() if k != "model_tag"}


def test_every_032_export_yields_the_plans_engine_arguments(tmp_path: Path) -> None:
    assert len(SOURCES_032) >= 8
    config_files = [GOLDEN / golden_name(s, "vllm-config") for s in SOURCES_032]
    stack = [s for s in SOURCES_032 if (s, "production-stack") in _pairs()]
    argvs = (
        [list(plan_of(s).args) for s in SOURCES_032]
        + [["--config", str(path)] for path in config_files]
        + [chart_command(load_export(s, "production-stack"))[2:] for s in stack]
    )
    results = parse_with_real_vllm(argvs)
    n = len(SOURCES_032)
    want = {s: engine_args(r) for s, r in zip(SOURCES_032, results[:n], strict=True)}
    from_config = {s: engine_args(r) for s, r in zip(SOURCES_032, results[n : 2 * n], strict=True)}
    from_chart = {s: engine_args(r) for s, r in zip(stack, results[2 * n :], strict=True)}
    assert from_config == want
    # the one difference the chart makes, and it is reported: prefix caching left to vLLM is off there
    left = [s for s in stack if isinstance(plan_of(s).vllm.enable_prefix_caching, Default)]
    assert left == ["profiles/examples/moe-engine-levers.yaml", "profiles/examples/quantize-w4a16.yaml"]
    assert all(any(": prefix_caching: " in w for w in export_warnings(plan_of(s), "production-stack")) for s in left)
    assert from_chart == {s: {**want[s], "enable_prefix_caching": False} if s in left else want[s] for s in stack}
    # the comparison sees the settings themselves
    assert want["preset:baseline"]["enable_prefix_caching"] is False
    assert want["preset:all-levers"]["max_num_batched_tokens"] == 8192
    assert "draft_model" in str(from_config["preset:all-levers"]["speculative_config"])


def test_a_false_boolean_in_a_config_file_is_dropped_by_vllm_032(tmp_path: Path) -> None:
    # Why the file says `no-enable-prefix-caching: true`: vLLM 0.32 looks the --no- form up on
    # the top-level parser, which lacks it, and drops `enable-prefix-caching: false` silently.
    false_form = tmp_path / "false.yaml"
    false_form.write_text("model: org/m\nenable-prefix-caching: false\n", encoding="utf-8")
    no_form = tmp_path / "no.yaml"
    no_form.write_text("model: org/m\nno-enable-prefix-caching: true\n", encoding="utf-8")
    dropped, kept = parse_with_real_vllm([["--config", str(false_form)], ["--config", str(no_form)]])
    assert (engine_args(dropped)["enable_prefix_caching"], engine_args(kept)["enable_prefix_caching"]) == (
        None,
        False,
    )
