"""Hostile string values in a profile reach the process exactly as written, on every target."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.k8s_expand import as_run, expand
from vllmtune.errors import ProfileError
from vllmtune.plan import load_plan
from vllmtune.render import render
from vllmtune.render.k8s import k8s_literal

HOSTILE = "$(HF_TOKEN)"

PROFILE = """\
name: my-llm
description: "{v} desc"
vllm:
  version: "0.32.0"
model:
  id: "org/m{v}"
server:
  extra_args: ["--chat-template={v}", "$${v}", "$$", "tail$"]
  env:
    FOO: "{v}"
    BAR: "$${v}"
  hf_token: {{env: HF_TOKEN, secret: {{name: hf, key: token}}}}
"""


def containers(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict):
        found = [obj] if "image" in obj and "name" in obj else []
        return found + [c for v in obj.values() for c in containers(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in containers(v)]
    return []


@pytest.mark.parametrize(
    "text", ["$(HF_TOKEN)", "$$(HF_TOKEN)", "$$", "a$", "$x $(date +%s) $(( 1 + 2 ))", "$$$(A)", "plain"]
)
def test_k8s_literal_survives_expansion(text: str) -> None:
    assert expand(k8s_literal(text), {"HF_TOKEN": "LEAKED", "A": "LEAKED"}) == text


def test_rendered_kubernetes_passes_every_value_literally(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(v=HOSTILE))
    docs = [d for d in yaml.safe_load_all(render(load_plan(str(path)), "kubernetes")) if d]
    env = {"HF_TOKEN": "LEAKED", "FOO": "LEAKED", "BAR": "LEAKED"}
    seen = []
    for c in containers(docs):
        for s in [*c.get("command", []), *c.get("args", [])] + [v["value"] for v in c.get("env", []) if "value" in v]:
            assert "LEAKED" not in expand(s, env), s
            seen.append(expand(s, env))
    for wanted in ("org/m$(HF_TOKEN)", "--chat-template=$(HF_TOKEN)", "$$$(HF_TOKEN)", "$$", "tail$"):
        assert wanted in seen
    assert [v for c in containers(docs) for v in c.get("env", []) if v["name"] in ("FOO", "BAR")] == [
        {"name": "BAR", "value": "$$$$$$(HF_TOKEN)"},
        {"name": "FOO", "value": "$$(HF_TOKEN)"},
    ]


def test_the_renderers_own_scripts_still_run_after_expansion() -> None:
    # The multi-node leader script uses $(...) and $(( )) on purpose: Kubernetes hands bash the original.
    from vllmtune.render.k8s import LEADER_SH

    assert expand(k8s_literal(LEADER_SH), {}) == LEADER_SH
    assert k8s_literal(LEADER_SH) != LEADER_SH
    assert re.search(r"\$\(", LEADER_SH)


BREAKS = ["a\x85b", "a\u2028b", "a\u2029b", "tail\x85", "a\x85b\n"]


@pytest.mark.parametrize("value", BREAKS)
@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_yaml_line_break_characters_round_trip_exactly(value: str, target: str, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    quoted = json.dumps(value)  # a YAML double-quoted scalar
    path.write_text(
        'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: org/m\n'
        f"server:\n  extra_args: [{json.dumps('--chat-template=' + value)}]\n  env:\n    FOO: {quoted}\n"
    )
    text = render(load_plan(str(path)), target)
    docs = [d for d in yaml.safe_load_all(text) if d]
    if target == "compose":
        service = docs[0]["services"]["vllm"]
        assert "--chat-template=" + value in service["command"]
        assert service["environment"]["FOO"] == value
    else:
        [c] = [as_run(c) for c in containers(docs) if "--chat-template=" + value in c.get("args", [])]
        assert {"name": "FOO", "value": value} in c["env"]


def test_nul_is_refused_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: "org/m\\0x"\n')
    with pytest.raises(ProfileError) as info:
        load_plan(str(path))
    assert str(info.value) == (
        f"{path}:5: model.id: contains a NUL character (\\0), which no command line, environment or shell "
        "can carry; remove it"
    )
