"""profile.yamlio's public names called directly: format_path (a problem's key path as the user
spells it) and dump_yaml_stream (several documents, each opened by ---, as kubectl apply -f reads)."""

from __future__ import annotations

import yaml

from vllmtune.profile.yamlio import dump_yaml_stream, format_path


def test_format_path_dots_keys_and_brackets_indexes() -> None:
    assert format_path(("server", "extra_args", 2)) == "server.extra_args[2]"
    assert format_path(("lora", "adapters", 0, "path")) == "lora.adapters[0].path"
    assert format_path(("name",)) == "name"
    assert format_path(()) == ""
    assert format_path((0, "a")) == "[0].a"


def test_dump_yaml_stream_separates_documents() -> None:
    docs = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "llm"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x: 1\n", "b": "on"}},
    ]
    text = dump_yaml_stream(docs)
    assert text == (
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: llm\n"
        "---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: |\n    x: 1\n  b: 'on'\n"
    )
    assert list(yaml.safe_load_all(text)) == docs
    assert dump_yaml_stream([]) == ""
