"""Calibration: ``vllmtune fit`` against the KV cache size the REAL vLLM (CPU build) logs.

Each case writes a profile, estimates it with ``fit_report``, starts ``vllm serve`` with the
plan's own argv and environment, reads ``CPU KV cache size: N tokens`` from its log, stops it,
and requires the estimate to be exactly vLLM's figure -- also as ``fit --from-log`` reads that
log. One server at a time, ~80 s each.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import _REAL_HOME, require
from tests.support.realvllm import (
    parse_kv_cache_log,
    stop_server,
    tiny_draft_model_dir,
    tiny_model_dir,
    vllm_executable,
)
from vllmtune.fit import fit_report
from vllmtune.fit.fromlog import from_log_report
from vllmtune.plan import load_plan
from vllmtune.util.net import free_port

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

START_TIMEOUT = 200.0


def serve_and_read_kv(profile: str, log_path: Path) -> dict[str, object]:
    """Start the profile's server, wait for the KV cache log line, stop it."""
    exe = vllm_executable()
    assert exe is not None
    plan = load_plan(profile)
    argv = [str(exe), *plan.serve_argv()[1:]]
    env = {**os.environ, **dict(plan.env), "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    env["HOME"] = _REAL_HOME  # vLLM's compile caches live under the real home
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    found = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and found is None and proc.poll() is None:
            time.sleep(1.0)
            found = parse_kv_cache_log(log_path.read_text(errors="replace"))
    finally:
        stop_server(proc)
    assert found is not None, f"no KV cache line from vLLM:\n{log_path.read_text(errors='replace')[-3000:]}"
    return found


def profile_text(model: Path, port: int, space: int, max_len: int, extra_args: str, extra: str) -> str:
    return f"""name: calib
vllm:
  version: "0.32.0"
model:
  id: {model}
  max_model_len: {max_len}
resources:
  gpus: 0
server:
  host: 127.0.0.1
  port: {port}
  extra_args: [{extra_args}]
  env:
    HF_HUB_OFFLINE: "1"
    VLLM_CPU_KVCACHE_SPACE: "{space}"
{extra}"""


# case: (VLLM_CPU_KVCACHE_SPACE GiB, max_model_len, extra_args, with the draft model, more profile text)
CASES = {
    # 2 GiB, fp8 KV, a max_model_len that is not a multiple of the 128-token CPU block
    "fp8-2gib-len1000": (2, 1000, "", False, "quantization:\n  kv_cache_dtype: fp8\n"),
    # 1 GiB, 32-token blocks, a draft model sharing the KV pool
    "draft-block32-len512": (1, 512, "--block-size, '32'", True, ""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_estimate_matches_real_vllm(case: str, tmp_path: Path) -> None:
    require(vllm_executable() is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    model = tiny_model_dir()
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    assert model is not None
    space, max_len, extra_args, with_draft, extra = CASES[case]
    if with_draft:
        draft = tiny_draft_model_dir()
        require(draft is not None, "the tiny draft model (scripts/make_tiny_model.py --with-draft)")
        extra += f"speculative: {{method: draft_model, model: {draft}, num_tokens: 3}}\n"
    path = tmp_path / "calib.yaml"
    path.write_text(profile_text(model, free_port(), space, max_len, extra_args, extra))
    estimate = fit_report(str(path), None, suggest=False)["cpu"]["kv_tokens"]
    measured = serve_and_read_kv(str(path), tmp_path / "vllm.log")
    tokens = int(str(measured["tokens"]))
    assert measured["max_model_len"] == max_len
    assert estimate == tokens, f"{case}: estimate {estimate:,} vs vLLM {tokens:,}"
    # fit --from-log reads the same real log and puts the same figure beside it
    result = from_log_report(str(path), str(tmp_path / "vllm.log"), None)
    [row] = [r for r in result["rows"] if r["figure"] == "KV cache tokens"]
    assert (row["logged"], row["estimate"], row["error"]) == (tokens, estimate, 0.0)
    assert (result["failure"], result["predicted"], result["agrees"]) == (None, "fits", True)
