"""Stopping a process started in its own session (``start_new_session=True``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running (a zombie, exited but not reaped, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def stop_group(pid: int, grace: float) -> None:
    """SIGTERM the group leader alone (``vllm serve`` shuts its engine down cleanly; signalling
    the whole group kills the engine first and floods the log), wait up to ``grace`` seconds
    for it to exit, then SIGKILL its group: children that outlived the leader (engine cores)
    go too."""
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
