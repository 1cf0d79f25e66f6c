"""cli.printers' public names called directly: render_check (one line per mapped output, the
stale note and exit 1 unless fixed; json) and cache_stats (the proxy's counters in words; json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vllmtune.cli.printers import cache_stats, render_check

ROWS: list[dict[str, Any]] = [
    {"profile": "p/a.yaml", "target": "compose", "output": "deploy/a.yaml", "stale": [], "fixed": False},
    {"profile": "p/b.yaml", "target": "kubernetes", "output": "k8s/", "stale": ["k8s/b.yaml"], "fixed": False},
]
STALE_NOTE = "rendered files are stale: run vllmtune render-check --fix (or vllmtune render) and commit them\n"


def test_render_check_text_stale_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_check(ROWS, False, "text") == 1
    out, err = capsys.readouterr()
    assert out == "deploy/a.yaml: up to date (p/a.yaml, compose)\nk8s/: stale (p/b.yaml, kubernetes)\n"
    assert err == STALE_NOTE


def test_render_check_text_fixed_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    fixed = [ROWS[0], {**ROWS[1], "fixed": True}]
    assert render_check(fixed, True, "text") == 0
    assert capsys.readouterr() == (
        "deploy/a.yaml: up to date (p/a.yaml, compose)\nk8s/: re-rendered (p/b.yaml, kubernetes)\n",
        "",
    )


def test_render_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_check(ROWS, False, "json") == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == ROWS
    assert err == STALE_NOTE
    assert render_check(ROWS[:1], False, "json") == 0


STATS = {
    "hits": 12345, "misses": 678, "bypasses": 9, "hit_ratio": 0.9479, "tokens_saved": 1234567, "usd_saved": 2.469,
    "upstream_errors": 1, "backend": "redis", "backend_errors": 0, "bypass": {"stream": 7, "pii": 2},
}  # fmt: skip


def test_cache_stats_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_stats(STATS, "text") == 0
    assert capsys.readouterr() == (
        "hits 12,345  misses 678  bypasses 9  hit ratio 94.8%\n"
        "tokens saved 1,234,567  ($2.47)  upstream errors 1  redis errors 0\n"
        "  bypass pii: 2\n"
        "  bypass stream: 7\n",
        "",
    )


def test_cache_stats_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_stats(STATS, "json") == 0
    assert json.loads(capsys.readouterr().out) == STATS
