"""profile.loader's deep_merge (how `extends` and `vllmtune tune`'s trial files combine documents)."""

from __future__ import annotations

from vllmtune.profile.loader import deep_merge


def test_deep_merge_merges_mappings_and_replaces_everything_else() -> None:
    parent = {"model": {"id": "a", "max_model_len": 4096}, "server": {"extra_args": ["--x"]}, "name": "p"}
    child = {"model": {"max_model_len": 8192}, "server": {"extra_args": ["--y"]}, "prefix_caching": True}
    assert deep_merge(parent, child) == {
        "model": {"id": "a", "max_model_len": 8192},
        "server": {"extra_args": ["--y"]},  # lists replace, never concatenate
        "name": "p",
        "prefix_caching": True,
    }
    assert parent == {"model": {"id": "a", "max_model_len": 4096}, "server": {"extra_args": ["--x"]}, "name": "p"}
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}  # a scalar replaces a mapping
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
