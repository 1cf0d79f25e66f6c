"""The one error tree. The CLI maps every VllmtuneError to exit code 1 and prints it
without a traceback; anything else is a bug (exit 3, "please report")."""

from __future__ import annotations

import re
from dataclasses import dataclass


class VllmtuneError(Exception):
    """A problem the user can act on. ``str(err)`` is the whole user-facing message."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located problem in a profile: ``file:line: key.path: message``."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return one_line(text)


# Characters that would break one problem into several lines (or hide text) on a terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (\\n, \\x85, ...), so that a
    hostile value quoted in a message cannot add lines to it or rewrite the terminal."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group(0))[1:-1], text)


class ProfileError(VllmtuneError):
    """A profile is invalid: one or more problems, each with file, line and key path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FlagError(VllmtuneError):
    """A vLLM version or flag question that cannot be answered (unknown version, ...)."""


class RenderError(VllmtuneError):
    """A target cannot be rendered or written."""


class LaunchError(VllmtuneError):
    """Starting, waiting for or stopping a server failed."""
