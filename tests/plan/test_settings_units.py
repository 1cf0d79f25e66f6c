"""vllmtune.plan.settings: a value left to vLLM is VLLM_DEFAULT, never None."""

from __future__ import annotations

from vllmtune.plan.settings import VLLM_DEFAULT, or_default, value_or


def test_or_default_maps_only_none_to_the_marker() -> None:
    assert or_default(None) is VLLM_DEFAULT
    assert or_default(0) == 0  # a falsy value the profile set is kept
    assert or_default(False) is False
    assert or_default("fp8") == "fp8"


def test_value_or_falls_back_only_for_the_marker() -> None:
    assert value_or(VLLM_DEFAULT, 0.9) == 0.9
    assert value_or(0.0, 0.9) == 0.0
    assert value_or(or_default(None), "auto") == "auto"
    assert value_or(or_default(4096), 2048) == 4096
