"""Whole user-facing messages for mistakes that the feature tests do not reach."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.support.cli import Cli

_vt = Cli(timeout=60, env={"VLLMTUNE_NO_CACHE": "1"})


def vt(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = _vt(*args, env=env)
    assert "Traceback" not in r.stderr
    return r.returncode, r.stderr


def test_profile_file_mistakes(tmp_path: Path) -> None:
    assert vt("validate", str(tmp_path), "--output", "text") == (1, f"{tmp_path}: is a directory, not a profile file\n")
    p = tmp_path / "p.yaml"
    p.write_text("extends: 3\nname: x\n")
    assert vt("render", str(p)) == (1, f"{p}:1: extends: must be a file path or a preset name\n")
    p.write_text('name: x\nvllm: {version: "0.32.0"}\nmodel: {id: "m\\0x"}\n')
    assert vt("render", str(p)) == (
        1,
        f"{p}:3: model.id: contains a NUL character (\\0), which no command line, environment or shell can carry; "
        "remove it\n",
    )


def test_jsonl_case_mistakes(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"input": "a", "max_tokens": 0}\n')
    assert vt("bench", "http://127.0.0.1:9", "-w", str(cases)) == (
        1,
        f'error: {cases}:1: "max_tokens" must be a positive whole number, not 0\n',
    )
    cases.write_text('{"input": 42}\n')
    assert vt("bench", "http://127.0.0.1:9", "-w", str(cases)) == (
        1,
        f'error: {cases}:1: "input" must be a string or a list of chat messages\n',
    )


def test_bench_target_mistakes() -> None:
    assert vt("bench") == (1, "error: give an endpoint URL or a profile (or --calibrate)\n")
    assert vt("bench", "https://example.invalid") == (
        1,
        "error: https endpoints are not supported by the benchmark client yet; use http:// (or a local port-forward)\n",
    )


def test_logs_of_an_unknown_server(tmp_path: Path) -> None:
    assert vt("logs", "nope", "--runtime", "local", env={"VLLMTUNE_STATE_DIR": str(tmp_path)}) == (
        1,
        "error: no server named 'nope'; see vllmtune ps\n",
    )


def test_cache_serve_redis_without_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VLLMTUNE_REDIS_URL"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vllmtune.cli",
            "cache",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--backend",
            "redis",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: --backend redis needs --redis-url (or $VLLMTUNE_REDIS_URL")
