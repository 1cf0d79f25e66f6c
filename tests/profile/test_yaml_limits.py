"""Hostile YAML: alias bombs, recursive aliases, huge numbers, deep nesting, odd ``extends`` targets."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.profile.test_errors import BASE, errors_of


def billion_laughs(levels: int) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join(["*" + prev] * 9) + "]\n"
        prev = name
    return text


def test_billion_laughs_is_refused_fast_with_its_line(tmp_path: Path) -> None:
    start = time.monotonic()
    msg = errors_of(tmp_path, billion_laughs(9))
    # Expanded, 9 levels are 9**9 (387 million) values: minutes and gigabytes. Refused before
    # that, it is milliseconds; 10 s is a bound no expansion meets, even under coverage tracing.
    assert time.monotonic() - start < 10
    assert msg == "p.yaml:6: aliases expand to more than 100,000 values; write the values out or use fewer aliases"


def test_billion_laughs_exits_1_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(billion_laughs(9))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from vllmtune.cli import main; sys.exit(main())", "render",
         str(tmp_path / "p.yaml"), "--target", "compose"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert time.monotonic() - start < 30  # interpreter start-up included; the refusal itself is ms
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().endswith(
        "p.yaml:6: aliases expand to more than 100,000 values; write the values out or use fewer aliases"
    )


def test_small_aliases_still_work(tmp_path: Path) -> None:
    text = BASE + "server:\n  env:\n    A: &v '1'\n    B: *v\n"
    path = tmp_path / "p.yaml"
    path.write_text(text)
    from vllmtune.profile.loader import load_profile

    assert load_profile(path).profile.server.env == {"A": "1", "B": "1"}


CASES = {
    "recursive sequence": ("a: &a [1, *a]\n", "p.yaml:1: recursive alias (an anchor used inside itself)"),
    "recursive merge key": ("a: &a {x: 1, <<: *a}\n", "p.yaml:1: recursive alias (an anchor used inside itself)"),
    "5000-digit integer": (
        BASE + "server:\n  port: " + "9" * 5000 + "\n",
        "p.yaml:7: server.port: number too long (5,000 characters, at most 64); quote it if it is text",
    ),
    "5000-digit float": (
        BASE + "resources:\n  gpu_memory_utilization: 0." + "9" * 5000 + "\n",
        "p.yaml:7: resources.gpu_memory_utilization: number too long (5,002 characters, at most 64); "
        "quote it if it is text",
    ),
    "impossible timestamp": (
        BASE + "server:\n  env:\n    WHEN: 2026-13-45\n",
        "p.yaml:8: server.env.WHEN: cannot read '2026-13-45' (month must be in 1..12); quote it if it is text",
    ),
    "deep nesting": (BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", "p.yaml:6: nested more than 64 levels deep"),
    "sequence as key": (BASE + "? [a]\n: 1\n", "p.yaml:6: keys must be strings, got 'a sequence'; quote the key"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_yaml_is_a_located_error(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    assert errors_of(tmp_path, text) == expected


def test_extends_dev_zero_is_refused(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "extends: /dev/zero\n" + BASE) == (
        "p.yaml:1: extends: '/dev/zero' is not a regular file; extend a profile file or a preset"
    )


def test_extends_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.yaml")
    assert errors_of(tmp_path, "extends: pipe.yaml\n" + BASE) == (
        "p.yaml:1: extends: 'pipe.yaml' is not a regular file; extend a profile file or a preset"
    )


def test_extends_a_huge_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_bytes(b"#" * (1024 * 1024 + 1))
    assert errors_of(tmp_path, "extends: big.yaml\n" + BASE) == (
        "p.yaml:1: extends: 'big.yaml' is larger than 1024 KiB; a profile is a few KiB of YAML"
    )


def test_a_huge_top_level_file_is_refused(tmp_path: Path) -> None:
    msg = errors_of(tmp_path, b" " * (1024 * 1024 + 1))
    assert msg == "p.yaml: is larger than 1024 KiB; a profile is a few KiB of YAML"
