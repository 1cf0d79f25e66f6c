"""Version-aware catalog of vLLM's server flags, read from the generated ``catalog.json``.

The data comes from vLLM's own argument parsers for every release (see
``scripts/build_flag_catalog.py``); nothing about a flag is typed by hand here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from vllmtune.errors import FlagError
from vllmtune.util import pkgdata

Entrypoint = Literal["serve", "api_server"]


def version_key(version: str) -> tuple[int, ...]:
    """``"0.10.1.1"`` -> ``(0, 10, 1, 1)``; raises ValueError on anything else."""
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True)
class Flag:
    """One option string of one vLLM version."""

    name: str
    kind: str  # switch | bool | optbool | value | multi | optvalue | append
    dest: str
    group: tuple[str, ...]  # every spelling of the same option, positive first
    choices: tuple[str, ...] | None
    deprecated: bool

    @property
    def takes_value(self) -> bool:
        return self.kind in ("value", "multi", "append", "optvalue", "optbool")


@cache
def _raw() -> dict[str, Any]:
    text = pkgdata.read_text("flags", "catalog.json")
    data: dict[str, Any] = json.loads(text)
    return data


def known_versions() -> list[str]:
    """Every vLLM release the catalog covers, oldest first."""
    return list(_raw()["versions"])


def _index(version: str) -> int:
    versions = _raw()["versions"]
    try:
        return int(versions.index(version))
    except ValueError:
        import difflib

        close = difflib.get_close_matches(version, versions, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise FlagError(
            f"unknown vLLM version {version!r}: vllmtune knows {versions[0]} .. {versions[-1]}{hint}"
        ) from None


def _lookup(run_list: list[list[int]], idx: int) -> Any:
    for first, last, vid in run_list:
        if first <= idx <= last:
            return _raw()["table"][vid]
    return None


def versions_where(run_list: list[list[int]]) -> list[str]:
    """The versions in which a run list has a value."""
    versions = _raw()["versions"]
    return [versions[i] for first, last, _ in run_list for i in range(first, last + 1)]


def describe_versions(versions: list[str]) -> str:
    """Summarise a sorted version list as ranges: ``0.8.2 .. 0.33.0``."""
    if not versions:
        return "no version"
    allv = _raw()["versions"]
    idx = [allv.index(v) for v in versions]
    spans: list[tuple[int, int]] = []
    for i in idx:
        if spans and spans[-1][1] == i - 1:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    parts = [allv[a] if a == b else f"{allv[a]} .. {allv[b]}" for a, b in spans]
    return ", ".join(parts)


class FlagSet:
    """What one vLLM version's entrypoint accepts."""

    def __init__(self, version: str, entrypoint: Entrypoint = "serve") -> None:
        self.version = version
        self.entrypoint = entrypoint
        self._idx = _index(version)
        ep = _raw()["entrypoints"][entrypoint]
        if _lookup(ep["present"], self._idx) is None:
            raise FlagError(f"vLLM {version} has no {entrypoint} entrypoint")
        self.positional_model = bool(_lookup(ep["positional_model"], self._idx))
        self.flags: dict[str, Flag] = {}
        for name, run_list in ep["flags"].items():
            attr = _lookup(run_list, self._idx)
            if attr is not None:
                self.flags[name] = Flag(
                    name=name,
                    kind=attr["kind"],
                    dest=attr["dest"],
                    group=tuple(attr["group"]),
                    choices=tuple(attr["choices"]) if "choices" in attr else None,
                    deprecated=bool(attr.get("deprecated")),
                )
        self._by_dest: dict[str, Flag] = {}
        for flag in self.flags.values():
            if flag.name.startswith("--") and flag.name == flag.group[0]:
                self._by_dest.setdefault(flag.dest, flag)

    def __contains__(self, name: str) -> bool:
        return name in self.flags

    def by_dest(self, dest: str) -> Flag | None:
        """The option that sets ``dest`` in this version (its first, long spelling)."""
        return self._by_dest.get(dest)

    def values(self, name: str) -> list[str] | None:
        """A version-dependent value set: quantization, kv_cache_dtype, speculative_methods..."""
        value = _lookup(_raw()["value_sets"][name], self._idx)
        return None if value is None else list(value)

    def suggest(self, name: str) -> str | None:
        """The closest existing option to a misspelt one."""
        import difflib

        close = difflib.get_close_matches(name, list(self.flags), n=1, cutoff=0.6)
        return close[0] if close else None


@cache
def flagset(version: str, entrypoint: Entrypoint = "serve") -> FlagSet:
    """Cached :class:`FlagSet` for a version and entrypoint."""
    return FlagSet(version, entrypoint)


def versions_with_flag(name: str, entrypoint: Entrypoint = "serve") -> list[str]:
    """Every version whose entrypoint accepts option ``name``."""
    run_list = _raw()["entrypoints"][entrypoint]["flags"].get(name, [])
    return versions_where(run_list)


def versions_with_dest(dest: str, entrypoint: Entrypoint = "serve") -> list[str]:
    """Every version that has some option setting ``dest``."""
    out = []
    for v in known_versions():
        if flagset(v, entrypoint).by_dest(dest) is not None:
            out.append(v)
    return out


def versions_with_value(value_set: str, value: str) -> list[str]:
    """Every version whose value set (e.g. quantization) contains ``value``."""
    run_list = _raw()["value_sets"][value_set]
    table = _raw()["table"]
    versions = _raw()["versions"]
    return [versions[i] for first, last, vid in run_list if value in table[vid] for i in range(first, last + 1)]


def flag_help(name: str) -> str:
    """First paragraph of vLLM's own help for an option (newest version that has it)."""
    return str(_raw()["help"].get(name, ""))
