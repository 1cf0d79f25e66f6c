"""rendercache.cache_dir (its environment precedence) and tool_fingerprint (what changes it)
called directly; the fingerprint over a stand-in package directory, uncached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vllmtune import rendercache
from vllmtune.rendercache import cache_dir, tool_fingerprint


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VLLMTUNE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "vllmtune" / "render"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "vllmtune" / "render"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty: unset
    assert cache_dir() == tmp_path / "home" / ".cache" / "vllmtune" / "render"
    monkeypatch.setenv("VLLMTUNE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" / "render"


def test_tool_fingerprint_follows_the_package_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "catalog.json").write_text("{}")
    monkeypatch.setattr(rendercache, "PACKAGE_DIR", pkg)
    fingerprint = tool_fingerprint.__wrapped__
    first = fingerprint()
    assert len(first) == 64 and int(first, 16) >= 0
    assert fingerprint() == first
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "notes.txt").write_text("not code")
    assert fingerprint() == first  # bytecode and other files do not count
    (pkg / "sub" / "catalog.json").write_text("{} ")  # size changes
    second = fingerprint()
    assert second != first
    st = os.stat(pkg / "a.py")
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # mtime changes
    assert fingerprint() != second
    (pkg / "new.j2").write_text("")
    assert fingerprint() not in (first, second)


def test_tool_fingerprint_is_cached() -> None:
    assert tool_fingerprint() is tool_fingerprint()
