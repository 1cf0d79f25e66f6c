"""The profile fields' vLLM metadata: each field that maps onto one vLLM argument carries its
argparse ``dest`` (``"x-vllm-dest"`` in its ``json_schema_extra``), and each lever's field its
lever (``"x-lever"``, a key of :mod:`vllmtune.levers`). Both show in the JSON schema
(``vllmtune schema``). :func:`meta` writes them on a field (``profile/models.py``); the readers
take the model to read (``vllm_dests(Profile)``), so this module imports no model and the
mapping is declared once, on the fields.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

DEST_KEY = "x-vllm-dest"
LEVER_KEY = "x-lever"
FieldPath = tuple[str, ...]


def meta(dest: str | None = None, *, lever: str | None = None) -> dict[str, Any]:
    """A field's ``json_schema_extra``: the vLLM argument ``dest`` it becomes and/or its ``lever``."""
    out: dict[str, Any] = {}
    if dest is not None:
        out[DEST_KEY] = dest
    if lever is not None:
        out[LEVER_KEY] = lever
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (``X | None``, ``list[X]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def field_metadata(model: type[BaseModel], prefix: FieldPath = ()) -> list[tuple[FieldPath, dict[str, Any]]]:
    """Every field of ``model`` and its sub-models (declaration order, depth first), with its metadata."""
    out: list[tuple[FieldPath, dict[str, Any]]] = []
    for name, info in model.model_fields.items():
        path = (*prefix, info.alias or name)  # the profile's key (scheduling.async is the field async_)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        out.append((path, {k: v for k, v in extra.items() if k in (DEST_KEY, LEVER_KEY)}))
        for sub in _models_in(info.annotation):
            out += field_metadata(sub, path)
    return out


def vllm_dests(model: type[BaseModel]) -> dict[FieldPath, str]:
    """field path -> the vLLM argparse dest its value becomes."""
    return {path: str(meta[DEST_KEY]) for path, meta in field_metadata(model) if DEST_KEY in meta}


def lever_fields(model: type[BaseModel]) -> dict[FieldPath, str]:
    """field path -> the key of the lever it holds (``vllmtune.levers``)."""
    return {path: str(meta[LEVER_KEY]) for path, meta in field_metadata(model) if LEVER_KEY in meta}
