"""scaffold's public names called directly: new_profile, a preset written out in full under a
new name (the modeline for editors, a header, every setting, no extends), which loads back as
the same profile; a bad name or unknown preset refused with whole messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.errors import ProfileError
from vllmtune.profile.loader import load_profile
from vllmtune.scaffold import new_profile


def test_new_profile_writes_every_setting_of_the_preset(tmp_path: Path) -> None:
    text = new_profile("my-llm", "cpu-tiny")
    assert text == (
        "# yaml-language-server: $schema=./profile.schema.json   (vllmtune schema > profile.schema.json)\n"
        "# vllmtune profile, from the cpu-tiny preset. Check it: vllmtune validate FILE; see what each lever "
        "does: vllmtune explain FILE\n"
        "name: my-llm\n"
        "description: Tiny local Llama on vLLM's CPU build (tests, laptops, CI).\n"
        "vllm:\n  version: 0.32.0\n"
        "model:\n  id: ~/.cache/vllmtune/tiny-llama\n  served_name: tiny-llama\n  max_model_len: 4096\n"
        "prefix_caching: true\n"
        "resources:\n  gpus: 0\n"
        "server:\n  port: 8000\n  env:\n    HF_HUB_OFFLINE: '1'\n    VLLM_CPU_KVCACHE_SPACE: '1'\n"
    )
    path = tmp_path / "my-llm.yaml"
    path.write_text(text)
    written, preset = load_profile(str(path)).profile, load_profile("preset:cpu-tiny").profile
    assert written.name == "my-llm"
    assert written.model_dump(exclude={"name"}) == preset.model_dump(exclude={"name"})


def test_new_profile_of_a_preset_that_extends_another_has_no_extends(tmp_path: Path) -> None:
    text = new_profile("fast-llm", "speculative")
    assert "extends" not in text
    path = tmp_path / "p.yaml"
    path.write_text(text)
    written, preset = load_profile(str(path)).profile, load_profile("preset:speculative").profile
    assert (written.extends, preset.extends) == (None, "awq")
    assert written.model_dump(exclude={"name", "extends"}) == preset.model_dump(exclude={"name", "extends"})


def test_new_profile_refuses_a_bad_name_or_an_unknown_preset() -> None:
    with pytest.raises(ProfileError) as e:
        new_profile("My_LLM", "baseline")
    assert str(e.value) == (
        "<init>: name: 'My_LLM' is not valid: lowercase letters, digits and '-', at most 63, e.g. llama-8b"
    )
    with pytest.raises(ProfileError) as e:
        new_profile("my-llm", "turbo")
    assert str(e.value) == (
        "<init>: preset: unknown preset 'turbo'; choose one of: all-levers, awq, baseline, cpu-tiny, "
        "prefix-cache, speculative"
    )
