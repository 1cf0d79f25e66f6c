"""``vllmtune ladder``'s options, declared once (:mod:`vllmtune.util.argspec`)."""

from __future__ import annotations

from dataclasses import dataclass

from vllmtune.bench import workloads
from vllmtune.commands.common import PROFILE_HELP, RUNTIMES
from vllmtune.util.argspec import arg, opt


@dataclass
class LadderArgs:
    """Everything ``vllmtune ladder`` takes."""

    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    out: str = opt("--out", "-o", default="ladder", help="Directory for rung profiles, results, report.md, ladder.png.")
    workload: str = opt(
        "--workload",
        "-w",
        default="mixed",
        help="mixed by default (shared prefixes + repeats: every lever has work). " + workloads.help_text(),
    )
    requests: int = opt("--requests", "-n", default=100, help="Measured requests per rung.")
    concurrency: int = opt("--concurrency", "-c", default=4, help="Requests in flight.")
    max_tokens: int | None = opt("--max-tokens", default=None, help="Output budget per request.")
    duplicate_share: float = opt(
        "--duplicate-share", default=0.3, help="Share of repeated requests (mixed/duplicates)."
    )
    seed: int = opt("--seed", default=0, help="Same seed, same requests on every rung.")
    gpu_hour_usd: float | None = opt(
        "--gpu-hour-usd", default=None, help="GPU price per hour: adds $ per 1k requests and per 1M output tokens."
    )
    runtime: str = opt("--runtime", "-r", default="docker", choices=RUNTIMES, help="docker or local.")
    port: int | None = opt("--port", default=None, help="Serve every rung on this port.")
    rungs: str | None = opt(
        "--rungs", default=None, help="Only these rungs (baseline always): cache,prefix,batch,quant,spec."
    )
    repeat: int = opt(
        "--repeats",
        "--repeat",
        default=1,
        help="Interleaved rounds: every rung once per round (A B A B ...), each brought up again; the "
        "rounds' requests are pooled into each figure's 95% CI.",
    )
    warmup: int = opt("--warmup", default=2, help="Requests sent to each rung's server before measuring (excluded).")
    resume: bool = opt("--resume", default=False, help="Continue an interrupted ladder from its last finished rung.")
    timeout: float = opt("--timeout", default=1800.0, help="Seconds each rung may take to start.")
    slo: str | None = opt(
        "--slo",
        default=None,
        help="Service-level objectives (bench's, e.g. ttft_p99=500ms,e2e_p99=5s): the highest request rate the "
        "baseline meets them at is found first (bench --find-max-rate), then every rung runs open loop at that "
        "rate; cost per successful request and goodput are reported there.",
    )
    max_trials: int = opt("--max-trials", default=6, help="--slo: runs of the baseline's rate search at most.")
    max_error_rate: float = opt(
        "--max-error-rate",
        default=0.05,
        help="A rung whose requests fail more often than this (0.05 = 5%) is a failed rung; the ladder "
        "goes on and exits 1.",
    )
