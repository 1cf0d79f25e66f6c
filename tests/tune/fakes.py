"""A stand-in for ``vllmtune up`` in the tune tests: each start loads the trial profile and runs
vllmtune's stub server (vllmtune/bench/stub.py) serving at most ``batching.max_num_seqs`` answers
at a time (so the knob moves goodput); it counts starts, fails the start of the values in
``fail_seqs`` as vLLM would, and can be interrupted on its Nth start (a killed run)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

from tests.support.cli import ROOT
from vllmtune.errors import LaunchError
from vllmtune.profile.loader import load_profile
from vllmtune.util.net import free_port

OOM = "reason: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@dataclass
class StubRuntime:
    fail_seqs: tuple[int, ...] = ()
    interrupt_at: int | None = None  # KeyboardInterrupt on this start (1-based)
    itl: float = 0.002
    started: list[int | None] = field(default_factory=list)  # max_num_seqs of every start
    stopped: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, profile: str) -> str:
        lp = load_profile(profile)
        seqs = lp.profile.batching.max_num_seqs
        self.started.append(seqs)
        if self.interrupt_at is not None and len(self.started) == self.interrupt_at:
            raise KeyboardInterrupt
        if seqs in self.fail_seqs:
            raise LaunchError("vLLM exited during start-up (exit code 1)", hint=OOM, sep="\n")
        port = free_port()
        argv = [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(port), "--model", "tiny",
                "--tokens", "4", "--itl", str(self.itl), "--max-concurrent", str(seqs or 1), "--seconds", "120"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("stub listening")
        self.procs.append(proc)
        return f"http://127.0.0.1:{port}"

    def stop(self, name: str) -> None:
        self.stopped.append(name)
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)
        self.procs.clear()
