"""Ladder rung derivation (pure): cumulative levers, skipped and failed levers, --rungs."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from vllmtune.ladder.rungs import LadderError, configured, parse_rungs, rung_document
from vllmtune.plan import build_plan
from vllmtune.profile.loader import load_profile, validate_document
from vllmtune.profile.yamlio import dump_yaml, load_yaml

DOC = load_profile(str(ROOT / "profiles/examples/cpu-ladder.yaml")).located.value


def plan_of(doc: dict) -> object:  # type: ignore[type-arg]
    return build_plan(validate_document(load_yaml(dump_yaml(doc), "rung.yaml"), "rung.yaml"))


def test_baseline_turns_every_lever_off() -> None:
    base = rung_document(DOC, "baseline")
    assert base["prefix_caching"] is False
    assert base["prompt_cache"]["enabled"] is False
    assert {"batching", "quantization", "speculative", "extends"}.isdisjoint(base)
    assert plan_of(base).args == (
        "--model",
        "/models/tiny-llama",
        "--served-model-name",
        "tiny-llama",  # type: ignore[attr-defined]
        "--max-model-len",
        "2048",
        "--no-enable-prefix-caching",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    )


def test_rungs_are_cumulative_and_deployable() -> None:
    spec = rung_document(DOC, "speculative")
    assert spec["name"] == "tiny-ladder-speculative"
    assert spec["prompt_cache"]["enabled"] and spec["prefix_caching"] is True
    assert spec["quantization"] == {"method": "fp8"} and spec["speculative"]["method"] == "ngram"
    args = plan_of(spec).args  # type: ignore[attr-defined]
    assert "--enable-prefix-caching" in args and "--speculative-config" in args and "--quantization" in args
    prefix = rung_document(DOC, "prefix-caching")
    assert "batching" not in prefix and prefix["prompt_cache"]["enabled"]


def test_a_failed_lever_is_not_carried_on_and_unselected_rungs_stay_off() -> None:
    spec = rung_document(DOC, "speculative", failed=frozenset({"quantization"}))
    assert "quantization" not in spec and spec["speculative"]["method"] == "ngram"
    picked = rung_document(DOC, "speculative", selected=frozenset({"baseline", "prefix-caching", "speculative"}))
    assert picked["prompt_cache"]["enabled"] is False and "batching" not in picked and "quantization" not in picked


def test_unconfigured_levers_are_reported() -> None:
    base = load_profile("preset:baseline").located.value
    assert configured(base) == {
        "baseline": True,
        "prompt-cache": False,
        "prefix-caching": False,
        "batching": False,
        "quantization": False,
        "speculative": False,
    }


def test_parse_rungs() -> None:
    assert parse_rungs("prefix,spec") == ["prefix-caching", "speculative"]
    with pytest.raises(LadderError, match="unknown rung 'turbo'; choose from baseline, prompt-cache"):
        parse_rungs("turbo")


def test_ladder_table_costs_and_the_wrote_line() -> None:
    from vllmtune.cli.printers import ladder_wrote
    from vllmtune.ladder.table import ladder_table

    row = {
        "config": "baseline",
        "figures": {"e2e_p50_ms": {"value": 10.0, "ci95": [9.0, 11.0]}, "cost_ms_per_request": {"value": 4.0}},
        "tokens_per_call": 8.0,
        "relative_cost": 1.0,
        "usd_per_1k_requests": 0.0123,
        "usd_per_1m_output_tokens": 1.5,
    }
    lines = ladder_table([row])
    assert lines[0].endswith("| Relative cost | $/1k req | $/1M out tok | vs previous rung |")
    assert lines[2] == "| baseline | 10 [9, 11] | - | - | - | 8.0 | - | - | 4 | 1.00x | 0.0123 | 1.50 | - |"
    del row["usd_per_1k_requests"], row["usd_per_1m_output_tokens"]
    assert ladder_table([row])[0].endswith("| Relative cost | vs previous rung |")
    for out in ("ladder", "ladder/"):
        assert ladder_wrote(out) == "wrote ladder/report.md, ladder/ladder.json, ladder/ladder.png, ladder/rungs/*.yaml"
