"""The vllmtune command line as a user runs it: ``python -m vllmtune.cli`` in a child process,
from the repository root, NO_COLOR set.

    vt = Cli(timeout=60, env={"VLLMTUNE_NO_CACHE": "1"})  # a test file's defaults
    r = vt("validate", "preset:baseline", env={"HOME": str(tmp_path)})  # + this call's env
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.interrupt import INTERRUPTIBLE

ROOT = Path(__file__).resolve().parents[2]
VLLMTUNE = [sys.executable, "-m", "vllmtune.cli"]


@dataclass(frozen=True)
class Cli:
    """Runs vllmtune; ``env`` is added to the test process's environment (after NO_COLOR=1), then
    each call's ``env``."""

    timeout: float = 120
    env: Mapping[str, str] = field(default_factory=dict)

    def environ(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", **self.env, **(env or {})}

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cwd: Path = ROOT,
        preexec_fn: Callable[[], Any] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run to the end; stdout and stderr captured as text."""
        return subprocess.run(
            [*VLLMTUNE, *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=self.timeout if timeout is None else timeout,
            env=self.environ(env),
            preexec_fn=preexec_fn,
        )

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start it for a test to interrupt (SIGINT reaches it: ``INTERRUPTIBLE``); stdout and
        stderr are pipes (text)."""
        return subprocess.Popen(
            [*VLLMTUNE, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(env),
            **INTERRUPTIBLE,
        )


vt = Cli()
