"""ladder.args: the --workload help, like bench's, is derived from the built-in workloads
(bench.workloads.BUILTINS, declared once), so each of them is listed with what it exercises."""

from __future__ import annotations

import typer

from vllmtune.bench.workloads import BUILTINS, help_text
from vllmtune.cli import app


def _workload_help(command: str) -> str:
    root = typer.main.get_command(app)
    params = root.commands[command].params  # type: ignore[attr-defined]
    (option,) = [p for p in params if "--workload" in p.opts]
    return str(option.help)


def test_bench_and_ladder_workload_help_list_every_builtin() -> None:
    assert "rag" in BUILTINS
    listed = {command: [name for name in BUILTINS if f"{name}: {BUILTINS[name].help}" in _workload_help(command)]
              for command in ("bench", "ladder")}  # fmt: skip
    assert listed == {"bench": list(BUILTINS), "ladder": list(BUILTINS)}
    assert _workload_help("bench") == help_text()
    assert (
        _workload_help("ladder") == "mixed by default (shared prefixes + repeats: every lever has work). " + help_text()
    )
