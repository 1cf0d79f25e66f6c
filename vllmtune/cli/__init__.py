"""The command line: parse options, call one command, print its result, map errors to exit codes.

Exit codes: 0 ok, 1 a problem you can fix (the message says how), 2 wrong usage,
3 a bug in vllmtune (please report it), 130 interrupted (Ctrl-C).

- :mod:`vllmtune.cli.application`: the typer app (options generated from each command's ``Args``,
  :mod:`vllmtune.cli.typed`); imported only when a command needs typer.
- :mod:`vllmtune.cli.fast`: ``render`` and ``validate`` parsed with argparse from the same
  declarations, without typer (they run in loops and pre-commit hooks).
- :mod:`vllmtune.cli.printers`: text and JSON for each command's result.
- here: :func:`main` and :func:`handle`, the one exit-code mapping.
"""

from __future__ import annotations

import sys
from typing import Any

from vllmtune import __version__
from vllmtune.errors import ProfileError, VllmtuneError

# [project.urls] labels, best first, for "where to report a bug"
REPORT_LABELS = ("issues", "issue tracker", "bug tracker", "bugs", "tracker", "homepage", "source", "repository")


def __getattr__(name: str) -> Any:  # `from vllmtune.cli import app` builds the typer app on demand
    if name == "app":
        from vllmtune.cli.application import app

        return app
    raise AttributeError(name)


def report_where() -> str:
    """Where to report a bug: the installed package's ``[project.urls]`` (Issues first), or,
    when it declares none, its maintainers (never an address nobody set up)."""
    from importlib import metadata

    try:
        entries = metadata.metadata("vllmtune").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        entries = []
    urls = {}
    for entry in entries:
        label, _, url = str(entry).partition(",")
        if url.strip():
            urls[label.strip().lower()] = url.strip()
    for label in REPORT_LABELS:
        if label in urls:
            return f"at {urls[label]}"
    return "to the maintainers of this installation"


def _fail(message: str, code: int) -> int:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    return code


def _run(argv: list[str] | None, fast: bool = True) -> int:
    args = sys.argv[1:] if argv is None else argv
    if fast:
        from vllmtune.cli.fast import fast_run

        # `render` and `validate` run in loops and pre-commit hooks: served without typer.
        result = fast_run(args)
        if result is not None:
            return result
    import typer

    from vllmtune.cli.application import app

    command = typer.main.get_command(app)
    result = command.main(args=argv, prog_name="vllmtune", standalone_mode=False)
    if result == 130:  # typer turns Ctrl-C into exit code 130 without a word
        return _fail("interrupted", 130)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None, fast: bool = True) -> int:
    """Entry point: run the app and map errors to exit codes (no tracebacks for users).
    (The console script is :func:`vllmtune.entry.main`.)"""
    try:
        return _run(argv, fast)
    except Exception as exc:
        return handle(exc)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def handle(exc: BaseException) -> int:
    """The exit code (and message) for an exception that reached the top; call it from an
    ``except`` block (a bug's traceback is the one being handled)."""
    if isinstance(exc, VllmtuneError):
        # Profile problems already read "file:line: key.path: message", one per line.
        return _fail(str(exc) if isinstance(exc, ProfileError) else f"error: {exc}", exc.exit_code)
    typer = sys.modules.get("typer")  # not loaded (a fast path): none of its exceptions
    if typer is not None:
        if isinstance(exc, typer.Exit):
            if exc.exit_code == 130:  # typer's own handling of Ctrl-C
                return _fail("interrupted", 130)
            return int(exc.exit_code)
        if isinstance(exc, typer.Abort):
            return _fail("interrupted", 130)
    if isinstance(exc, KeyboardInterrupt):
        return _fail("interrupted", 130)
    if isinstance(exc, BrokenPipeError):
        return 0
    if not isinstance(exc, Exception):  # SystemExit, GeneratorExit: not ours to map
        raise exc
    # Usage errors (click's, vendored by typer): they know how to show themselves.
    code = getattr(exc, "exit_code", None)
    if hasattr(exc, "show") and isinstance(code, int):
        exc.show()
        return code
    # Anything else is a bug: say so, with what to report.
    import traceback

    tb = traceback.format_exc()
    return _fail(
        f"{tb}\nvllmtune {__version__}: internal error ({type(exc).__name__}: {exc}).\n"
        f"This is a bug in vllmtune, not in your input: please report it with the "
        f"text above {report_where()}",
        3,
    )
