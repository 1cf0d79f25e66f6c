"""GPU/CPU memory planning (``vllmtune fit``): will a profile's model, context length and
levers fit, and what to change when they do not. The math is documented in
:mod:`vllmtune.fit.estimate`; model facts come from :mod:`vllmtune.fit.models`."""

from __future__ import annotations

from vllmtune.fit.command import fit_inputs, fit_problems, fit_report, fit_table, report_for
from vllmtune.fit.estimate import FitInputs, FitResult, estimate, suggestions
from vllmtune.fit.gpus import GPUS, GpuSpec, find_gpu
from vllmtune.fit.models import FitError, ModelArch, resolve_model

__all__ = [
    "GPUS",
    "FitError",
    "FitInputs",
    "FitResult",
    "GpuSpec",
    "ModelArch",
    "estimate",
    "find_gpu",
    "fit_inputs",
    "fit_problems",
    "fit_report",
    "fit_table",
    "report_for",
    "resolve_model",
    "suggestions",
]
