"""Shell words and the lines both bash scripts share (``-t docker`` and ``-t quantize-script``).

Every word is quoted with ``shlex.quote`` except the few deliberate shell expansions (the HF
cache directory, secrets from the caller's environment), written as fixed, pre-quoted text.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from vllmtune.plan import SecretEnv


@dataclass(frozen=True)
class Shell:
    """A word written as-is into the script (already quoted; may expand variables)."""

    text: str


Word = str | Shell


def quote(word: Word) -> str:
    return word.text if isinstance(word, Shell) else shlex.quote(word)


def join_lines(lines: Sequence[Sequence[Word]]) -> str:
    """One command over several lines: words quoted, lines joined by `` \\`` continuations."""
    return " \\\n  ".join(" ".join(quote(w) for w in line) for line in lines)


def _hf_cache_default(source: str) -> str:
    """Shell text for the default HF cache dir: a leading ``~/`` becomes ``"$HOME"/``."""
    if source == "~" or source.startswith("~/"):
        rest = source[2:]
        return '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    return shlex.quote(source)


def hf_cache_lines(source: str, comment: str) -> list[str]:
    """``$HF_CACHE`` from the caller's environment, else ``source``; created."""
    return [
        f"# {comment} (override: HF_CACHE=/path bash this-script)",
        f'HF_CACHE="${{HF_CACHE:-}}"; [ -n "$HF_CACHE" ] || HF_CACHE={_hf_cache_default(source)}',
        'mkdir -p "$HF_CACHE"',
    ]


def secret_lines(s: SecretEnv) -> list[str]:
    """Fail early when a secret is missing from the caller's environment, then export it under
    the container's name. source_env is a validated identifier and field a fixed key path: safe as text."""
    check = f': "${{{s.source_env}:?set {s.source_env} in your environment ({s.field})}}"'
    return [check, f'export {s.name}="${s.source_env}"' if s.source_env != s.name else f"export {s.name}"]
