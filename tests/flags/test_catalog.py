"""The flag catalog against facts from vLLM's own parsers (shared/vllm-flags)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require
from vllmtune.errors import FlagError
from vllmtune.flags import describe_versions, flagset, known_versions, versions_with_dest
from vllmtune.plan import entrypoint_for

SHARED = ROOT.parent / "shared" / "vllm-flags"


@pytest.fixture
def flag_dumps() -> Path:
    """The vLLM flag dumps beside the checkout (../shared/vllm-flags), through require()."""
    require(SHARED.is_dir(), f"the vLLM flag dumps ({SHARED}, beside the checkout)")
    return SHARED


def test_versions_cover_every_release() -> None:
    versions = known_versions()
    assert versions[0] == "0.6.0" and versions[-1] == "0.33.0"
    assert len(versions) == 59


def test_committed_catalog_is_fresh(flag_dumps: Path) -> None:
    r = subprocess.run(
        [sys.executable, "scripts/build_flag_catalog.py", str(flag_dumps), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stdout) == (0, "catalog up to date\n")


@pytest.mark.parametrize("version", ["0.6.0", "0.8.2", "0.11.0", "0.32.0", "0.33.0"])
def test_every_option_string_matches_the_parser_dump(version: str, flag_dumps: Path) -> None:
    for ep in ("serve", "api_server"):
        dump = json.loads((flag_dumps / ep / f"{version}.json").read_text())
        expected = {o for a in dump for o in a["opts"] if a["action"] not in ("_HelpAction",)}
        assert set(flagset(version, ep).flags) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "spelling"),
    [
        ("0.6.4", ("--enable-prefix-caching",)),
        ("0.6.5", ("--enable-prefix-caching", "--no-enable-prefix-caching")),
        ("0.32.0", ("--enable-prefix-caching", "--no-enable-prefix-caching")),
        ("0.33.0", ("--enable-prefix-caching", "--disable-prefix-caching")),
    ],
)
def test_boolean_spelling_by_version(version: str, spelling: tuple[str, ...]) -> None:
    flag = flagset(version).by_dest("enable_prefix_caching")
    assert flag is not None and flag.group == spelling


def test_speculative_breakpoints() -> None:
    assert describe_versions(versions_with_dest("speculative_config")) == "0.8.2 .. 0.33.0"
    assert describe_versions(versions_with_dest("speculative_model")) == "0.6.0 .. 0.8.2"
    assert "medusa" in (flagset("0.32.0").values("speculative_methods") or [])
    assert "medusa" not in (flagset("0.33.0").values("speculative_methods") or [])


def test_image_entrypoint_history() -> None:
    assert entrypoint_for("0.11.0") == ("python3", "-m", "vllm.entrypoints.openai.api_server")
    assert entrypoint_for("0.11.1") == ("vllm", "serve")
    assert flagset("0.6.0", "api_server").positional_model is False
    assert flagset("0.10.0", "api_server").positional_model is True


def test_disable_log_requests_history() -> None:
    assert (
        describe_versions([v for v in known_versions() if "--disable-log-requests" in flagset(v)])
        == "0.6.0 .. 0.16.0, 0.33.0"
    )


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(FlagError, match=r"unknown vLLM version '0\.7\.9': vllmtune knows 0\.6\.0"):
        flagset("0.7.9")
