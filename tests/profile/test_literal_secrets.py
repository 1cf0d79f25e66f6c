"""Literal secrets are refused wherever a profile string can carry them (whole messages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.profile.test_errors import BASE, errors_of

REF = "{env: NAME} (docker, compose) and/or {secret: {name: S, key: K}} (kubernetes)"
TOKEN = (
    "looks like a literal secret (an access token); never write secrets in a profile: "
    f"server.hf_token and server.api_key take {REF}"
)
URL = (
    "a URL with credentials (user:password@) is a literal secret; remove them from the URL and pass them by "
    f"reference (server.hf_token, server.api_key, prompt_cache.redis_url take {REF})"
)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

CASES = {
    "--api-key flag": (
        BASE + "server:\n  extra_args: [--api-key, sk-abcdefghijklmnopqrstu]\n",
        "p.yaml:7: server.extra_args[0]: --api-key passes a secret on the command line; remove it and set "
        f"server.api_key: {REF}",
    ),
    "--api-key= flag": (
        BASE + "server:\n  extra_args: [--api-key=whatever]\n",
        "p.yaml:7: server.extra_args[0]: --api-key passes a secret on the command line; remove it and set "
        f"server.api_key: {REF}",
    ),
    "--hf-token flag": (
        BASE + "server:\n  extra_args: [--hf-token=x]\n",
        "p.yaml:7: server.extra_args[0]: --hf-token passes a secret on the command line; remove it and set "
        f"server.hf_token: {REF}",
    ),
    "sk- in env": (BASE + "server:\n  env:\n    FOO: sk-abcdefghijklmnopqrstu\n", f"p.yaml:8: server.env.FOO: {TOKEN}"),
    "hf_ in env": (
        BASE + "server:\n  env:\n    FOO: hf_abcdefghijklmnopqrstuvw\n",
        f"p.yaml:8: server.env.FOO: {TOKEN}",
    ),
    "ghp_ in env": (
        BASE + "server:\n  env:\n    FOO: ghp_abcdefghijklmnopqrstuvwxyz\n",
        f"p.yaml:8: server.env.FOO: {TOKEN}",
    ),
    "JWT in env": (BASE + f"server:\n  env:\n    FOO: {JWT}\n", f"p.yaml:8: server.env.FOO: {TOKEN}"),
    "token inside an arg value": (
        BASE + "server:\n  extra_args: ['--chat-template=sk-abcdefghijklmnopqrstu']\n",
        f"p.yaml:7: server.extra_args[0]: {TOKEN}",
    ),
    "credentials in the model id": (
        BASE.replace("id: meta-llama/Llama-3.1-8B-Instruct", "id: https://user:pw@example.com/m"),
        f"p.yaml:5: model.id: {URL}",
    ),
    "credentials in a LoRA source": (
        BASE + "  served_name: base\nlora:\n  adapters:\n    - {name: sql, source: 'https://user:pw@host/sql'}\n",
        f"p.yaml:9: lora.adapters[0].source: {URL}",
    ),
    "redis password in an env URL": (
        BASE + "server:\n  env:\n    CACHE: 'redis://:pw@redis:6379/0'\n",
        f"p.yaml:8: server.env.CACHE: {URL}",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_literal_secret_is_refused(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    assert errors_of(tmp_path, text) == expected


def test_ordinary_values_pass(tmp_path: Path) -> None:
    from vllmtune.profile.loader import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(BASE + "server:\n  env:\n    FOO: skip-this\n    URL: 'https://example.com/x'\n")
    assert load_profile(path).profile.server.env == {"FOO": "skip-this", "URL": "https://example.com/x"}
