"""The profile JSON Schema, from the pydantic models' fields and docstrings."""

from __future__ import annotations

from typing import Any

from vllmtune import __version__
from vllmtune.profile.models import Profile


def profile_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a profile."""
    schema = Profile.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://vllmtune.dev/schema/profile-{__version__}.json",
        **schema,
    }
