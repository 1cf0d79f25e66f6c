"""profile.loaded's public names called directly: LoadedProfile, what load_profile returns: the
profile, its source, problem() located at a key's line (or its closest ancestor's), and the
digest of the merged profile (layout, comments and spelled-out defaults do not change it)."""

from __future__ import annotations

from pathlib import Path

from vllmtune.errors import Problem
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import load_profile

TEXT = (
    'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n  max_model_len: 8192\n'
)


def _load(tmp_path: Path, text: str, name: str = "p.yaml") -> LoadedProfile:
    path = tmp_path / name
    path.write_text(text)
    return load_profile(str(path))


def test_loaded_profile_fields_and_located_problems(tmp_path: Path) -> None:
    lp = _load(tmp_path, TEXT)
    assert isinstance(lp, LoadedProfile)
    assert (lp.profile.name, lp.profile.model.max_model_len) == ("my-llm", 8192)
    assert lp.source == str(tmp_path / "p.yaml")
    assert lp.chain == [str(tmp_path / "p.yaml")]
    assert lp.warnings == []
    src = str(tmp_path / "p.yaml")
    assert lp.problem(("model", "max_model_len"), "too long") == Problem(src, 6, "model.max_model_len", "too long")
    # a key the file does not spell is located at its closest ancestor that has a line
    assert lp.problem(("model", "revision"), "pin it") == Problem(src, 4, "model.revision", "pin it")
    # ... down to the document itself, on line 1
    assert lp.problem(("server", "port"), "x") == Problem(src, 1, "server.port", "x")


def test_digest_follows_values_not_layout(tmp_path: Path) -> None:
    a = _load(tmp_path, TEXT, "a.yaml")
    flow = (
        '# same profile\nname: my-llm\nvllm: {version: "0.32.0"}\n'
        "model: {id: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 8192}\n"
    )
    b = _load(tmp_path, flow, "b.yaml")
    c = _load(tmp_path, TEXT.replace("8192", "4096"), "c.yaml")
    d = _load(tmp_path, TEXT + "server:\n  port: 8000\n", "d.yaml")  # server.port's default
    assert len(a.digest) == 12 and int(a.digest, 16) >= 0
    assert a.digest == b.digest == d.digest
    assert a.digest != c.digest
