"""The lever table is declared once (vllmtune/levers.py); every vocabulary is derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.explain import BUYS
from vllmtune.ladder import rungs as ladder
from vllmtune.levers import LEVERS, lever
from vllmtune.profile.models import Profile

README = Path(__file__).resolve().parents[1] / "README.md"


def test_each_lever_is_a_profile_field_in_order() -> None:
    assert [lv.number for lv in LEVERS] == [1, 2, 3, 4, 5]
    for lv in LEVERS:
        assert lv.field in Profile.model_fields, lv.field


def test_readme_lever_table_names_each_lever_and_its_field() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| ") and "`" in line][:5]
    for lv, row in zip(LEVERS, rows, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == str(lv.number), row
        assert cells[2] == f"`{lv.field}`", row


def test_ladder_and_explain_read_the_table() -> None:
    assert ladder.RUNGS == ("baseline", "prompt-cache", "prefix-caching", "batching", "quantization", "speculative")
    assert ladder.TITLES["speculative"] == "+ speculative decoding"
    assert ladder.ALIASES["awq"] == "quantization"
    assert BUYS["2 prefix caching"] == "shared system prompts / RAG context skip prefill (TTFT -40..70%)"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, set()),
        ({"prompt_cache": {"enabled": False}, "prefix_caching": False}, set()),
        ({"prompt_cache": {"enabled": True}}, {"prompt-cache"}),
        ({"prefix_caching": None, "batching": {"max_num_seqs": None}}, set()),
        ({"batching": {"max_num_seqs": 8}}, {"batching"}),
        ({"quantization": {"kv_cache_dtype": "fp8"}}, {"quantization"}),
        ({"speculative": {"method": "ngram"}, "prefix_caching": True}, {"speculative", "prefix-caching"}),
    ],
)
def test_configured(doc: dict[str, object], expected: set[str]) -> None:
    assert {lv.key for lv in LEVERS if lv.configured(doc)} == expected


def test_lookup_by_any_name() -> None:
    assert lever("prefix-caching") is lever("2 prefix caching") is lever("prefix_caching")
    with pytest.raises(KeyError):
        lever("turbo")
