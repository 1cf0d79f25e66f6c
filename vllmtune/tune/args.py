"""``vllmtune tune``'s options, declared once (:mod:`vllmtune.util.argspec`)."""

from __future__ import annotations

from dataclasses import dataclass

from vllmtune.commands.common import PROFILE_HELP, RUNTIMES
from vllmtune.util.argspec import arg, opt


@dataclass
class TuneArgs:
    """Everything ``vllmtune tune`` takes."""

    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    slo: str = opt("--slo", help="The SLO goodput is measured at, e.g. ttft_p99=800ms,itl_p99=60ms.")
    workload: str = opt(
        "--workload", "-w", default="mixed", help="A built-in workload (mixed, shared-prefix, ...) or a JSONL file."
    )
    space: list[str] = opt(  # noqa: RUF009
        "--space",
        many=True,
        metavar="PATH=VALUES",
        help="A knob and its values (repeatable): a..b (integers; wide ranges as powers of two), a..b:STEP, "
        "a|b|c, true|false. Default: the profile's levers the pinned vLLM has.",
    )
    trials: int = opt("--trials", default=24, help="Servers started at most (the input profile is the first).")
    out: str = opt("--out", "-o", default="tune", help="Directory for trials.jsonl, best.yaml, the table, the plot.")
    runtime: str = opt("--runtime", "-r", default="docker", choices=RUNTIMES, help="docker or local.")
    resume: bool = opt("--resume", default=False, help="Continue from OUT/trials.jsonl; no finished trial is repeated.")
    seed: int = opt("--seed", default=0, help="The optimiser's and the workload's seed.")
    dry_run: bool = opt(
        "--dry-run",
        default=False,
        help="Print the space after pruning, the budget and the estimated time; start nothing.",
    )
    requests: int = opt("--requests", "-n", default=100, help="Measured requests per rate tried.")
    concurrency: int = opt("--concurrency", "-c", default=16, help="Requests in flight at most.")
    max_tokens: int | None = opt("--max-tokens", default=None, help="Output budget per request.")
    rate_trials: int = opt(
        "--rate-trials", default=4, help="Runs per configuration of the max-rate search (bench --max-trials)."
    )
    timeout: float = opt("--timeout", default=1800.0, help="Seconds each server may take to start.")
