"""Version-aware vLLM flag catalog: which flag exists in which version, in which spelling."""

from vllmtune.flags.catalog import (
    Flag,
    FlagSet,
    describe_versions,
    flag_help,
    flagset,
    known_versions,
    version_key,
    versions_with_dest,
    versions_with_flag,
    versions_with_value,
)

__all__ = [
    "Flag",
    "FlagSet",
    "describe_versions",
    "flag_help",
    "flagset",
    "known_versions",
    "version_key",
    "versions_with_dest",
    "versions_with_flag",
    "versions_with_value",
]
