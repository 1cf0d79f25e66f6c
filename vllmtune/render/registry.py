"""Every render target, declared once: the CLI's choices and help, ``render``, ``diff``,
``render-check`` and the golden tests read this table. A new target is its module, one
line here and its golden files (CONTRIBUTING.md, "A new render target").

Imports nothing heavy: naming a target never imports its renderer (``module:function`` is
imported when that target is rendered).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from vllmtune.plan import DeploymentPlan


@dataclass(frozen=True)
class Target:
    """One render target."""

    name: str
    kind: Literal["deployment", "companion"]  # every profile renders to the first; the second on request
    renderer: str  # "module:function" under vllmtune.render: plan -> text
    suffix: str  # file name after the profile's: golden files, and what -o names suggest
    executable: bool = False  # written with mode 0755 (a script)
    aliases: tuple[str, ...] = ()
    per_object: str | None = None  # "module:function" plan -> {file: text}, for -o DIR/
    one_machine: bool = False  # refuses a plan that spans nodes
    help: str = ""
    warnings: str | None = None  # "module:function" plan -> the profile fields it cannot express

    def load(self) -> Callable[[DeploymentPlan], str]:
        """The renderer, imported now."""
        fn: Callable[[DeploymentPlan], str] = _function(self.renderer)
        return fn

    def load_per_object(self) -> Callable[[DeploymentPlan], dict[str, str]] | None:
        if self.per_object is None:
            return None
        fn: Callable[[DeploymentPlan], dict[str, str]] = _function(self.per_object)
        return fn

    @property
    def mode(self) -> int | None:
        """File mode for ``-o`` (None: the writer's default, 0644)."""
        return 0o755 if self.executable else None


def _function(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"vllmtune.render.{module}"), name)


REGISTRY: tuple[Target, ...] = (
    Target("docker", "deployment", "docker:render_docker", "sh", executable=True, aliases=("docker-run",),
           one_machine=True, help="a bash script with one docker run per container"),
    Target("compose", "deployment", "compose:render_compose", "compose.yaml", one_machine=True,
           help="a compose-spec file"),
    Target("kubernetes", "deployment", "k8s:render_kubernetes", "k8s.yaml", aliases=("k8s", "kube"),
           per_object="k8s:render_kubernetes_files", help="manifests (one file per object with -o DIR/)"),
    Target("quantize-job", "companion", "quantize:render_quantize_job", "quantize-job.yaml",
           help="the llm-compressor Kubernetes Job writing quantization.checkpoint"),
    Target("quantize-script", "companion", "quantize:render_quantize_script", "quantize-script.sh", executable=True,
           help="the same job as one docker run"),
    Target("grafana", "companion", "grafana:render_grafana", "grafana.json", aliases=("dashboard",),
           help="the Grafana dashboard"),
    # other stacks' formats (issue 20; render/coverage.py: what each cannot express)
    Target("vllm-config", "companion", "vllm_config:render_vllm_config", "vllm-config.yaml",
           help="the file for vllm serve --config", warnings="vllm_config:vllm_config_warnings"),
    Target("production-stack", "companion", "production_stack:render_production_stack",
           "production-stack.values.yaml", help="Helm values for production-stack's vllm-stack",
           warnings="production_stack:production_stack_warnings"),
    Target("kserve", "companion", "kserve:render_kserve", "kserve.yaml",
           help="a KServe LLMInferenceService", warnings="kserve:kserve_warnings"),
    Target("llm-d", "companion", "llmd:render_llmd", "llm-d.values.yaml",
           help="Helm values for llm-d's modelservice chart", warnings="llmd:llmd_warnings"),
)  # fmt: skip

BY_NAME = {t.name: t for t in REGISTRY}
ALIASES = {alias: t.name for t in REGISTRY for alias in t.aliases}
TARGETS = tuple(t.name for t in REGISTRY if t.kind == "deployment")
EXTRA_TARGETS = tuple(t.name for t in REGISTRY if t.kind == "companion")


def target_help() -> str:
    """The ``--target`` help, from the table: each name, its aliases and what it writes."""
    parts = []
    for t in REGISTRY:
        alias = f" ({', '.join(t.aliases)})" if t.aliases else ""
        parts.append(f"{t.name}{alias}: {t.help}")
    return "; ".join(parts) + "."
