"""commands.explain's public names called directly: ExplainArgs, PresetsArgs, SchemaArgs and
FlagsArgs as their command lines parse (FlagsArgs: the vLLM version, --diff, the entrypoint's
two choices, --grep), and what presets() / explain() return for them."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from vllmtune.commands.explain import ExplainArgs, FlagsArgs, PresetsArgs, SchemaArgs, explain, presets, schema
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_args_from_the_command_line() -> None:
    assert parse(ExplainArgs, ["preset:awq"]) == ExplainArgs(profile="preset:awq")
    assert parse(PresetsArgs, []) == PresetsArgs()
    assert parse(SchemaArgs, []) == SchemaArgs()
    assert parse(FlagsArgs, []) == FlagsArgs(vllm="0.32.0", diff=None, entrypoint="serve", grep=None)
    assert parse(FlagsArgs, ["--vllm", "0.9.2", "--diff", "0.8.5", "--entrypoint", "api_server", "--grep", "lora"]) == (
        FlagsArgs(vllm="0.9.2", diff="0.8.5", entrypoint="api_server", grep="lora")
    )
    with pytest.raises(argparse.ArgumentError):
        parse(FlagsArgs, ["--entrypoint", "run"])


def test_the_commands_answer_for_their_args() -> None:
    assert explain(ExplainArgs(profile="preset:cpu-tiny")).name == "tiny-cpu"
    assert [r["name"] for r in presets(PresetsArgs())] == [
        "all-levers", "awq", "baseline", "cpu-tiny", "prefix-cache", "speculative",
    ]  # fmt: skip
    s = schema(SchemaArgs())
    assert (s["$schema"], s["title"], s["type"]) == (
        "https://json-schema.org/draft/2020-12/schema",
        "vllmtune profile",
        "object",
    )
