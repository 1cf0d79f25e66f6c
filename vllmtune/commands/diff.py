"""``vllmtune diff``, ``render-check`` and ``drift``: a profile against another, against
committed files, against what runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtune.commands.common import PROFILE_HELP, RUNTIMES
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class DiffArgs:
    a: str = arg(help="A profile.", metavar="PROFILE")
    b: str | None = arg(default=None, help="Another profile.", metavar="[OTHER]")
    against: str | None = opt(
        "--against", default=None, help="Compare the rendering with this file or k8s/ directory instead."
    )
    target: str | None = opt(
        "--target", "-t", default=None, help="docker, compose or kubernetes (default: docker; with --against: guessed)."
    )


def diff(args: DiffArgs) -> dict[str, Any]:
    """{changes: lever changes in words, diff: unified diff of the renderings}."""
    from vllmtune.diffing import diff_against, diff_profiles

    if args.against:
        return diff_against(args.a, args.against, args.target)
    return diff_profiles(args.a, str(args.b), args.target or "docker")


@dataclass(frozen=True)
class RenderCheckArgs:
    map_file: str = opt(
        "--map", default=".vllmtune-render.yaml", help="YAML list of {profile, target, output}, paths relative to it."
    )
    fix: bool = opt("--fix", default=False, help="Rewrite stale outputs instead of failing.")


def render_check(args: RenderCheckArgs) -> list[dict[str, Any]]:
    """One row per mapped output: output, profile, target, stale, fixed."""
    from vllmtune.diffing import render_check as do_check

    return list(do_check(args.map_file, args.fix))


@dataclass(frozen=True)
class DriftArgs:
    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    k8s: str | None = opt(
        "--k8s", default=None, help="A manifest dump (kubectl get deploy NAME -o yaml > FILE) to compare instead."
    )
    runtime: str | None = opt("--runtime", "-r", default=None, choices=RUNTIMES, help="Only this backend.")


def drift(args: DriftArgs) -> dict[str, Any]:
    """{source, drift: the differences in words}."""
    from vllmtune.drift import drift as do_drift

    return dict(do_drift(args.profile, args.k8s, args.runtime))
