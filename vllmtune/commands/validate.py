"""``vllmtune validate``: load, plan and render every target in memory, per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtune.errors import VllmtuneError
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class ValidateArgs:
    profiles: list[str] = arg(help="One or more profile files.", metavar="PROFILE...", many=True)  # noqa: RUF009
    gpu: str | None = opt(
        "--gpu", default=None, help="Also fail when the model does not fit this GPU (default: resources.gpu_type)."
    )


@dataclass(frozen=True)
class ValidateResult:
    files: list[dict[str, Any]]  # one per profile: file, ok, errors, warnings (and name... when ok)

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.files)


def run(args: ValidateArgs) -> ValidateResult:
    """Validate each file independently (one bad file does not hide the others)."""
    return ValidateResult([validate_one(p, args.gpu) for p in args.profiles])


def validate_one(path: str, gpu: str | None = None) -> dict[str, Any]:
    """Validate one profile; never raises for the user's mistakes."""
    from vllmtune.plan import build_plan
    from vllmtune.profile.loader import load_profile
    from vllmtune.render import render, targets_for

    try:
        loaded = load_profile(path)
        plan = build_plan(loaded)
        for target in targets_for(plan):
            render(plan, target)
        gpu = gpu or loaded.profile.resources.gpu_type
        fit_warns: list[str] = []
        if gpu or plan.gpu_memory_bytes:  # a known GPU: not fitting is an error, before a 20-minute download
            from vllmtune.fit import fit_problems, fit_warnings

            problems = fit_problems(loaded, plan, gpu)
            if problems:
                return {"file": path, "ok": False, "errors": problems, "warnings": list(plan.warnings)}
            fit_warns = fit_warnings(loaded, plan, gpu)  # inside the error band: "may not fit"
    except VllmtuneError as exc:
        errors = [str(p) for p in getattr(exc, "problems", [])] or [f"{path}: {exc}"]
        return {"file": path, "ok": False, "errors": errors, "warnings": []}
    return {
        "file": path,
        "ok": True,
        "name": plan.name,
        "vllm_version": plan.vllm_version,
        "served_name": plan.served_name,
        "profile_hash": plan.profile_hash,
        "errors": [],
        "warnings": [*plan.warnings, *fit_warns],
    }
