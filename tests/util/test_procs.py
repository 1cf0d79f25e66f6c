from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from vllmtune.util.procs import pid_alive, stop_group

# A leader that ignores nothing and a child in its group that ignores SIGTERM.
LEADER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    stdout=sys.stdout)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_stop_group_ends_the_leader_and_a_child_that_ignores_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    lines = {proc.stdout.readline().strip(), proc.stdout.readline().strip()}
    lines.discard("ready")
    child = int(lines.pop())
    assert os.getpgid(child) == proc.pid
    stop_group(proc.pid, grace=30)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # the leader got SIGTERM, not SIGKILL
    deadline = time.monotonic() + 30  # SIGKILL is delivered asynchronously: wait for it, bounded
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_stop_group_of_a_gone_process_does_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(timeout=30)
    assert not pid_alive(proc.pid)
    stop_group(proc.pid, grace=1)  # no error: nothing is left to signal


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert not pid_alive(proc.pid)
    proc.wait(timeout=30)
    assert pid_alive(os.getpid())
