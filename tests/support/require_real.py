"""``VLLMTUNE_REQUIRE_REAL=1`` (CI, ``.ci/run``): every real component must be there, so a
skipped test -- ``require()``, ``skipif``, ``importorskip``, at run or at collection -- is a
failure that names what was missing. tests/conftest.py registers these hooks.

Tests look real components up through ``require()`` / ``require_module()`` only (never a bare
``skipif`` or ``importorskip``): one place says what is missing and how to install it, and
tests/test_require_real.py keeps the suite free of the other spellings."""

from __future__ import annotations

import importlib
import os
from collections.abc import Generator
from types import ModuleType
from typing import Any

import pytest

FLAG = "VLLMTUNE_REQUIRE_REAL"


def required() -> bool:
    return os.environ.get(FLAG) == "1"


def require(available: bool, what: str) -> None:
    """Skip a test whose real component is missing -- but fail, naming it, under
    VLLMTUNE_REQUIRE_REAL=1 (CI), where every real component must be there."""
    if available:
        return
    if required():
        pytest.fail(f"{what} is required ({FLAG}=1) but not available")
    pytest.skip(f"{what} not available")


def require_module(name: str, what: str) -> ModuleType:
    """The imported module ``name`` (a real component installed by the test extra or a setup
    script), through ``require()``: call it inside the test or a fixture, never at module level,
    so that the tests of the same file that do not need it still run."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, what)
        raise  # unreachable: require() skipped or failed


def _reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"skipped, but {FLAG}=1 requires every real component: {_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if required() and report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)


# A module skipped at collection (module-level importorskip / skipif) has no test report to fail:
# it is recorded, listed at the end, and the session's exit status is a failure. The rest of the
# suite still runs (a collection error would interrupt it).
_collection_skips: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if required() and report.skipped:
        _collection_skips.append(f"{report.nodeid}: {_reason(report.longrepr)}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _collection_skips:
        terminalreporter.section(f"skipped at collection, but {FLAG}=1 requires every real component", red=True)
        for line in _collection_skips:
            terminalreporter.line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _collection_skips and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
