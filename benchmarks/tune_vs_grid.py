"""Does `vllmtune tune` with at most a third of a full grid's servers find (within 5%) the grid's best
goodput? Issue 19's "done" figure. Runs the full grid once as the reference (`vllmtune tune` with a
budget of every runnable configuration: it measures them all), then `tune` with <= 1/3 of that
budget and the same seed, workload and SLO, and prints both best goodputs, their ratio, and the
tuned winner's margin over the input profile (95% CI). Each run is its own vllmtune process.

    # real vLLM (CPU demo model; bounded: keep -n small)
    python benchmarks/tune_vs_grid.py PROFILE --slo ttft_p99=800ms,itl_p99=60ms --workload W \\
        --space batching.max_num_batched_tokens=2048..16384 --space batching.max_num_seqs=8..64 \\
        --runtime local -- -n 40 -c 8 --max-tokens 32
    # no vLLM: the stub server behind a fake `vllm` (serves --max-num-seqs answers at a time)
    python benchmarks/tune_vs_grid.py --stub --space batching.max_num_seqs=1..8 --slo ttft_p99=300ms

Arguments after `--` go to both `vllmtune tune` runs (-n, -c, --max-tokens, --rate-trials, ...).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_VLLM = """#!{python}
import os, sys
argv = sys.argv[1:]
def opt(name, default):
    return argv[argv.index(name) + 1] if name in argv else default
os.execv(sys.executable, [sys.executable, "-m", "vllmtune.bench.stub", "--host", "127.0.0.1", "--port",
         opt("--port", "8000"), "--model", opt("--served-model-name", "tiny"), "--seconds", "600",
         "--itl", "0.01", "--tokens", "8", "--max-concurrent", opt("--max-num-seqs", "2")])
"""


def _stub_setup(where: Path) -> tuple[Path, dict[str, str]]:
    fake = where / "vllm"
    fake.write_text(FAKE_VLLM.format(python=sys.executable))
    fake.chmod(0o755)
    (where / "model").mkdir(exist_ok=True)
    (where / "model" / "config.json").write_text("{}")
    prof = where / "stub.yaml"
    prof.write_text(
        f"name: tune-bench\nvllm: {{version: '0.32.0'}}\nmodel: {{id: {where / 'model'}, served_name: tiny}}\n"
        "resources: {gpus: 0}\nbatching: {max_num_seqs: 1}\n"  # deliberately mistuned: one at a time
    )
    env = {"VLLMTUNE_VLLM": str(fake), "VLLMTUNE_STATE_DIR": str(where / "state")}
    return prof, env


def _tune(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "vllmtune", "tune", *argv, "--output", "json"]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if r.returncode:
        raise SystemExit(f"vllmtune tune exited {r.returncode}")
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def _best(data: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in data["trials"] if t["trial"] == data["best"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", help="the input profile (with --stub: a built-in stub profile)")
    ap.add_argument("--slo", required=True)
    ap.add_argument("--workload", default="random")
    ap.add_argument("--space", action="append", default=[])
    ap.add_argument("--runtime", default="local", choices=("local", "docker"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="directory for grid/ and tune/ (default: a temporary one)")
    ap.add_argument("--stub", action="store_true", help="the stub server behind a fake vllm, no vLLM")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a, rest = ap.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: for both tune runs
    # the tune runs start in the checkout: paths given relative to the caller's directory are resolved here
    out = Path(a.out or tempfile.mkdtemp(prefix="tune-vs-grid-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    profile = a.profile if not a.profile or a.profile.startswith("preset:") else str(Path(a.profile).resolve())
    workload = str(Path(a.workload).resolve()) if Path(a.workload).is_file() else a.workload
    if a.stub:
        prof, extra = _stub_setup(out)
        profile, env = str(prof), {**env, **extra}
    if not profile:
        raise SystemExit("give a PROFILE (or --stub)")
    common = [profile, "--slo", a.slo, "-w", workload, "--runtime", a.runtime, "--seed", str(a.seed)]
    common += [f"--space={s}" for s in a.space] + rest
    plan = _tune([*common, "--trials", "100000", "--dry-run"], env)
    grid = int(plan["trial_budget"])
    budget = max(1, grid // 3)
    print(f"grid: {grid} servers (every runnable configuration and the input); tune: {budget}", file=sys.stderr)
    g = _tune([*common, "--trials", str(grid), "-o", str(out / "grid")], env)
    t = _tune([*common, "--trials", str(budget), "-o", str(out / "tune")], env)
    gb, tb = _best(g), _best(t)
    ratio = tb["goodput"] / gb["goodput"] if gb["goodput"] else math.nan
    print(f"grid  ({grid} servers): best goodput {gb['goodput']:.3f} req/s  {gb['values']}")
    print(f"tune  ({budget} servers): best goodput {tb['goodput']:.3f} req/s  {tb['values']}")
    print(f"tune / grid: {ratio:.3f} ({'within' if ratio >= 0.95 else 'NOT within'} 5% of the grid's best)")
    m = t.get("vs_input")
    if m:
        lo, hi = m["ci95"]
        print(f"tune's winner vs the input: {m['delta']:+.3f} req/s, 95% CI [{lo:+.3f}, {hi:+.3f}]: {m['verdict']}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
