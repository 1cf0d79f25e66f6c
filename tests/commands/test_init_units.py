"""commands.init's public names called directly: InitArgs as its command line parses (the
preset defaults to all-levers), and the profile text run() writes for it."""

from __future__ import annotations

import argparse
from typing import Any

from vllmtune.commands.init import InitArgs, run
from vllmtune.scaffold import new_profile
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_init_args_from_the_command_line() -> None:
    assert parse(InitArgs, ["my-llm"]) == InitArgs(name="my-llm", preset="all-levers")
    assert parse(InitArgs, ["my-llm", "-p", "awq"]) == InitArgs(name="my-llm", preset="awq")


def test_run_writes_the_preset_under_the_name() -> None:
    assert run(InitArgs(name="my-llm", preset="baseline")) == new_profile("my-llm", "baseline")
