"""render.shell called directly: join_lines quotes each word (Shell words as written) and
continues lines with ``\\``; hf_cache_lines expands ``~``; secret_lines fails early, then exports."""

from __future__ import annotations

import subprocess

from vllmtune.plan import SecretEnv
from vllmtune.render.shell import Shell, hf_cache_lines, join_lines, secret_lines


def test_join_lines_quotes_words_and_continues_lines() -> None:
    text = join_lines([["docker", "run", "--name", "a b"], ["-v", Shell('"$HF_CACHE":/root'), "it's"]])
    assert text == "docker run --name 'a b' \\\n  -v \"$HF_CACHE\":/root 'it'\"'\"'s'"


def test_join_lines_of_one_line_has_no_continuation() -> None:
    assert join_lines([["echo", "$(date)"]]) == "echo '$(date)'"


def test_hf_cache_lines_home_relative() -> None:
    assert hf_cache_lines("~/.cache/huggingface", "Hugging Face cache") == [
        "# Hugging Face cache (override: HF_CACHE=/path bash this-script)",
        'HF_CACHE="${HF_CACHE:-}"; [ -n "$HF_CACHE" ] || HF_CACHE="$HOME"/.cache/huggingface',
        'mkdir -p "$HF_CACHE"',
    ]


def test_hf_cache_lines_absolute_path_is_quoted() -> None:
    assert hf_cache_lines("/srv/hf cache", "c")[1] == (
        'HF_CACHE="${HF_CACHE:-}"; [ -n "$HF_CACHE" ] || HF_CACHE=\'/srv/hf cache\''
    )
    assert hf_cache_lines("~", "c")[1] == 'HF_CACHE="${HF_CACHE:-}"; [ -n "$HF_CACHE" ] || HF_CACHE="$HOME"'


def _secret(name: str, source: str) -> SecretEnv:
    return SecretEnv(name=name, source_env=source, k8s_secret="s", k8s_key="k", field="server.hf_token")


def test_secret_lines_same_name() -> None:
    assert secret_lines(_secret("HF_TOKEN", "HF_TOKEN")) == [
        ': "${HF_TOKEN:?set HF_TOKEN in your environment (server.hf_token)}"',
        "export HF_TOKEN",
    ]


def test_secret_lines_renamed() -> None:
    assert secret_lines(_secret("HF_TOKEN", "MY_TOKEN")) == [
        ': "${MY_TOKEN:?set MY_TOKEN in your environment (server.hf_token)}"',
        'export HF_TOKEN="$MY_TOKEN"',
    ]


def test_secret_lines_in_bash_fail_without_the_variable() -> None:
    script = "\n".join([*secret_lines(_secret("HF_TOKEN", "MY_TOKEN")), 'echo "$HF_TOKEN"'])
    ok = subprocess.run(["bash", "-c", script], env={"MY_TOKEN": "t0k"}, capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "t0k\n")
    missing = subprocess.run(["bash", "-c", script], env={}, capture_output=True, text=True)
    assert missing.returncode != 0
    assert missing.stdout == ""
    assert missing.stderr == "bash: line 1: MY_TOKEN: set MY_TOKEN in your environment (server.hf_token)\n"
