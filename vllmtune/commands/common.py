"""Declarations several commands share."""

from __future__ import annotations

PROFILE_HELP = "Profile YAML file, or preset:NAME for a built-in preset."
RUNTIMES = ("docker", "local")
