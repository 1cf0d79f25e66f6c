"""Hypothesis over the hostile alphabets (issue 16 item 2): line breaks of every kind, C0/C1
controls, DEL, NUL, lone surrogates where the input can hold them, and the pieces of every
expansion syntax ($(VAR), ${VAR}, $VAR, $$, backticks), leading dashes, long strings."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.render.hostile import Slot, compose_interpolate, string_slots
from tests.render.k8s_expand import expand
from tests.render.test_hostile_matrix import check_case
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render.compose import esc
from vllmtune.render.k8s import k8s_literal

CONTROLS = [chr(c) for c in [*range(0, 32), *range(0x7F, 0xA0)]] + ["\u2028", "\u2029", "\ufeff"]
PIECES = ["$(HF_TOKEN)", "$(", ")", "${VAR}", "${", "}", "$VAR", "$$", "$", "`", "-", "--", "'", '"', "\\", ": ", " #"]
ALPHABET = st.sampled_from(CONTROLS + list(string.ascii_letters[:6] + string.digits[:3] + "/.=_ ") + ["é", "字"])


def hostile_text(surrogates: bool = False) -> st.SearchStrategy[str]:
    chars = st.one_of(ALPHABET, st.sampled_from(["\ud800", "\udfff"])) if surrogates else ALPHABET
    piece = st.one_of(chars, st.sampled_from(PIECES), st.just("x" * 3000))
    return st.lists(piece, min_size=1, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(hostile_text())
def test_k8s_literal_survives_kubernetes_expansion(text: str) -> None:
    env = {"HF_TOKEN": "LEAKED", "VAR": "LEAKED"}
    assert expand(k8s_literal(text), env) == text


@settings(max_examples=300, deadline=None)
@given(hostile_text())
def test_compose_escape_survives_compose_interpolation(text: str) -> None:
    assert compose_interpolate(esc(text), {"HF_TOKEN": "LEAKED", "VAR": "LEAKED"}) == text


@settings(max_examples=300, deadline=None)
@given(hostile_text())
def test_the_yaml_dumper_round_trips(text: str) -> None:
    # (no lone surrogates here: the profile loader refuses them, test_hostile_matrix checks it)
    out = dump_yaml({"v": [text]})
    for loader in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        assert yaml.load(out.encode("utf-8"), Loader=loader) == {"v": [text]}


FREE = [s for s in string_slots() if not s.literal]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.sampled_from(FREE), suffix=hostile_text(), leading=st.sampled_from(["", "-", "--"]))
def test_any_hostile_value_in_any_slot(
    slot: Slot, suffix: str, leading: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    value = leading + slot.base + suffix
    base = tmp_path_factory.getbasetemp()
    outcome = check_case(slot, value, tmp_path_factory.mktemp("prop"), base / f"prop-harmless-{FREE.index(slot)}")
    event(outcome)


def test_the_alphabet_has_what_broke_things() -> None:
    for needed in ["\x00", "\r", "\n", "\x85", "\u2028", "\u2029", "\x7f", "\x9f", "\x01"]:
        assert needed in CONTROLS
    assert {"$(HF_TOKEN)", "${VAR}", "$$", "-"} <= set(PIECES)
