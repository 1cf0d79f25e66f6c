"""The built-in presets (``preset:NAME``), and ``vllmtune presets``: what each one is."""

from __future__ import annotations

from typing import Any

OFF_STATES = ("off", "vLLM default")


def preset_rows() -> list[dict[str, Any]]:
    """One row per preset: name, description, the levers it turns on, how to use it."""
    from vllmtune.plan import load_plan
    from vllmtune.profile.loader import load_profile, preset_names

    rows = []
    for name in preset_names():
        ref = f"preset:{name}"
        plan = load_plan(ref)
        rows.append(
            {
                "name": name,
                "description": load_profile(ref).profile.description or "",
                "levers_on": [
                    lever.split(" ", 1)[1].replace(" ", "-")
                    for lever, state, _ in plan.levers
                    if state not in OFF_STATES
                ],
                "use": f"vllmtune init NAME --preset {name}, or {ref} wherever a profile goes",
            }
        )
    return rows
