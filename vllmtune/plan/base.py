"""The planner's state and the helpers every part of it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vllmtune.errors import Problem
from vllmtune.flags import (
    Flag,
    FlagSet,
    describe_versions,
    flagset,
    versions_with_dest,
    versions_with_value,
)
from vllmtune.plan.model import (
    entrypoint_for,
)
from vllmtune.plan.settings import (
    LoraAdapterSettings,
)
from vllmtune.profile.loader import LoadedProfile
from vllmtune.util.paths import looks_local

VALUE_SETS = {"quantization": "quantization", "kv_cache_dtype": "kv_cache_dtype"}


def host_path(ident: str, source: str) -> str | None:
    """The absolute host path of a local directory or file (relative to the profile file
    ``source``), or None for a Hugging Face id. The one "is this a local path" of plan and fit."""
    if not looks_local(ident):
        return None
    base = Path(source).parent if not source.startswith("preset:") else Path()
    host = Path(ident).expanduser()
    host = host if host.is_absolute() else (base / host)
    return str(host.resolve(strict=False))


class _Base:
    def __init__(self, lp: LoadedProfile) -> None:
        self.lp = lp
        self.p = lp.profile
        self.version = self.p.vllm.version.lstrip("v")
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = list(lp.warnings)
        self.entrypoint = entrypoint_for(self.version)
        self.fs: FlagSet = flagset(self.version, "serve" if self.entrypoint[0] == "vllm" else "api_server")
        self.args: list[str] = []
        self.spelt: dict[str, str] = {}  # dest -> the flag spelling rendered
        self.extra: list[tuple[str, str]] = []  # server.extra_args as (dest, value)
        self.lora_adapters: list[LoraAdapterSettings] = []
        self.levers: list[tuple[str, str, tuple[str, ...]]] = []

    def err(self, path: tuple[str | int, ...], msg: str) -> None:
        self.errors.append(self.lp.problem(path, msg))

    def warn(self, path: tuple[str | int, ...], msg: str) -> None:
        self.warnings.append(self.lp.problem(path, msg))

    def _cannot(self, path: tuple[str, ...], dest: str, what: str) -> None:
        where = versions_with_dest(dest, "serve")
        self.err(path, f"vLLM {self.version} cannot express {what}; available in {describe_versions(where)}")

    def _host_path(self, ident: str) -> str | None:
        return host_path(ident, self.lp.source)

    def flag(self, path: tuple[str, ...], dest: str, value: Any) -> list[str]:
        """Render one field as argv in this version's spelling ([] when nothing to say)."""
        flag = self.fs.by_dest(dest)
        if flag is None:
            self._cannot(path, dest, f"{'.'.join(path)} (no flag for {dest})")
            return []
        out = self._flag_argv(flag, path, dest, value)
        if out:
            self.spelt[dest] = out[0]
        return out

    def _flag_argv(self, flag: Flag, path: tuple[str, ...], dest: str, value: Any) -> list[str]:
        if isinstance(value, bool):
            if flag.kind == "bool":
                return [flag.group[0] if value else flag.group[1]]
            if flag.kind == "optbool":  # old StoreBoolean: --flag True|False
                return [flag.name, str(value)]
            if flag.kind == "switch":
                # A bare switch can only turn the feature on; off is its default.
                return [flag.name] if value else []
            self._cannot(path, dest, "a true/false value")
            return []
        text = str(value)
        vs = VALUE_SETS.get(dest)
        allowed = [str(c) for c in flag.choices] if flag.choices else (self.fs.values(vs) if vs else None)
        if allowed is not None and text not in allowed:
            import difflib  # only for a mistake: kept off the start-up path

            close = difflib.get_close_matches(text, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            others = versions_with_value(vs, text) if vs else []
            where = f" ({text} is accepted by {describe_versions(others)})" if others else ""
            self.err(
                path,
                f"{text!r} is not accepted by vLLM {self.version}{where}; {hint}choose one of: {', '.join(allowed)}",
            )
            return []
        return [flag.name, text]
