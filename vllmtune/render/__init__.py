"""Pure functions plan -> text, one module per target, and the writer for ``-o``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from vllmtune.errors import RenderError

if TYPE_CHECKING:  # the plan (and pydantic behind it) is not needed to name a target
    from vllmtune.plan import DeploymentPlan

from vllmtune.render.registry import ALIASES, BY_NAME, EXTRA_TARGETS, REGISTRY, TARGETS, Target

__all__ = [
    "ALIASES",
    "EXPORTS",
    "EXTRA_TARGETS",
    "REGISTRY",
    "TARGETS",
    "Target",
    "export_warnings",
    "is_directory_output",
    "render",
    "render_files",
    "render_strict",
    "resolve_target",
    "target",
    "targets_for",
    "write_files",
]


def resolve_target(name: str) -> str:
    """Canonical target name; raises RenderError with the choices."""
    target = ALIASES.get(name, name)
    if target not in BY_NAME:
        raise RenderError(
            f"unknown target {name!r}; choose one of: {', '.join(TARGETS + EXTRA_TARGETS)} (aliases: k8s)"
        )
    return target


def target(name: str) -> Target:
    """The registry record of a target (or alias)."""
    return BY_NAME[resolve_target(name)]


# Issue 20's exporters: the function listing the profile fields each cannot express.
EXPORT_WARNINGS = {t.name: t.warnings for t in REGISTRY if t.warnings is not None}
EXPORTS = tuple(EXPORT_WARNINGS)


def export_warnings(plan: DeploymentPlan, target: str) -> tuple[str, ...]:
    """The profile fields an exported target cannot express (empty for vllmtune's own targets)."""
    import importlib

    name = resolve_target(target)
    if name not in EXPORT_WARNINGS:
        return ()
    module, _, function = EXPORT_WARNINGS[name].partition(":")
    warnings: tuple[str, ...] = getattr(importlib.import_module(f"vllmtune.render.{module}"), function)(plan)
    return warnings


def render_strict(plan: DeploymentPlan, target: str) -> str:
    """``render --strict``: as ``render``, but a field the target cannot express is an error."""
    from vllmtune.render.coverage import refuse_if_strict

    refuse_if_strict(resolve_target(target), export_warnings(plan, target), strict=True)
    return render(plan, target)


def render(plan: DeploymentPlan, target: str) -> str:
    """Render one target to text (Kubernetes: a multi-document stream)."""
    t = BY_NAME[resolve_target(target)]
    if t.one_machine:
        refusal = plan.single_node_only(f"the {t.name} target")
        if refusal:
            raise RenderError(refusal)
    return t.load()(plan)


def targets_for(plan: DeploymentPlan) -> tuple[str, ...]:
    """The deployment targets a plan renders to (a multi-node server: those that span nodes)."""
    if plan.multi_node:
        return tuple(name for name in TARGETS if not BY_NAME[name].one_machine)
    return TARGETS


def is_directory_output(output: str) -> bool:
    """``-o k8s/`` (or an existing directory) asks for one file per object."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def render_files(plan: DeploymentPlan, target: str, output: str) -> dict[Path, str]:
    """What ``-o OUTPUT`` writes: path -> text. A target with one file per object (Kubernetes)
    into a directory writes one file per object; every other case writes one file."""
    t = BY_NAME[resolve_target(target)]
    out = Path(output)
    is_dir = is_directory_output(output)
    per_object = t.load_per_object()
    if per_object is not None and is_dir:
        return {out / name: text for name, text in per_object(plan).items()}
    if is_dir:
        raise RenderError(f"{output}: is a directory; give a file name for the {t.name} target")
    return {out: render(plan, t.name)}


def write_files(files: dict[Path, str], mode: int | None = None) -> None:
    """Write every file atomically (temp file + rename), creating parent directories."""
    from vllmtune.util.files import write_atomic

    for path, text in files.items():
        try:
            write_atomic(path, text, 0o644 if mode is None else mode)
        except OSError as exc:
            raise RenderError(f"{path}: cannot write: {exc.strerror}") from None
