"""What the profile models' field metadata says about vLLM: each field that maps onto one vLLM
argument carries its argparse ``dest`` (``json_schema_extra={"x-vllm-dest": ...}``), and each
lever's field its lever (``"x-lever"``, the key of :mod:`vllmtune.levers`). Both show in the
JSON schema (``vllmtune schema``); this module reads them back from the models, so the
mapping is declared once, on the fields.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from vllmtune.profile.models import Profile

DEST_KEY = "x-vllm-dest"
LEVER_KEY = "x-lever"
FieldPath = tuple[str, ...]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (``X | None``, ``list[X]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def field_metadata(model: type[BaseModel] = Profile, prefix: FieldPath = ()) -> list[tuple[FieldPath, dict[str, Any]]]:
    """Every field of the profile (in declaration order, depth first) with its metadata."""
    out: list[tuple[FieldPath, dict[str, Any]]] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        out.append((path, dict(extra)))
        for sub in _models_in(info.annotation):
            out += field_metadata(sub, path)
    return out


def vllm_dests() -> dict[FieldPath, str]:
    """profile field path -> the vLLM argparse dest its value becomes."""
    return {path: str(meta[DEST_KEY]) for path, meta in field_metadata() if DEST_KEY in meta}


def lever_fields() -> dict[FieldPath, str]:
    """profile field path -> the key of the lever it holds (``vllmtune.levers``)."""
    return {path: str(meta[LEVER_KEY]) for path, meta in field_metadata() if LEVER_KEY in meta}
