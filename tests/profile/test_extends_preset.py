"""`extends: preset:NAME` (the CLI's spelling) is the same as `extends: NAME`."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.errors import ProfileError
from vllmtune.profile.loader import load_profile


def test_both_spellings_of_a_preset_parent(tmp_path: Path) -> None:
    loaded = {}
    for spelling in ("cpu-tiny", "preset:cpu-tiny"):
        p = tmp_path / f"{spelling.replace(':', '-')}.yaml"
        p.write_text(f"extends: {spelling}\nname: mine\n")
        loaded[spelling] = load_profile(str(p)).profile.model_dump()
    assert loaded["preset:cpu-tiny"].pop("extends") == "preset:cpu-tiny"  # kept as written
    assert loaded["cpu-tiny"].pop("extends") == "cpu-tiny"
    assert loaded["cpu-tiny"] == loaded["preset:cpu-tiny"]
    assert loaded["preset:cpu-tiny"]["model"]["served_name"] == "tiny-llama"


def test_unknown_preset_spelled_with_the_prefix(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("extends: preset:cpu-tiyn\nname: mine\n")
    with pytest.raises(ProfileError) as exc:
        load_profile(str(p))
    assert str(exc.value) == (
        f"{p}:1: extends: 'preset:cpu-tiyn' not found (preset:cpu-tiyn); did you mean the preset 'cpu-tiny'?"
    )
