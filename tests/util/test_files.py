from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vllmtune.util.files import write_atomic


def test_writes_the_text_creating_parents_with_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.sh"
    write_atomic(target, "line one\nline two\n", mode=0o755)
    assert target.read_bytes() == b"line one\nline two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.sh"]  # no temporary left


def test_default_mode_is_0644_and_utf8_with_lf(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    write_atomic(target, "é\n")
    assert target.read_bytes() == "é\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_replaces_an_existing_file_in_one_rename(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    inode_before = target.stat().st_ino
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_ino != inode_before  # a new file renamed over, not rewritten in place


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udc80")  # a lone surrogate cannot be written as UTF-8
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]


def test_a_directory_in_the_way_raises_oserror(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "d", "text")
    assert sorted(os.listdir(tmp_path)) == ["d"]
