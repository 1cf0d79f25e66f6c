"""cli.fast's public names called directly: fast_run runs a plain `render` / `validate` without
typer (its exit code, what it prints) and returns None for everything typer must handle: other
commands, --help, a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmtune.cli.fast import fast_run


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["explain", "preset:cpu-tiny"],
        ["render", "--help"],
        ["validate", "-h"],
        ["render"],  # no profile: typer prints the usage error
        ["render", "p.yaml", "--bogus"],
        ["validate", "p.yaml", "--output", "yaml"],
    ],
)
def test_fast_run_leaves_it_to_typer(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert fast_run(argv) is None
    assert capsys.readouterr() == ("", "")


def test_fast_run_render(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert fast_run(["render", "preset:cpu-tiny", "-t", "compose", "--no-cache"]) == 0
    assert capsys.readouterr() == ((ROOT / "tests" / "golden" / "cpu-tiny.compose.yaml").read_text(), "")


def test_fast_run_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fast_run(["validate", "preset:cpu-tiny"]) == 0
    assert capsys.readouterr() == ("ok: preset:cpu-tiny (tiny-cpu, vLLM 0.32.0, tiny-llama)\n", "")
    missing = str(tmp_path / "missing.yaml")
    assert fast_run(["validate", "preset:cpu-tiny", missing, "--output", "text"]) == 1
    assert capsys.readouterr() == (
        "ok: preset:cpu-tiny (tiny-cpu, vLLM 0.32.0, tiny-llama)\n",
        f"{missing}: no such file\n",
    )
