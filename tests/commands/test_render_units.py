"""commands.render's public names called directly: RenderArgs as its command line parses, and
RenderResult from run(): the text for stdout, or the files it wrote (-o FILE, -o k8s/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from vllmtune.commands.render import RenderArgs, RenderResult, run
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_render_args_from_the_command_line() -> None:
    assert parse(RenderArgs, ["p.yaml"]) == RenderArgs(
        profile="p.yaml", target="docker", out=None, no_cache=False, strict=False
    )
    assert parse(RenderArgs, ["p.yaml", "-t", "kubernetes", "-o", "k8s/", "--no-cache", "--strict"]) == RenderArgs(
        profile="p.yaml", target="kubernetes", out="k8s/", no_cache=True, strict=True
    )


def test_render_result_text_for_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    golden = (ROOT / "tests" / "golden" / "cpu-tiny.compose.yaml").read_text()
    assert run(RenderArgs(profile="preset:cpu-tiny", target="compose", no_cache=True)) == RenderResult(
        warnings=[], text=golden, wrote=[]
    )


def test_render_result_files_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "compose.yaml"
    assert run(RenderArgs(profile="preset:cpu-tiny", target="compose", out=str(out), no_cache=True)) == RenderResult(
        warnings=[], text=None, wrote=[out]
    )
    assert out.read_text() == (ROOT / "tests" / "golden" / "cpu-tiny.compose.yaml").read_text()
    k8s = tmp_path / "k8s"
    result = run(RenderArgs(profile="preset:cpu-tiny", target="kubernetes", out=f"{k8s}/", no_cache=True))
    assert (result.warnings, result.text) == ([], None)
    assert sorted(result.wrote) == sorted(k8s.iterdir())
    assert len(result.wrote) > 1
