"""Fixtures of the runtime tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cli import vt


@pytest.fixture
def names() -> Iterator[list[str]]:
    """The docker stacks a test starts (it appends each name before ``up``): taken down afterwards."""
    created: list[str] = []
    yield created
    for n in created:
        vt("down", n, "--runtime", "docker", timeout=180)
