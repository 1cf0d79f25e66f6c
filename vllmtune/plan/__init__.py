"""Profile -> one frozen DeploymentPlan. Every default is resolved here.

Renderers and runtimes only read the plan: they never see ``None`` meaning "decide later",
never look at the profile and never consult the flag catalog. The vLLM argv is built here,
in the pinned version's spelling, from one table that maps profile fields to vLLM's
argparse ``dest`` names (``FIELD_FLAGS``), with the typed settings it renders beside it.

The package: ``model`` (the frozen dataclasses), ``settings`` (typed vLLM settings),
``planner`` (build_plan) over ``server`` (argv), ``deploy`` (nodes, downloads, budget,
resources), ``sidecars`` (the prompt cache) and ``units`` (sizes).
"""

from __future__ import annotations

from vllmtune.plan.base import host_path
from vllmtune.plan.model import (
    CONTAINER_ADAPTERS,
    CONTAINER_HF_CACHE,
    CONTAINER_MODELS,
    LABEL_PREFIX,
    SERVE_ENTRYPOINT_SINCE,
    SERVER_SERVICE,
    Autoscaling,
    DeploymentPlan,
    DockerReplica,
    Hardening,
    Health,
    InferencePool,
    Monitoring,
    Mount,
    MultiNode,
    PromptCachePlan,
    QuantizeJob,
    SecretEnv,
    Shm,
    Sidecar,
    SidecarHealth,
    entrypoint_for,
)
from vllmtune.plan.planner import _Planner, build_plan, load_plan  # _Planner: tests/test_cli.py patches it
from vllmtune.plan.server import FIELD_FLAGS
from vllmtune.plan.settings import (
    VLLM_DEFAULT,
    Default,
    LoraAdapterSettings,
    LoraSettings,
    SpeculativeSettings,
    VllmSettings,
    value_or,
)
from vllmtune.plan.units import docker_size, k8s_quantity

__all__ = [
    "CONTAINER_ADAPTERS",
    "CONTAINER_HF_CACHE",
    "CONTAINER_MODELS",
    "FIELD_FLAGS",
    "LABEL_PREFIX",
    "SERVER_SERVICE",
    "SERVE_ENTRYPOINT_SINCE",
    "VLLM_DEFAULT",
    "Autoscaling",
    "Default",
    "DeploymentPlan",
    "DockerReplica",
    "Hardening",
    "Health",
    "InferencePool",
    "LoraAdapterSettings",
    "LoraSettings",
    "Monitoring",
    "Mount",
    "MultiNode",
    "PromptCachePlan",
    "QuantizeJob",
    "SecretEnv",
    "Shm",
    "Sidecar",
    "SidecarHealth",
    "SpeculativeSettings",
    "VllmSettings",
    "_Planner",
    "build_plan",
    "docker_size",
    "entrypoint_for",
    "host_path",
    "k8s_quantity",
    "load_plan",
    "value_or",
]
