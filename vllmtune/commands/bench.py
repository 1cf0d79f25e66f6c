"""``vllmtune bench`` and ``vllmtune compare`` (options: :class:`BenchArgs`, :class:`CompareArgs`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vllmtune.bench.command import BenchArgs, BenchError, CompareArgs

__all__ = ["BenchArgs", "BenchResult", "CompareArgs", "CompareResult", "bench", "compare"]


@dataclass(frozen=True)
class BenchResult:
    result: dict[str, Any]  # the result JSON (bench.report.build_result); with --calibrate: the figures
    calibrated: bool = False
    wrote: list[str] = field(default_factory=list)  # files written: the result (-o), the requests
    problem: str | None = None  # too many requests failed (exit 1 after the figures are shown)

    @property
    def partial(self) -> bool:
        return bool(self.result.get("partial"))


def bench(
    args: BenchArgs, progress: Callable[[int, int], None] | None = None, say: Callable[[str], None] | None = None
) -> BenchResult:
    """Run the benchmark (``--find-max-rate``: the search; ``--calibrate``: the client's ceiling)."""
    from vllmtune.bench import command

    if args.calibrate:
        return BenchResult(dict(command.calibrate()), calibrated=True)
    if not args.target:
        raise BenchError("give an endpoint URL or a profile (or --calibrate)")
    if args.find_max_rate:
        result = command.find_max_rate(args, args.max_trials, say)
    else:
        result = command.run_bench(args, progress)
    wrote = []
    if args.save_requests:
        wrote.append(args.save_requests + (" (the best trial's requests)" if args.find_max_rate else ""))
    if args.out:
        command.write_result(result, args.out)
        wrote.append(args.out)
    return BenchResult(result, wrote=wrote, problem=command.error_rate_problem(result, args.max_error_rate))


@dataclass(frozen=True)
class CompareResult:
    text: str  # in the requested format
    warnings: list[str]


def compare(args: CompareArgs) -> CompareResult:
    from vllmtune.bench.command import compare as do_compare

    text, warnings = do_compare(args.results, args.gpu_hour_usd, args.output, args.plot, args.quality_drop, args.strict)
    return CompareResult(text, list(warnings))
