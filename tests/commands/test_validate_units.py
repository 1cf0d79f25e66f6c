"""commands.validate's public names called directly: ValidateArgs as its command line parses
(one or more profiles, --gpu), and ValidateResult from run(): one entry per file, each file
judged on its own, ok only when all are."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from vllmtune.commands.validate import ValidateArgs, ValidateResult, run
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_validate_args_from_the_command_line() -> None:
    assert parse(ValidateArgs, ["a.yaml"]) == ValidateArgs(profiles=["a.yaml"], gpu=None)
    assert parse(ValidateArgs, ["a.yaml", "b.yaml", "--gpu", "L4"]) == ValidateArgs(
        profiles=["a.yaml", "b.yaml"], gpu="L4"
    )
    with pytest.raises(SystemExit):
        parse(ValidateArgs, [])  # at least one profile


def test_validate_result_one_entry_per_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: Bad_Name\nvllm:\n  version: "0.32.0"\nmodel:\n  id: m\n')
    result = run(ValidateArgs(profiles=["preset:cpu-tiny", str(bad), str(tmp_path / "missing.yaml")]))
    assert isinstance(result, ValidateResult)
    good, wrong, missing = result.files
    assert (good["file"], good["ok"], good["name"], good["errors"]) == ("preset:cpu-tiny", True, "tiny-cpu", [])
    assert wrong == {
        "file": str(bad),
        "ok": False,
        "errors": [
            f"{bad}:1: name: \"Bad_Name\" is not valid (lowercase letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63)"
        ],
        "warnings": [],
    }
    assert missing == {
        "file": str(tmp_path / "missing.yaml"),
        "ok": False,
        "errors": [f"{tmp_path / 'missing.yaml'}: no such file"],
        "warnings": [],
    }
    assert result.ok is False
    assert run(ValidateArgs(profiles=["preset:cpu-tiny"])).ok is True
