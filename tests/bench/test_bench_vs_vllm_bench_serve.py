"""`vllmtune bench` cross-checked with a client no one here wrote: vLLM's own `vllm bench serve`
(the vLLM CPU venv), both against ONE real vLLM CPU server with the tiny model, on the same
ShareGPT-shaped file (both read it: vllm's ``--dataset-name sharegpt``, vllmtune's ``-w FILE``),
the same request count, concurrency, output length (``ignore_eos``, so every answer is exactly that
long), completions API, temperature 0 and warm-up count.

The two clients are compared as instruments, so neither may slow the server it measures: the
server runs on CPU 0 and the clients on CPU 1 (sched_setaffinity; vLLM's CPU backend binds its
threads within the allowed CPUs), and the workload is prefill-heavy (prompts of ~600 tokens,
prefix caching off, 16 output tokens). Without the pinning, on this 2-core machine, vLLM's client
(aiohttp, a JSON parse per chunk) took enough CPU from the server that vllmtune's runs completed
a median 1.21x more requests per second (nine pairs, this workload) and 1.43x with 30-60-word
prompts: a difference in what the clients cost, not in what they measure.

Runs are interleaved so that drift of this shared machine (other engineers' tests and vLLM
servers, the server warming up) falls on both clients alike: one discarded warm-up pair, then
RUNS pairs whose order alternates (A B, B A, A B, ...: a steady drift favours neither client).
What is compared is the median over the pairs of vllmtune's figure / vllm's figure in the same
pair: neighbours share the drift, so each pair's ratio cancels it, where the medians of the two
arms taken separately keep every run's share of the outside load. Measured under such load,
pinned as here: medians of the arms 0.995x (throughput) and 0.963x (TTFT) in one try, but 0.90x
and 0.78x in the next, with another engineer's vLLM server busy (single runs from 12 to 48 req/s,
pair ratios from 0.31x to 1.75x); the paired medians of those two tries: 0.933x and 0.997x,
0.963x and 1.035x (and 0.918x and 1.023x in a quieter third). Nine pairs: under such load about a third of the pairs are hit by an outside
burst that favours one arm, and the median of nine stands when up to four are; vLLM's client is
called in-process by a driver in its venv (its own parser and main(), so a pair costs seconds,
not ~20 s of importing vLLM again for each run), which keeps the test near three minutes. The paired medians of request throughput and of
median TTFT must be within 15% of 1."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, require
from tests.support.cli import Cli
from tests.support.dockerenv import free_port
from tests.support.profiles import tiny_profile
from tests.support.realvllm import tiny_model_dir, vllm_executable

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

RUNS = 9  # per client, after a warm-up pair (see the module docstring)
REQUESTS = 100
CONCURRENCY = 4
OUTPUT_TOKENS = 16
WARMUPS = 2
TOLERANCE = 0.15
WORDS = "the cache keeps answers for repeated prompts while the scheduler batches tokens of every sequence".split()


SERVER_CPUS, CLIENT_CPUS = {0}, {1}  # see the module docstring


def on_cpus(cpus: set[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cpus)


vt = Cli(timeout=600)


def sharegpt_file(path: Path) -> None:
    """REQUESTS entries (exactly: vllm bench serve would oversample a shorter file at random), each
    a human prompt of 250-330 words, ~500-700 tokens (vllm skips prompts of 1,024 tokens and more),
    and a gpt reply."""
    rng = random.Random(17)
    entries = [
        {
            "conversations": [
                {"from": "human", "value": f"Question {i}: " + " ".join(rng.choices(WORDS, k=rng.randint(250, 330)))},
                {"from": "gpt", "value": " ".join(rng.choices(WORDS, k=20))},
            ]
        }
        for i in range(REQUESTS)
    ]
    path.write_text(json.dumps(entries, indent=1))


# Runs in the vLLM venv: vllm bench serve's own argument parser and main(), imported once and
# called once per vllm run (the CLI would import vLLM again for each: ~10 s of this machine's CPU
# per run), with the vllmtune runs in between as subprocesses; one JSON line per run.
DRIVER = """
import json, subprocess, sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
plan = json.loads(sys.argv[1])
parser = FlexibleArgumentParser()
add_cli_args(parser)
for run in range(plan["pairs"]):
    for client in ("vllm", "vllmtune") if run % 2 == 0 else ("vllmtune", "vllm"):
        if client == "vllm":
            args = parser.parse_args([*plan["vllm_args"], "--result-filename", f"vllm-{run}.json"])
            main(args)
        else:
            r = subprocess.run([*plan["vllmtune_cmd"], "-o", f"{plan['dir']}/vllmtune-{run}.json"],
                               capture_output=True, text=True, timeout=600, env=plan["vllmtune_env"])
            if r.returncode:
                sys.exit("vllmtune bench failed: " + r.stderr[-3000:])
        print("XCHECK " + json.dumps({"run": run, "client": client}), flush=True)
