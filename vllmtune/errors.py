"""The one error tree. The CLI maps every VllmtuneError to exit code 1 and prints it
without a traceback; anything else is a bug (exit 3, "please report").

::

    VllmtuneError                 a problem the user can act on (exit 1); .message, .hint
    ├── ProfileError              the profile is invalid: located Problems (file:line: key: ...)
    ├── FlagError                 an unknown vLLM version or entrypoint in the flag catalog
    ├── RenderError               a target cannot be rendered or written
    ├── LaunchError               starting, waiting for or stopping a server failed
    │   └── DockerUnreachable     no Docker daemon answers where DOCKER_HOST points
    ├── FitError                  memory planning lacks model facts, an unknown GPU, a bad log
    ├── CacheError                the cache proxy cannot start, or no proxy answers for stats
    ├── BenchError                the benchmark cannot run (endpoint, model, options)
    ├── WorkloadError             a workload cannot be built (name, JSONL line, ShareGPT entry)
    ├── SloError                  a --slo string that cannot be parsed
    ├── CompareError              a bench result file cannot be compared
    ├── LadderError               the ladder cannot run (bad --rungs, nothing to compare)
    ├── TuneError                 tune cannot run (a bad --space, nothing left after pruning)
    ├── DriftError                nothing to compare a running server with
    └── DiffError                 a diff cannot be made (unreadable file, unknown target)

Every class lives here and nowhere else (``tests/test_architecture.py`` checks it); a module
raising one imports it from here. Each error carries its ``message`` (what is wrong) and, when
there is one, its ``hint`` (how to fix it), kept apart so that a caller can print or test them
separately; ``str(err)`` is the whole user-facing text: the message, ``sep`` (``"; "`` unless
the raise site says otherwise), then the hint.

Not in the tree, on purpose (they never reach the user as errors, so they are not
VllmtuneErrors: a leak of one is a bug, exit 3):

- ``vllmtune.cache.wire.ClientAbort`` and ``vllmtune.cache.upstream.UpstreamError``: the cache
  proxy's internal signals (drop the client connection; the upstream broke off or timed out),
  always caught inside the proxy and answered as HTTP (502/504) or a closed connection.
- ``vllmtune.bench.http.HttpError``: a broken benchmark connection, recorded by the runner as
  that request's failure (the error counts of the result), never raised out of a run.
- ``vllmtune.quantize_job.JobError``: raised inside the quantization job's own container, where
  ``quantize_job.py`` runs as a standalone script (copied alone into a ConfigMap or a bind
  mount, without the vllmtune package), so it cannot import this module; it prints one line and
  exits 1 there.

This module imports only the standard library: the cache proxy's image (stdlib + h11 + redis)
imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class VllmtuneError(Exception):
    """A problem the user can act on. ``str(err)`` is the whole user-facing message: ``message``,
    then ``sep`` and ``hint`` (how to fix it) when there is a hint."""

    exit_code = 1

    def __init__(self, message: str = "", *, hint: str | None = None, sep: str = "; ") -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}{sep}{hint}")


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
        return _one_line(text)


# Characters that would break one problem into several lines (or hide text) on a terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (\\n, \\x85, ...), so that a
    hostile value quoted in a message cannot add lines to it or rewrite the terminal."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group(0))[1:-1], text)


class ProfileError(VllmtuneError):
    """A profile is invalid: one or more problems, each with file, line and key path (each
    problem's own text says how to fix it, so the error has no separate hint)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FlagError(VllmtuneError):
    """A vLLM version or flag question that cannot be answered (unknown version, ...)."""


class RenderError(VllmtuneError):
    """A target cannot be rendered or written."""


class LaunchError(VllmtuneError):
    """Starting, waiting for or stopping a server failed."""


class DockerUnreachable(LaunchError):
    """No Docker daemon answers where DOCKER_HOST (or the default socket) points."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(
            f"cannot reach the Docker daemon at {where}: {reason}",
            hint="start it (sudo systemctl start docker, or dockerd) or point DOCKER_HOST at a running "
            "daemon; or use --runtime local",
            sep="\n",
        )


class FitError(VllmtuneError):
    """Memory planning cannot proceed: missing model facts, unknown GPU, unreadable log, ..."""


class CacheError(VllmtuneError):
    """The proxy cannot start (bad upstream URL, port in use, missing redis package...), or no
    cache proxy answers ``vllmtune cache stats``."""


class BenchError(VllmtuneError):
    """The benchmark cannot run (endpoint unreachable, wrong model, bad options)."""


class WorkloadError(VllmtuneError):
    """A workload cannot be built (unknown name, bad JSONL line, bad ShareGPT entry)."""


class SloError(VllmtuneError):
    """A --slo string that cannot be parsed."""


class CompareError(VllmtuneError):
    """A result file cannot be compared."""


class LadderError(VllmtuneError):
    """The ladder cannot run (bad --rungs, nothing to compare)."""


class TuneError(VllmtuneError):
    """``vllmtune tune`` cannot run: a bad --space, an empty space after pruning, no optimiser."""


class DriftError(VllmtuneError):
    """Nothing to compare with (no running server, unreadable dump)."""


class DiffError(VllmtuneError):
    """A diff cannot be made (unreadable file, cannot tell the target)."""
