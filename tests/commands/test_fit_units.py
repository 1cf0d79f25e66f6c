"""commands.fit's public names called directly: FitArgs as its command line parses."""

from __future__ import annotations

import argparse
from typing import Any

from vllmtune.commands.fit import FitArgs
from vllmtune.util.argspec import add_arguments, from_namespace


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_fit_args_from_the_command_line() -> None:
    assert parse(FitArgs, ["p.yaml"]) == FitArgs(
        profile="p.yaml", gpu=None, gpu_memory=None, from_log=None, suggest=False
    )
    argv = ["p.yaml", "--gpu", "L4", "--gpu-memory", "23.58GiB", "--from-log", "vllm.log", "--suggest"]
    assert parse(FitArgs, argv) == FitArgs(
        profile="p.yaml", gpu="L4", gpu_memory="23.58GiB", from_log="vllm.log", suggest=True
    )
