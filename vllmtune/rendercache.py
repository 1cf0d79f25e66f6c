"""A cache of rendered output, so that ``vllmtune render`` in loops and pre-commit hooks does
not pay for importing and building the validation models each time.

Like ccache's manifests: an entry is found by (profile path, target, working directory,
HOME, vllmtune's own files) and is used only if every file of the profile's ``extends`` chain
still has the content hash recorded with it. Standard library only; nothing here imports
pydantic or yaml. ``--no-cache`` or VLLMTUNE_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from vllmtune import __version__

PACKAGE_DIR = Path(__file__).resolve().parent


def enabled() -> bool:
    """False when VLLMTUNE_NO_CACHE is set to anything but 0/empty."""
    return os.environ.get("VLLMTUNE_NO_CACHE", "0") in ("", "0")


def cache_dir() -> Path:
    """$VLLMTUNE_CACHE_DIR, else $XDG_CACHE_HOME/vllmtune/render, else ~/.cache/vllmtune/render."""
    env = os.environ.get("VLLMTUNE_CACHE_DIR")
    if env:
        return Path(env) / "render"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vllmtune" / "render"


@cache
def tool_fingerprint() -> str:
    """Changes whenever vllmtune's code or data changes (also in an editable checkout)."""
    h = hashlib.sha256(__version__.encode())
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json", ".yaml", ".j2")):
                st = os.stat(os.path.join(root, name))
                h.update(f"{root}/{name}:{st.st_mtime_ns}:{st.st_size}".encode())
    return h.hexdigest()


def _file_hash(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def _key(profile: str, target: str) -> str:
    ident = json.dumps(
        [
            os.path.abspath(profile) if not profile.startswith("preset:") else profile,
            target,
            os.getcwd(),
            os.path.expanduser("~"),
            tool_fingerprint(),
        ]
    )
    return hashlib.sha256(ident.encode()).hexdigest()


def lookup(profile: str, target: str) -> dict[str, Any] | None:
    """The cached entry ({"text", "warnings"}) if every input file is unchanged."""
    path = cache_dir() / f"{_key(profile, target)}.json"
    try:
        entry: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    for dep, digest in entry.get("deps", {}).items():
        if _file_hash(dep) != digest:
            return None
    return entry


def store(profile: str, target: str, chain: list[str], text: str, warnings: list[str]) -> None:
    """Remember a render; ``chain`` is the profile's extends chain (files and presets)."""
    deps = {}
    for item in chain:
        if item.startswith("preset:"):
            continue  # part of vllmtune itself: covered by the tool fingerprint
        digest = _file_hash(item)
        if digest is None:
            return
        deps[os.path.abspath(item)] = digest
    directory = cache_dir()
    try:
        from vllmtune.util.files import write_atomic

        write_atomic(
            directory / f"{_key(profile, target)}.json", json.dumps({"deps": deps, "text": text, "warnings": warnings})
        )
    except OSError:
        pass  # a cache that cannot be written is just not a cache
