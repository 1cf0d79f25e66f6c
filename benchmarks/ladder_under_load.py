"""Do the ladder's verdicts hold on a busy machine? Runs ``vllmtune ladder`` K times (default 3)
on one profile/workload/options while one busy process per core spins in the background, then
prints each rung's verdicts per run, whether each rung's verdict was the same in every run, and
per run the prefix-caching server-TTFT change and the prompt cache's relative cost (issue 17).

    python benchmarks/ladder_under_load.py profiles/examples/cpu-ladder.yaml --runs 3 -- \\
        --runtime local --workload mixed -n 30 -c 2 --max-tokens 8

Everything after ``--`` goes to ``vllmtune ladder`` as is (not ``-o``: each run gets its own
directory under ``--out``). The busy processes are bounded (``--load-seconds``, default 2 h) and
killed when the runs end, on an error, or on Ctrl-C. ``--no-load``: the same runs on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from vllmtune.ladder.consistency import consistent_verdicts, headline, rung_verdicts

BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def start_load(cores: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """One spinning process per core, each exiting by itself after ``seconds`` at the latest."""
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=seconds)]) for _ in range(cores)]


def stop_load(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:  # only the processes started here, by their own handles
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _ratio(fig: dict[str, Any] | None, percent: bool) -> str:
    if not fig or fig.get("ratio") is None:
        return "-"
    ci = fig.get("ratio_ci95")
    if percent:
        head = f"{(fig['ratio'] - 1) * 100:+.0f}%"
        return head + (f" (95% CI {(ci[0] - 1) * 100:+.0f}% to {(ci[1] - 1) * 100:+.0f}%)" if ci else "")
    return f"{fig['ratio']:.2f}x" + (f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else "")


def report(summaries: list[dict[str, Any]]) -> list[str]:
    """The lines printed at the end (also what a reader checks: verdicts per run, consistency)."""
    lines = []
    for i, s in enumerate(summaries, 1):
        lines.append(f"run {i}:")
        for config, verdicts in rung_verdicts(s).items():
            lines.append(f"  {config}: " + ", ".join(f"{k} {v}" for k, v in verdicts.items()))
        h = headline(s)
        lines.append(
            f"  prefix caching server TTFT p50: {_ratio(h['prefix_caching_server_ttft'], True)}; "
            f"prompt cache relative cost: {_ratio(h['prompt_cache_relative_cost'], False)}"
        )
    lines.append("consistency across runs:")
    for config, c in consistent_verdicts(summaries).items():
        bad = [k for k, f in c["figures"].items() if not f["consistent"]]
        lines.append(f"  {config}: " + ("same verdicts in every run" if not bad else f"differs on {', '.join(bad)}"))
    return lines


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rest: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="ladder-under-load")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--load-seconds", type=float, default=7200.0)
    ap.add_argument("--no-load", action="store_true")
    a = ap.parse_args(argv)
    if any(x in ("-o", "--out") for x in rest):
        ap.error("give --out to this script, not to the ladder")
    load = [] if a.no_load else start_load(a.cores, a.load_seconds)
    previous = signal.signal(signal.SIGTERM, _interrupted)  # a kill ends the runs like Ctrl-C: load stopped
    summaries = []
    try:
        for i in range(1, a.runs + 1):
            out = Path(a.out) / f"run-{i}"
            cmd = [sys.executable, "-m", "vllmtune", "ladder", a.profile, *rest, "-o", str(out)]
            print(f"run {i}/{a.runs}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            r = subprocess.run(cmd, check=False)
            if not (out / "ladder.json").exists():
                print(f"run {i}: the ladder wrote no ladder.json (exit {r.returncode})", file=sys.stderr)
                return 1
            summaries.append(json.loads((out / "ladder.json").read_text()))
    finally:
        stop_load(load)
        signal.signal(signal.SIGTERM, previous)
    print("\n".join(report(summaries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
