"""The ladder on the local runtime without vLLM: a ``vllm`` executable that starts the stub server
(vllmtune/bench/stub.py) on the port and served name the plan gives it, a model directory, a profile
and the environment for ``vllmtune ladder``."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.cli import ROOT

FAKE_VLLM = """#!{python}
import os, sys
argv = sys.argv[1:]
def opt(name):
    return argv[argv.index(name) + 1]
extra = {extra}
os.execv(sys.executable, [sys.executable, "-m", "vllmtune.bench.stub", "--host", "127.0.0.1", "--port",
         opt("--port"), "--model", opt("--served-model-name"), "--seconds", "300", *extra])
"""


def stub_ladder(tmp_path: Path, name: str, profile_extra: str, stub_extra: str) -> tuple[Path, dict[str, str]]:
    """(profile, env) for ``vllmtune ladder PROFILE --runtime local``. ``stub_extra`` is a Python
    expression over ``argv`` (vLLM's arguments) giving more stub arguments; ``profile_extra`` ends
    the profile (vllm 0.32.0, the model directory served as ``tiny``, no GPU)."""
    fake = tmp_path / "vllm"
    fake.write_text(FAKE_VLLM.format(python=sys.executable, extra=stub_extra))
    fake.chmod(0o755)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    prof = tmp_path / "p.yaml"
    prof.write_text(
        f"name: {name}\nvllm: {{version: '0.32.0'}}\n"
        f"model: {{id: {tmp_path / 'model'}, served_name: tiny}}\nresources: {{gpus: 0}}\n" + profile_extra
    )
    env = {
        "PYTHONPATH": str(ROOT),
        "VLLMTUNE_VLLM": str(fake),
        "VLLMTUNE_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return prof, env
