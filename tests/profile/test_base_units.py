"""profile.base's public names called directly: parse_duration, the seconds of a validated
Duration ('30s', '15m', '24h', '7d': the spelling of ttl, probe and scale-down settings)."""

from __future__ import annotations

import pytest

from vllmtune.profile.base import DURATION_RE, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), ("90m", 5400)],
)
def test_parse_duration_each_unit(text: str, seconds: int) -> None:
    assert DURATION_RE.match(text)  # only what the Duration pattern lets through reaches it
    assert parse_duration(text) == seconds
