"""commands.diff's public names called directly: DiffArgs, RenderCheckArgs and DriftArgs as
their command lines parse, and render_check over a render map ({profile, target, output} entries,
paths relative to the map): stale outputs found, then rewritten with fix, then up to date."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from vllmtune.commands.diff import DiffArgs, DriftArgs, RenderCheckArgs, render_check
from vllmtune.errors import DiffError
from vllmtune.util.argspec import add_arguments, from_namespace

PROFILE = 'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n'


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_args_from_the_command_line() -> None:
    assert parse(DiffArgs, ["a.yaml", "b.yaml"]) == DiffArgs(a="a.yaml", b="b.yaml", against=None, target=None)
    assert parse(DiffArgs, ["a.yaml", "--against", "k8s/", "-t", "kubernetes"]) == DiffArgs(
        a="a.yaml", b=None, against="k8s/", target="kubernetes"
    )
    assert parse(RenderCheckArgs, []) == RenderCheckArgs(map_file=".vllmtune-render.yaml", fix=False)
    assert parse(RenderCheckArgs, ["--map", "m.yaml", "--fix"]) == RenderCheckArgs(map_file="m.yaml", fix=True)
    assert parse(DriftArgs, ["p.yaml"]) == DriftArgs(profile="p.yaml", k8s=None, runtime=None)
    assert parse(DriftArgs, ["p.yaml", "--k8s", "dump.yaml", "-r", "docker"]) == DriftArgs(
        profile="p.yaml", k8s="dump.yaml", runtime="docker"
    )


def test_render_check_finds_fixes_then_passes(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "llm.yaml").write_text(PROFILE)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yaml").write_text("services: {}\n")
    map_file = tmp_path / "render.yaml"
    map_file.write_text("- {profile: profiles/llm.yaml, target: compose, output: deploy/compose.yaml}\n")
    stale = [str(tmp_path / "deploy" / "compose.yaml")]
    row = {"profile": "profiles/llm.yaml", "target": "compose", "output": "deploy/compose.yaml"}
    assert render_check(RenderCheckArgs(map_file=str(map_file))) == [{**row, "stale": stale, "fixed": False}]
    assert render_check(RenderCheckArgs(map_file=str(map_file), fix=True)) == [{**row, "stale": stale, "fixed": True}]
    assert render_check(RenderCheckArgs(map_file=str(map_file))) == [{**row, "stale": [], "fixed": False}]


def test_render_check_refuses_a_map_that_is_not_a_list_of_entries(tmp_path: Path) -> None:
    map_file = tmp_path / "render.yaml"
    map_file.write_text("profile: p.yaml\n")
    with pytest.raises(DiffError) as e:
        render_check(RenderCheckArgs(map_file=str(map_file)))
    assert str(e.value) == f"{map_file}: expected a list of {{profile, target, output}} entries"
