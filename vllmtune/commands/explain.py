"""``vllmtune explain``, ``presets``, ``schema`` and ``flags``: what a profile, the presets, the
schema and a vLLM version's flags are (read-only look-ups)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtune.commands.common import PROFILE_HELP
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class ExplainArgs:
    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")


def explain(args: ExplainArgs) -> Any:
    """The profile's plan (its levers, image, warnings: :mod:`vllmtune.explain` shows them)."""
    from vllmtune.plan import load_plan

    return load_plan(args.profile)


@dataclass(frozen=True)
class PresetsArgs:
    pass


def presets(args: PresetsArgs) -> list[dict[str, Any]]:
    """One row per built-in preset: name, levers_on, description, use."""
    from vllmtune.presets import preset_rows

    return preset_rows()


@dataclass(frozen=True)
class SchemaArgs:
    pass


def schema(args: SchemaArgs) -> dict[str, Any]:
    """The profile JSON Schema."""
    from vllmtune.profile.schema import profile_schema

    return profile_schema()


@dataclass(frozen=True)
class FlagsArgs:
    vllm: str = opt("--vllm", default="0.32.0", help="vLLM version to list.")
    diff: str | None = opt("--diff", default=None, help="Show what changed from this older version to --vllm.")
    entrypoint: str = opt(
        "--entrypoint",
        default="serve",
        choices=("serve", "api_server"),
        help="serve (vllm serve) or api_server (the image entrypoint up to 0.11.0).",
    )
    grep: str | None = opt("--grep", default=None, help="Only flags whose name or help contains this.")


def flags(args: FlagsArgs) -> Any:
    """With --diff: {added, removed, changed, values}; else the flag rows."""
    from vllmtune.flags.report import diff_flags, list_flags

    ep: Any = args.entrypoint
    if args.diff:
        return diff_flags(args.diff, args.vllm, ep)
    return list_flags(args.vllm, ep, args.grep)
