"""Random-looking values under secret-like environment names are literal secrets; ordinary
values under such names pass; ``server.secret_env`` passes any variable by reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.profile.test_errors import BASE, errors_of
from vllmtune.plan import load_plan
from vllmtune.profile.checks import looks_random


def random_value(name: str) -> str:
    return (
        f"a random-looking value under a secret-like name is a literal secret; never write secrets in a profile: "
        f"pass it by reference, server.secret_env: {{{name}: {{env: {name}}}}} (docker, compose) and/or "
        "{secret: {name: S, key: K}} (kubernetes)"
    )


REFUSED = {
    "MY_KEY": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "SERVICE_TOKEN": "Zk3mQ9vL2pR8tW4xB7nY1cD6",
    "DB_PASSWORD": "Xk9mQ2vL8pR4tW7zB3nY6c",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI0K7MDENGbPxRfiCYzEXAMPLEKEY",
    "GCP_CREDENTIALS": "AbCdEf0123456789GhIjKl",
}


@pytest.mark.parametrize("name", REFUSED)
def test_random_value_under_a_secret_name_is_refused(name: str, tmp_path: Path) -> None:
    text = BASE + f"server:\n  env:\n    {name}: {REFUSED[name]}\n"
    assert errors_of(tmp_path, text) == f"p.yaml:8: server.env.{name}: {random_value(name)}"


ACCEPTED = {
    "MY_KEY_PATH": "/etc/x",
    "TOKENIZERS_PARALLELISM": "false",
    "MONKEY_COUNT": "12",
    "CACHE_KEY_PREFIX": "llama-3.1-8b-instruct-awq",
    "SSH_KEY_FILE": "./keys/id_ed25519_deploy_2024",
    "KEY_SERVER": "https://keys.example.com/v1",
    "TOKEN_BUDGET": "1234567890123456",
    "PASSWORD_POLICY": "min length twelve, one digit",
}


def test_ordinary_values_under_secret_like_names_pass(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "server:\n  env:\n" + "".join(f"    {k}: {v!r}\n" for k, v in ACCEPTED.items()))
    assert dict(load_plan(str(path)).env) == ACCEPTED


def test_the_variables_vllmtune_fills_are_refused_whatever_the_value(tmp_path: Path) -> None:
    text = BASE + "server:\n  env:\n    VLLM_API_KEY: x\n"
    assert errors_of(tmp_path, text) == (
        "p.yaml:8: server.env.VLLM_API_KEY: looks like a secret; never write secrets in a profile: use "
        "server.api_key: {env: VLLM_API_KEY} (or a Kubernetes secret reference)"
    )


def test_secret_env_passes_a_variable_by_reference_on_every_target(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        BASE + "server:\n  secret_env:\n    MY_KEY: {env: HOST_KEY}\n    DB_PASSWORD: {secret: {name: db, key: pw}}\n"
    )
    plan = load_plan(str(path))
    assert [(s.name, s.source_env, s.k8s_secret, s.k8s_key, s.field) for s in plan.secret_env] == [
        ("MY_KEY", "HOST_KEY", "my-llm-secrets", "my-key", "server.secret_env.MY_KEY"),
        ("DB_PASSWORD", "DB_PASSWORD", "db", "pw", "server.secret_env.DB_PASSWORD"),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "HF_TOKEN: {env: X}",
            "HF_TOKEN is already set by vllmtune (server.hf_token, server.api_key, the cache); set it in one place",
        ),
        ("FOO: {}", "give the secret by reference: {env: NAME} and/or {secret: {name: NAME, key: KEY}}"),
        ("1BAD: {env: X}", "'1BAD' is not a valid environment variable name"),
    ],
)
def test_secret_env_mistakes(entry: str, message: str, tmp_path: Path) -> None:
    text = BASE + f"server:\n  secret_env:\n    {entry}\n"
    line = 7 if entry.startswith("1BAD") else 8
    path = "server.secret_env" if entry.startswith("1BAD") else f"server.secret_env.{entry.split(':')[0]}"
    assert errors_of(tmp_path, text) == f"p.yaml:{line}: {path}: {message}"


def test_secret_env_and_env_cannot_both_set_a_name(tmp_path: Path) -> None:
    text = BASE + "server:\n  env:\n    FOO: bar\n  secret_env:\n    FOO: {env: X}\n"
    assert (
        errors_of(tmp_path, text)
        == "p.yaml:10: server.secret_env.FOO: FOO is already set by server.env; set it in one place"
    )


def test_looks_random_thresholds() -> None:
    assert looks_random("9f8e7d6c5b4a3928")  # 16 hex digits
    assert not looks_random("9f8e7d6c5b4a392")  # 15
    assert not looks_random("0000000000000000aaaa")  # hex, but no randomness
    assert not looks_random("abcdefghijklmnopqrstuvwxyz")  # one class
    assert not looks_random("/var/run/secrets/Token123abcXYZ")  # a path
