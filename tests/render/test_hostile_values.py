"""Hostile string values in a profile reach the process exactly as written, on every target."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.k8s_expand import expand
from vllmtune.plan import load_plan
from vllmtune.render import render
from vllmtune.render.kubernetes import k8s_literal

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
    from vllmtune.render.kubernetes import LEADER_SH

    assert expand(k8s_literal(LEADER_SH), {}) == LEADER_SH
    assert k8s_literal(LEADER_SH) != LEADER_SH
    assert re.search(r"\$\(", LEADER_SH)