"""


def vllm_figures(path: Path) -> dict[str, float]:
    them = json.loads(path.read_text())
    assert them["completed"] == REQUESTS
    assert them["total_output_tokens"] == REQUESTS * OUTPUT_TOKENS
    return {"req_s": them["request_throughput"], "ttft_p50": them["median_ttft_ms"]}


def vllmtune_figures(path: Path) -> dict[str, float]:
    mine = json.loads(path.read_text())
    assert mine["summary"]["requests_ok"] == REQUESTS
    assert mine["summary"]["tokens_per_call"] == OUTPUT_TOKENS
    assert mine["config"]["workload_format"] == "sharegpt"
    return {"req_s": mine["summary"]["request_throughput"], "ttft_p50": mine["summary"]["ttft_ms"]["p50"]}


def test_vllmtune_bench_agrees_with_vllm_bench_serve(tmp_path: Path) -> None:
    exe, model = vllm_executable(), tiny_model_dir()
    require(exe is not None and exe.exists() and model is not None, "the vLLM CPU venv and the tiny model")
    assert exe is not None and model is not None
    assert os.sched_getaffinity(0) >= SERVER_CPUS | CLIENT_CPUS, "the test pins the server and the clients to 2 CPUs"
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    data = tmp_path / "sharegpt.json"
    sharegpt_file(data)
    extra = "  max_model_len: 2048\nprefix_caching: false\n"
    profile = tiny_profile(tmp_path / "xcheck.yaml", "vt-xcheck", model, extra)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    vllm_args = [
        "--base-url", url, "--backend", "openai", "--endpoint", "/v1/completions", "--model", "tiny",
        "--tokenizer", str(model), "--dataset-name", "sharegpt", "--dataset-path", str(data), "--disable-shuffle",
        "--num-prompts", str(REQUESTS), "--sharegpt-output-len", str(OUTPUT_TOKENS), "--ignore-eos",
        "--temperature", "0", "--max-concurrency", str(CONCURRENCY), "--request-rate", "inf",
        "--num-warmups", str(WARMUPS), "--seed", "0", "--disable-tqdm", "--save-result",
        "--result-dir", str(tmp_path),
    ]  # fmt: skip
    vllmtune_cmd = [
        sys.executable, "-m", "vllmtune.cli", "bench", url, "-w", str(data), "-n", str(REQUESTS),
        "-c", str(CONCURRENCY), "--api", "completions", "--max-tokens", str(OUTPUT_TOKENS), "--ignore-eos",
        "--warmup", str(WARMUPS),
    ]  # fmt: skip
    plan = {
        "pairs": RUNS + 1,
        "vllm_args": vllm_args,
        "vllmtune_cmd": vllmtune_cmd,
        "vllmtune_env": {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **env},
        "dir": str(tmp_path),
    }
    try:
        up = vt("up", str(profile), "--runtime", "local", "-d", "--port", str(port), "--timeout", "400", env=env,
                preexec_fn=on_cpus(SERVER_CPUS))  # fmt: skip
        assert up.returncode == 0, up.stderr[-3000:]
        r = subprocess.run(
            [str(exe.parent / "python"), "-c", DRIVER, json.dumps(plan)],
            capture_output=True,
            text=True,
            timeout=1200,
            cwd=tmp_path,
            preexec_fn=on_cpus(CLIENT_CPUS),
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
        )
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        vt("down", str(profile), "--runtime", "local", env=env)
    done = [json.loads(line[7:]) for line in r.stdout.splitlines() if line.startswith("XCHECK ")]
    assert len(done) == 2 * (RUNS + 1)
    # run 0 is the warm-up pair, not counted
    theirs = [vllm_figures(tmp_path / f"vllm-{run}.json") for run in range(1, RUNS + 1)]
    ours = [vllmtune_figures(tmp_path / f"vllmtune-{run}.json") for run in range(1, RUNS + 1)]
    for run, (a, b) in enumerate(zip(theirs, ours, strict=True)):
        print(
            f"run {run + 1}: vllm bench serve {a['req_s']:.2f} req/s TTFT p50 {a['ttft_p50']:.1f} ms; vllmtune "
            f"{b['req_s']:.2f} req/s TTFT p50 {b['ttft_p50']:.1f} ms; ratios {b['req_s'] / a['req_s']:.3f}, "
            f"{b['ttft_p50'] / a['ttft_p50']:.3f}"
        )
    for key in ("req_s", "ttft_p50"):
        paired = statistics.median(b[key] / a[key] for a, b in zip(theirs, ours, strict=True))
        them_m = statistics.median(x[key] for x in theirs)
        ours_m = statistics.median(x[key] for x in ours)
        print(
            f"{key}: median of the {RUNS} paired ratios vllmtune/vllm {paired:.3f}; medians of the arms: vllm "
            f"bench serve {them_m:.2f}, vllmtune {ours_m:.2f} (ratio {ours_m / them_m:.3f})"
        )
        assert abs(paired - 1) <= TOLERANCE, (key, theirs, ours)
