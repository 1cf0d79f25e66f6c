"""The profile JSON Schema, from the pydantic models' fields and docstrings.

A profile with ``extends`` only overrides what it names, so for those files every key is
optional (the parent supplies the rest): the schema says so with if/then/else, and editors
and ``check-jsonschema`` accept both whole and partial profiles.
"""

from __future__ import annotations

import copy
from typing import Any

from vllmtune import __version__
from vllmtune.profile.models import Profile


def _partial(node: Any) -> Any:
    """Copy with every "required" dropped and $refs pointed at the Partial* definitions."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "required":
                continue
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = "#/$defs/Partial" + v.removeprefix("#/$defs/")
            else:
                out[k] = _partial(v)
        return out
    if isinstance(node, list):
        return [_partial(v) for v in node]
    return node


def profile_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a profile."""
    full = Profile.model_json_schema(mode="validation")
    defs = full.pop("$defs", {})
    profile = copy.deepcopy(full)
    all_defs = dict(defs)
    all_defs["Profile"] = profile
    for name, d in list(all_defs.items()):
        all_defs["Partial" + name] = _partial(d)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://vllmtune.dev/schema/profile-{__version__}.json",
        "title": "vllmtune profile",
        "description": profile.get("description", ""),
        "type": "object",
        "if": {"required": ["extends"]},
        "then": {"$ref": "#/$defs/PartialProfile"},
        "else": {"$ref": "#/$defs/Profile"},
        "$defs": all_defs,
    }
