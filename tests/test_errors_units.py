"""vllmtune.errors: a located Problem's text, and the errors of bench, drift and diff."""

from __future__ import annotations

import pytest

from vllmtune.errors import BenchError, DiffError, DriftError, Problem, VllmtuneError


def test_problem_is_file_line_key_path_message() -> None:
    p = Problem("p.yaml", 12, "resources.gpus", "must be at least 0")
    assert str(p) == "p.yaml:12: resources.gpus: must be at least 0"


def test_problem_without_a_line_or_a_key_path() -> None:
    assert str(Problem("preset:baseline", None, "model.id", "required")) == "preset:baseline: model.id: required"
    assert str(Problem("p.yaml", 3, "", "not a mapping")) == "p.yaml:3: not a mapping"


def test_problem_cannot_add_lines_to_the_terminal() -> None:
    p = Problem("p.yaml", 1, "name", "invalid name 'a\nb\x1b[2J'")
    assert str(p) == "p.yaml:1: name: invalid name 'a\\nb\\x1b[2J'"


@pytest.mark.parametrize("cls", [BenchError, DriftError, DiffError])
def test_command_errors_are_user_errors_with_exit_1_and_a_hint(cls: type[VllmtuneError]) -> None:
    err = cls("no server answers at http://127.0.0.1:8000", hint="start one with vllmtune up")
    assert isinstance(err, VllmtuneError)
    assert err.exit_code == 1
    assert str(err) == "no server answers at http://127.0.0.1:8000; start one with vllmtune up"
    assert (err.message, err.hint) == ("no server answers at http://127.0.0.1:8000", "start one with vllmtune up")
    assert str(cls("x.json: cannot read")) == "x.json: cannot read"
