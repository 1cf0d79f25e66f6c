"""``vllmtune fit``: will the model fit the GPU (or, with --from-log, what vLLM said beside it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtune.commands.common import PROFILE_HELP
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class FitArgs:
    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    gpu: str | None = opt(
        "--gpu", default=None, help="GPU model, e.g. H100-80GB, A100-40GB, L4 (default: resources.gpu_type)."
    )
    gpu_memory: str | None = opt(
        "--gpu-memory",
        default=None,
        metavar="SIZE",
        help="One GPU's total memory as torch reports it, e.g. 23.58GiB: any GPU, in the catalog or not "
        "(default: resources.gpu_memory; with --gpu: that GPU's kernels, this memory).",
    )
    from_log: str | None = opt(
        "--from-log",
        default=None,
        metavar="LOG",
        help="A vLLM start-up log: print each figure it states beside the estimate.",
    )
    suggest: bool = opt("--suggest", default=False, help="Also list changes that make it fit or fit more sequences.")


@dataclass(frozen=True)
class FitResult:
    report: dict[str, Any]
    from_log: bool  # the report is --from-log's (figures beside the estimate), not a verdict

    @property
    def fits(self) -> bool:
        return self.from_log or self.report["fit"] != "does not fit"


def run(args: FitArgs) -> FitResult:
    from vllmtune.errors import FitError
    from vllmtune.fit import fit_report
    from vllmtune.modelfacts.sizes import parse_size
    from vllmtune.profile.loader import load_profile

    memory: int | None = None
    if args.gpu_memory is not None:
        try:
            memory = parse_size(args.gpu_memory)
        except ValueError as exc:
            raise FitError(f"--gpu-memory: {exc}") from None
    gpu = args.gpu
    if gpu is None and not args.profile.startswith("preset:"):
        gpu = load_profile(args.profile).profile.resources.gpu_type
    if args.from_log is not None:
        from vllmtune.fit.fromlog import from_log_report

        return FitResult(from_log_report(args.profile, args.from_log, gpu, memory), True)
    return FitResult(fit_report(args.profile, gpu, args.suggest, memory), False)
