"""``vllmtune explain``: each lever, the flags it renders to, what it buys, and warnings."""

from __future__ import annotations

from typing import Any

from vllmtune.levers import ENGINE_LEVERS, KV_OFFLOAD_BACKENDS, LEVERS
from vllmtune.plan import VLLM_DEFAULT, DeploymentPlan

# What each lever buys, in the order of return per hour of work (declared in vllmtune/levers.py).
BUYS = {lever.label: lever.buys for lever in LEVERS}


def explain_data(plan: DeploymentPlan) -> dict[str, Any]:
    """The explanation as data (``--output json``)."""
    return {
        "profile": plan.name,
        "vllm_version": plan.vllm_version,
        "image": plan.image,
        "model": plan.model,
        "served_name": plan.served_name,
        "levers": [
            {"lever": lever, "state": state, "flags": list(flags), "buys": BUYS[lever]}
            for lever, state, flags in plan.levers
        ],
        "argv": list(plan.args),
        "deployment": _deployment_facts(plan),
        "warnings": list(plan.warnings),
    }


def _deployment_facts(plan: DeploymentPlan) -> dict[str, str]:
    """How the server is laid out beyond the levers (Kubernetes scale-out, served names)."""
    facts = {"served models": ", ".join(plan.served_names)}
    mn = plan.multi_node
    facts["nodes"] = f"{mn.nodes} x {mn.gpus_per_node} GPUs (LeaderWorkerSet + Ray; Kubernetes only)" if mn else "1"
    facts["weights download"] = plan.k8s_model_download
    facts["startup budget"] = plan.startup_budget
    a = plan.autoscaling
    if a is not None:
        unit = "waiting requests per replica" if a.metric == "queue" else "s p95 TTFT"
        facts["autoscaling"] = f"{a.engine} {a.min_replicas}..{a.max_replicas} replicas at {a.target:g} {unit}"
    m = plan.monitoring
    facts["metrics"] = m.scrape + (" + Grafana dashboard" if m.dashboard else "")
    if plan.quantize is not None:
        q = plan.quantize
        facts["quantize job"] = f"{q.scheme} ({q.algorithm}) -> {q.output} (-t quantize-job)"
    facts.update(engine_lever_facts(plan))
    return facts


def engine_lever_facts(plan: DeploymentPlan) -> dict[str, str]:
    """One line for each engine lever the profile sets: its value, what it buys, when it hurts."""
    facts: dict[str, str] = {}
    for setting, field, note in ENGINE_LEVERS:
        value = getattr(plan.vllm, setting)
        if value is VLLM_DEFAULT or (setting == "data_parallel_size" and value == 1):
            continue
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value).lower()
        facts[field] = f"{shown}: {note}"
        if setting == "kv_offloading_backend" and isinstance(value, str):
            facts[field] = f"{value}: {note}; {KV_OFFLOAD_BACKENDS[value]}"
    lora = plan.vllm.lora
    if lora is not VLLM_DEFAULT and lora.runtime_updates:
        facts["lora.runtime_updates"] = (
            "true: buys adapters loaded while the server runs; anyone who reaches the API can change them"
        )
    return facts


def explain_table(plan: DeploymentPlan) -> Any:
    """A rich renderable: the levers table."""
    from rich.markup import escape
    from rich.table import Table

    table = Table()  # the title line is printed by the caller, as written
    table.add_column("Lever", ratio=2)
    table.add_column("State", ratio=1)
    table.add_column("Renders", overflow="fold", ratio=3)
    for lever, state, flags in plan.levers:
        table.add_row(f"{lever}\n[dim]{BUYS[lever]}[/dim]", escape(state), escape("\n".join(flags)) or "-")
    table.add_section()
    for key, value in _deployment_facts(plan).items():
        table.add_row(escape(key), "", escape(value))
    return table
