"""``vllmtune init``: a new profile, written out from a preset."""

from __future__ import annotations

from dataclasses import dataclass

from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class InitArgs:
    name: str = arg(help="Name of the new profile (lowercase, digits, '-').")
    preset: str = opt("--preset", "-p", default="all-levers", help="Built-in preset to start from.")


def run(args: InitArgs) -> str:
    """The profile's YAML text."""
    from vllmtune.scaffold import new_profile

    return new_profile(args.name, args.preset)
