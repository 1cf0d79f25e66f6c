"""Whole-process start-up of ``vllmtune render`` / ``validate`` as ratios to ``import yaml, pydantic``.

Goal (issue 15): a cold render (``--no-cache``: YAML, validation, plan, renderer) and a cold
``validate`` (every target rendered in memory) within 1.5x of the baseline, a warm render (served
from the render cache: the loop / pre-commit case) at most 1.0x. Runs are interleaved (every
round runs each command once, in a rotating order) because the machine may be shared, and each
line reports the median and the interquartile range over the rounds, as ratios to the median
baseline. ``validate-core`` is the same work without the command line (``validate_one``), so a
slow argument parser shows as the difference between the two validate lines.

``--instructions`` counts each command's instructions once under valgrind's callgrind instead
(deterministic, indifferent to other load on the machine; about 50x slower than a run).

    python benchmarks/render_startup.py [--runs 15] [--profile preset:all-levers] [--target docker]
    python benchmarks/render_startup.py --instructions
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

# validate_one: vllmtune.commands.validate since the commands/ layout (issue 15), vllmtune.validate before
VALIDATE_CORE = """
try:
    from vllmtune.commands.validate import validate_one
except ImportError:
    from vllmtune.validate import validate_one
validate_one({profile!r})
"""


def once(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return (time.perf_counter() - t) * 1000


def instructions(cmd: list[str], env: dict[str, str]) -> int:
    r = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    found = re.search(r"Collected : (\d+)", r.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind: {r.stderr[-500:]}")
    return int(found.group(1))


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="rounds (each runs every command once)")
    ap.add_argument("--profile", default="preset:all-levers")
    ap.add_argument("--target", default="docker")
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind) instead of timing")
    args = ap.parse_args()
    py = sys.executable
    vt = [py, "-m", "vllmtune"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VLLMTUNE_CACHE_DIR": tmp}  # the warm render's cache, nobody else's
        # An installed package has its bytecode; without it every run would compile vllmtune.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "baseline": [py, "-c", "import yaml, pydantic"],
            "baseline+jinja2": [py, "-c", "import yaml, pydantic, jinja2"],
            "render cold": [*vt, "render", args.profile, "-t", args.target, "--no-cache"],
            "render warm": [*vt, "render", args.profile, "-t", args.target],
            "validate cold": [*vt, "validate", args.profile],
            "validate-core cold": [py, "-c", VALIDATE_CORE.format(profile=args.profile)],
        }
        goals = {"render cold": 1.5, "validate cold": 1.5, "validate-core cold": 1.5, "render warm": 1.0}
        names = list(commands)
        for name in names:  # warm the page cache (and fill the render cache)
            once(commands[name], env)
        if args.instructions:
            counts = {name: instructions(cmd, env) for name, cmd in commands.items()}
            print("instructions (valgrind callgrind), ratios to `python -c 'import yaml, pydantic'`")
            for name in names:
                goal = f"<= {goals[name]:.1f}x" if name in goals else ""
                ratio = counts[name] / counts["baseline"]
                print(f"{name:<20} {counts[name] / 1e6:7.0f} M  {ratio:5.2f}x  {goal}")
            return
        times: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.runs):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                times[name].append(once(commands[name], env))
    base = statistics.median(times["baseline"])
    print(f"{args.runs} interleaved rounds; ratios to the median of `python -c 'import yaml, pydantic'`")
    print(f"{'':<20} {'median ms':>9} {'IQR ms':>15} {'ratio':>6} {'IQR ratio':>13}  goal")
    for name in names:
        q1, q2, q3 = quartiles(times[name])
        goal = f"<= {goals[name]:.1f}x" if name in goals else ""
        print(
            f"{name:<20} {q2:9.1f} {q1:7.1f}-{q3:<7.1f} {q2 / base:5.2f}x {q1 / base:5.2f}-{q3 / base:<5.2f}x  {goal}"
        )


if __name__ == "__main__":
    main()
