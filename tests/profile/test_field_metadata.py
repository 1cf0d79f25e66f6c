"""The profile fields' vLLM metadata (``x-vllm-dest``, ``x-lever``): declared on the fields, true
to the flag catalog and the lever table, and shown in the JSON schema."""

from __future__ import annotations

from typing import Any

from vllmtune.flags.catalog import versions_with_dest
from vllmtune.levers import LEVERS
from vllmtune.profile.fieldmeta import field_metadata, lever_fields, vllm_dests
from vllmtune.profile.models import Profile
from vllmtune.profile.schema import profile_schema


def test_every_declared_dest_is_a_vllm_argument_of_some_version() -> None:
    dests = vllm_dests(Profile)
    assert len(dests) >= 25
    assert {path: dest for path, dest in dests.items() if not versions_with_dest(dest)} == {}


def test_the_lever_fields_are_the_lever_tables() -> None:
    assert lever_fields(Profile) == {(lever.field,): lever.key for lever in LEVERS}


def test_a_lever_sections_dests_belong_to_that_lever() -> None:
    stray = {
        path: dest
        for lever in LEVERS
        for path, dest in vllm_dests(Profile).items()
        if path[0] == lever.field and dest not in lever.dests
    }
    assert stray == {}


def test_the_plans_field_flags_are_the_declared_dests() -> None:
    from vllmtune.plan import FIELD_FLAGS

    declared = vllm_dests(Profile)
    assert [(path, dest) for path, dest in FIELD_FLAGS if declared.get(path) != dest] == []


def test_the_dests_of_a_section() -> None:
    assert {p[1]: d for p, d in vllm_dests(Profile).items() if p[0] == "batching"} == {
        "max_num_batched_tokens": "max_num_batched_tokens",
        "max_num_seqs": "max_num_seqs",
        "chunked_prefill": "enable_chunked_prefill",
    }
    # a field without a vLLM argument carries no dest
    assert dict(field_metadata(Profile))[("prompt_cache", "ttl")] == {}


def _property(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    defs = schema["$defs"]
    node: dict[str, Any] = defs["Profile"]
    for i, key in enumerate(path):
        prop: dict[str, Any] = node["properties"][key]
        if i == len(path) - 1:
            return prop
        # step into the model: {"$ref"}, {"anyOf": [{"$ref"}, {"type": "null"}]} or {"items": {"$ref"}}
        refs = [prop, *prop.get("anyOf", []), prop.get("items", {})]
        ref = next(r["$ref"] for r in refs if "$ref" in r)
        node = defs[ref.removeprefix("#/$defs/")]
    raise AssertionError(path)


def test_the_json_schema_shows_the_metadata() -> None:
    schema = profile_schema()
    shown = {path: _property(schema, path).get("x-vllm-dest") for path in vllm_dests(Profile)}
    assert shown == vllm_dests(Profile)
    assert {(lever.field,): _property(schema, (lever.field,)).get("x-lever") for lever in LEVERS} == lever_fields(
        Profile
    )
    assert _property(schema, ("model", "max_model_len")) == {
        "anyOf": [{"exclusiveMinimum": 0, "type": "integer"}, {"type": "null"}],
        "default": None,
        "description": "Context length (prompt + output tokens) per request.",
        "title": "Max Model Len",
        "x-vllm-dest": "max_model_len",
    }
