"""Whole-process time of `vllmtune render` vs `python -c "import yaml, pydantic, jinja2"`.

The goal (issue 2): render within 1.3x of that baseline, since people run it in loops and
pre-commit hooks. Prints median and min over N runs of each, and the ratio, for a render served
from the render cache (the loop / pre-commit case: unchanged profile) and a cold one
(--no-cache: YAML, pydantic validation, plan, renderer).

    python benchmarks/render_startup.py [--runs 21] [--target docker]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--profile", default="preset:all-levers")
    args = ap.parse_args()
    baseline_cmd = [sys.executable, "-c", "import yaml, pydantic, jinja2"]
    timed(baseline_cmd, 3)  # warm the page cache
    base = timed(baseline_cmd, args.runs)
    print(
        f"baseline  python -c 'import yaml, pydantic, jinja2': median {statistics.median(base):6.1f} ms"
        f"  min {min(base):6.1f} ms"
    )
    for mode, extra in (("cached", []), ("cold (--no-cache)", ["--no-cache"])):
        for target in ("docker", "compose", "kubernetes"):
            cmd = [sys.executable, "-m", "vllmtune", "render", args.profile, "-t", target, *extra]
            timed(cmd, 3)
            t = timed(cmd, args.runs)
            print(
                f"render -t {target:<10} {mode:<17}: median {statistics.median(t):6.1f} ms  min {min(t):6.1f} ms"
                f"  ratio {statistics.median(t) / statistics.median(base):.2f}x (goal <= 1.30x)"
            )


if __name__ == "__main__":
    main()
