"""``render`` and ``validate`` without typer: argparse generated from the same ``Args``
declarations as the typer commands (:mod:`vllmtune.util.argspec`).

They run in loops and pre-commit hooks, and typer's parameter machinery costs more than
rendering. Anything this does not handle (``--help``, a usage error) returns None and falls
back to typer, which owns help and error messages.
"""

from __future__ import annotations

import argparse
from typing import Any

# command -> (module of its Args and run(), the Args class's name)
FAST = {
    "render": ("vllmtune.commands.render", "RenderArgs"),
    "validate": ("vllmtune.commands.validate", "ValidateArgs"),
}


class _Fallback(Exception):
    """Not for the fast path: let typer handle it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Fallback(message)


def parser(command: str) -> tuple[argparse.ArgumentParser, Any]:
    """The fast path's parser for ``command`` and its Args class."""
    import importlib

    from vllmtune.util.argspec import add_arguments

    module, name = FAST[command]
    cls = getattr(importlib.import_module(module), name)
    ap = _Parser(prog=f"vllmtune {command}", add_help=False)
    add_arguments(ap, cls)
    if command == "validate":  # the printers' option, as vllmtune.cli.typed adds it
        from vllmtune.cli.printers import OUTPUT_CHOICES, OUTPUT_FLAG

        ap.add_argument(OUTPUT_FLAG, dest="output", choices=OUTPUT_CHOICES, default="text")
    return ap, cls


def fast_run(argv: list[str]) -> int | None:
    """Run ``render`` / ``validate`` if argv is a plain invocation of one; None means "use typer"."""
    if not argv or argv[0] not in FAST or any(a in ("--help", "-h") for a in argv[1:]):
        return None
    ap, cls = parser(argv[0])
    try:
        ns = ap.parse_args(argv[1:])
    except _Fallback:
        return None
    import vllmtune.cli.printers as printers
    from vllmtune.util.argspec import from_namespace

    args = from_namespace(cls, ns)
    if argv[0] == "render":
        from vllmtune.commands import render

        return printers.render(render.run(args))
    from vllmtune.commands import validate

    return printers.validate(validate.run(args), ns.output)
