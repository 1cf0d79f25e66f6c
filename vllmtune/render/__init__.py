"""Pure functions plan -> text, one module per target, and the writer for ``-o``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllmtune.errors import RenderError

if TYPE_CHECKING:  # the plan (and pydantic behind it) is not needed to name a target
    from vllmtune.plan import DeploymentPlan

# The deployment targets: every profile renders to each of them.
TARGETS = ("docker", "compose", "kubernetes")
# Companion outputs, rendered on request: the checkpoint-producing job, the dashboard.
EXTRA_TARGETS: tuple[str, ...] = ("quantize-job", "quantize-script", "grafana")
# Other stacks' formats (issue 20): module, render function, warnings function (render/coverage.py).
EXPORTS = {
    "vllm-config": ("vllm_config", "render_vllm_config", "vllm_config_warnings"),
    "production-stack": ("production_stack", "render_production_stack", "production_stack_warnings"),
    "kserve": ("kserve", "render_kserve", "kserve_warnings"),
    "llm-d": ("llmd", "render_llmd", "llmd_warnings"),
}
EXTRA_TARGETS += tuple(EXPORTS)
ALIASES = {"docker-run": "docker", "k8s": "kubernetes", "kube": "kubernetes", "dashboard": "grafana"}


def resolve_target(name: str) -> str:
    """Canonical target name; raises RenderError with the choices."""
    target = ALIASES.get(name, name)
    if target not in TARGETS + EXTRA_TARGETS:
        raise RenderError(
            f"unknown target {name!r}; choose one of: {', '.join(TARGETS + EXTRA_TARGETS)} (aliases: k8s)"
        )
    return target


def _export(target: str, index: int) -> Callable[[DeploymentPlan], Any]:
    import importlib

    module = importlib.import_module(f"vllmtune.render.{EXPORTS[target][0]}")
    fn: Callable[[DeploymentPlan], Any] = getattr(module, EXPORTS[target][index])
    return fn


def export_warnings(plan: DeploymentPlan, target: str) -> tuple[str, ...]:
    """The profile fields an exported target cannot express (empty for vllmtune's own targets)."""
    target = resolve_target(target)
    return tuple(_export(target, 2)(plan)) if target in EXPORTS else ()


def render_strict(plan: DeploymentPlan, target: str) -> str:
    """``render --strict``: as ``render``, but a field the target cannot express is an error."""
    from vllmtune.render.coverage import refuse_if_strict

    refuse_if_strict(resolve_target(target), export_warnings(plan, target), strict=True)
    return render(plan, target)


def _renderer(target: str) -> Callable[[DeploymentPlan], str]:
    # Import only the renderer asked for.
    if target in EXPORTS:
        return _export(target, 1)
    if target == "docker":
        from vllmtune.render.docker import render_docker

        return render_docker
    if target == "compose":
        from vllmtune.render.compose import render_compose

        return render_compose
    if target == "quantize-job":
        from vllmtune.render.quantize import render_quantize_job

        return render_quantize_job
    if target == "quantize-script":
        from vllmtune.render.quantize import render_quantize_script

        return render_quantize_script
    if target == "grafana":
        from vllmtune.render.grafana import render_grafana

        return render_grafana
    from vllmtune.render.kubernetes import render_kubernetes

    return render_kubernetes


def render(plan: DeploymentPlan, target: str) -> str:
    """Render one target to text (Kubernetes: a multi-document stream)."""
    target = resolve_target(target)
    if target in ("docker", "compose"):
        refusal = plan.single_node_only(f"the {target} target")
        if refusal:
            raise RenderError(refusal)
    return _renderer(target)(plan)


def targets_for(plan: DeploymentPlan) -> tuple[str, ...]:
    """The deployment targets a plan renders to (a multi-node server: Kubernetes only)."""
    return ("kubernetes",) if plan.multi_node else TARGETS


def is_directory_output(output: str) -> bool:
    """``-o k8s/`` (or an existing directory) asks for one file per object."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def render_files(plan: DeploymentPlan, target: str, output: str) -> dict[Path, str]:
    """What ``-o OUTPUT`` writes: path -> text. Kubernetes into a directory writes one file
    per object; every other case writes one file."""
    target = resolve_target(target)
    out = Path(output)
    is_dir = is_directory_output(output)
    if target == "kubernetes" and is_dir:
        from vllmtune.render.kubernetes import render_kubernetes_files

        return {out / name: text for name, text in render_kubernetes_files(plan).items()}
    if is_dir:
        raise RenderError(f"{output}: is a directory; give a file name for the {target} target")
    return {out: render(plan, target)}


def write_files(files: dict[Path, str], mode: int | None = None) -> None:
    """Write every file atomically (temp file + rename), creating parent directories."""
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            if mode is not None:
                os.chmod(tmp, mode)
            else:
                os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            raise RenderError(f"{path}: cannot write: {exc.strerror}") from None
