"""GPU/CPU memory planning (``vllmtune fit``): will a profile's model, context length and
levers fit, and what to change when they do not. The math is documented in
:mod:`vllmtune.fit.estimate`; model facts come from :mod:`vllmtune.modelfacts`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vllmtune.fit.command import fit_inputs, fit_problems, fit_report, fit_table, report_for
    from vllmtune.fit.estimate import FitInputs, FitResult, suggestions
    from vllmtune.fit.gpus import GPUS, GpuSpec, find_gpu
    from vllmtune.modelfacts.models import FitError, ModelArch, resolve_model

# Exported lazily: `vllmtune render` must not pay for the estimator and the report.
# (The function estimate is imported from vllmtune.fit.estimate: here the name is the module.)
_EXPORTS = {
    "fit_inputs": "command",
    "fit_problems": "command",
    "fit_report": "command",
    "fit_table": "command",
    "report_for": "command",
    "FitInputs": "estimate",
    "FitResult": "estimate",
    "suggestions": "estimate",
    "GPUS": "gpus",
    "GpuSpec": "gpus",
    "find_gpu": "gpus",
    "FitError": "vllmtune.modelfacts.models",
    "ModelArch": "vllmtune.modelfacts.models",
    "resolve_model": "vllmtune.modelfacts.models",
}
__all__ = [
    "GPUS",
    "FitError",
    "FitInputs",
    "FitResult",
    "GpuSpec",
    "ModelArch",
    "find_gpu",
    "fit_inputs",
    "fit_problems",
    "fit_report",
    "fit_table",
    "report_for",
    "resolve_model",
    "suggestions",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module if "." in module else f"{__name__}.{module}"), name)
