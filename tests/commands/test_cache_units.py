"""commands.cache's public names called directly: StatsArgs and BuildImageArgs as their command
lines parse."""

from __future__ import annotations

import argparse
from typing import Any

from vllmtune.commands.cache import BuildImageArgs, StatsArgs
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_stats_args_from_the_command_line() -> None:
    assert parse(StatsArgs, []) == StatsArgs(url="http://127.0.0.1:8080")
    assert parse(StatsArgs, ["--url", "http://proxy:9000"]) == StatsArgs(url="http://proxy:9000")


def test_build_image_args_from_the_command_line() -> None:
    assert parse(BuildImageArgs, []) == BuildImageArgs(tag=None, base=None, push=False)
    argv = ["--tag", "reg.example/cache-proxy:1", "--base", "python:3.12-slim", "--push"]
    assert parse(BuildImageArgs, argv) == BuildImageArgs(
        tag="reg.example/cache-proxy:1", base="python:3.12-slim", push=True
    )
