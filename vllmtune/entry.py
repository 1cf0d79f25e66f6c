"""The ``vllmtune`` console script and ``python -m vllmtune``.

``render`` and ``validate`` (run in loops and pre-commit hooks) should not pay for typer: their
fast path (:func:`vllmtune.cli.fast.fast_run`) runs before the typer app is built. Everything
else, and every error, goes through :func:`vllmtune.cli.main` / :func:`vllmtune.cli.handle`
(one exit-code mapping).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run vllmtune with ``argv`` (default: the process's arguments); return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        from vllmtune.cli.fast import fast_run

        fast = fast_run(args)
    except BaseException as exc:  # the same mapping as every other command
        from vllmtune.cli import handle

        return handle(exc)
    if fast is not None:
        return fast
    from vllmtune.cli import main as full

    return full(argv, fast=False)
