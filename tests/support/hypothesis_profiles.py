"""Hypothesis settings profiles: ``ci`` (more examples, derandomized: the same examples on every
run, so a CI failure reproduces anywhere) and ``dev`` (fewer examples, random, with the example
database). tests/conftest.py loads one: $VLLMTUNE_HYPOTHESIS, else ``ci`` under
VLLMTUNE_REQUIRE_REAL=1 (what .ci/run and scripts/test.sh's CI run set), else ``dev``.

Property tests size themselves with ``examples(n)``: n in CI, a fifth of it locally."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])

PROFILE = os.environ.get("VLLMTUNE_HYPOTHESIS") or ("ci" if os.environ.get("VLLMTUNE_REQUIRE_REAL") == "1" else "dev")
settings.load_profile(PROFILE)


def examples(ci: int) -> int:
    """Examples for one property: ``ci`` under the ci profile, a fifth (at least 10) locally."""
    return ci if PROFILE == "ci" else max(10, ci // 5)
