"""``vllmtune render``: the command body, and its fast path.

``render`` is the command people run in loops and pre-commit hooks, so ``main()`` first
tries :func:`fast_render`: the same options parsed with argparse, without building the typer
app (typer's parameter machinery costs more than rendering). Anything it does not handle
(``--help``, a usage error) falls back to typer, which owns help and error messages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The render options, as typer declares them in cli.py (a test keeps the two in step).
FAST_OPTIONS = {"--target": "-t", "--out": "-o", "--no-cache": None}


def render_command(profile: str, target: str, out: str | None, no_cache: bool) -> None:
    """Render ``profile`` for ``target`` to stdout or ``out`` (see ``vllmtune render --help``)."""
    from vllmtune import rendercache
    from vllmtune.render import is_directory_output, render_files, resolve_target, write_files

    target = resolve_target(target)
    to_file = out is not None and out != "-"
    to_dir = to_file and is_directory_output(str(out))
    use_cache = not no_cache and not to_dir and rendercache.enabled()
    entry = rendercache.lookup(profile, target) if use_cache else None
    if entry is not None:
        _warn(entry["warnings"])
        text = str(entry["text"])
    else:
        from vllmtune.plan import build_plan
        from vllmtune.profile.loader import load_profile
        from vllmtune.render import render

        loaded = load_profile(profile)
        plan = build_plan(loaded)
        _warn(list(plan.warnings))
        if to_dir:
            files = render_files(plan, target, str(out))
            write_files(files)
            for path in files:
                sys.stderr.write(f"wrote {path}\n")
            return
        text = render(plan, target)
        if use_cache:
            rendercache.store(profile, target, loaded.chain, text, list(plan.warnings))
    if not to_file:
        sys.stdout.write(text)
        return
    path = Path(str(out))
    write_files({path: text}, mode=0o755 if target in ("docker", "quantize-script") else None)
    sys.stderr.write(f"wrote {path}\n")


def _warn(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"warning: {line}\n")


class _Fallback(Exception):
    """Not for the fast path: let typer handle it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Fallback(message)


def fast_render(argv: list[str]) -> int | None:
    """Run ``render`` if argv is a plain render invocation; None means "use typer"."""
    if not argv or argv[0] != "render" or any(a in ("--help", "-h") for a in argv[1:]):
        return None
    parser = _Parser(add_help=False)
    parser.add_argument("profile")
    parser.add_argument("--target", "-t", default="docker")
    parser.add_argument("--out", "-o", default=None)
    parser.add_argument("--no-cache", action="store_true")
    try:
        ns = parser.parse_args(argv[1:])
    except _Fallback:
        return None
    render_command(ns.profile, ns.target, ns.out, ns.no_cache)
    return 0
