"""Every preset and example, rendered for every target, byte for byte (golden files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.plan import load_plan
from vllmtune.profile.loader import preset_names
from vllmtune.render import render, targets_for

EXT = {"docker": "sh", "compose": "compose.yaml", "kubernetes": "k8s.yaml"}
EXAMPLES = sorted((ROOT / "profiles" / "examples").glob("*.yaml"))
SOURCES = [f"preset:{n}" for n in preset_names()] + [str(p.relative_to(ROOT)) for p in EXAMPLES]


def golden_name(source: str, target: str) -> str:
    stem = source.removeprefix("preset:") if source.startswith("preset:") else Path(source).stem
    return f"{stem}.{EXT[target]}"


def _pairs() -> list[tuple[str, str]]:
    # A multi-node profile renders for Kubernetes only (test_scaling checks the refusals).
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        return [(s, t) for s in SOURCES for t in targets_for(load_plan(s))]
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(("source", "target"), _pairs())
def test_render_matches_golden(source: str, target: str, golden, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    text = render(load_plan(source), target)
    assert text.endswith("\n")
    golden(golden_name(source, target), text)


@pytest.mark.parametrize("source", SOURCES)
def test_render_is_deterministic(source: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    for target in targets_for(load_plan(source)):
        assert render(load_plan(source), target) == render(load_plan(source), target)


def test_presets_are_the_documented_ones() -> None:
    assert preset_names() == ["all-levers", "awq", "baseline", "cpu-tiny", "prefix-cache", "speculative"]
