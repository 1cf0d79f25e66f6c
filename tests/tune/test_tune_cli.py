"""``vllmtune tune`` from the command line, on the local runtime with a ``vllm`` that starts the stub
server (tests/support/ladder.py) serving at most --max-num-seqs answers at a time: 3 trials through
the real ``vllmtune up``, then --resume with the same budget starts nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import vt
from tests.support.ladder import stub_ladder

STUB = '["--itl", "0.01", "--tokens", "4", "--max-concurrent", opt("--max-num-seqs")]'


def test_tune_on_the_local_runtime_then_resume_starts_nothing(tmp_path: Path) -> None:
    prof, env = stub_ladder(tmp_path, "tune-cli", "batching: {max_num_seqs: 2}\n", STUB)
    out = tmp_path / "out"
    argv = ["tune", str(prof), "--runtime", "local", "--slo", "ttft_p99=5s", "-w", "random", "-n", "12", "-c", "8",
            "--max-tokens", "4", "--rate-trials", "2", "--space", "batching.max_num_seqs=1|2|8", "--trials", "3",
            "-o", str(out)]  # fmt: skip
    r = vt(*argv, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "| # | max_num_seqs | status | goodput req/s | max rate /s | TTFT p99 ms |"
    assert len([line for line in lines if line.startswith("| ") and " done" in line]) == 3
    err = r.stderr.splitlines()
    assert err[:2] == ["tune: space after pruning: 1 knobs, 3 configurations, 3 can run, 0 pruned",
                       "tune:   batching.max_num_seqs: 1 2 8"]  # fmt: skip
    assert "tune: trial 0: max_num_seqs=2: starting (local)" in err
    assert err[-1] == f"wrote {out / 'trials.jsonl'}, {out / 'table.md'}, {out / 'tune.json'}"
    assert [json.loads(line)["status"] for line in (out / "trials.jsonl").read_text().splitlines()] == ["done"] * 3

    r = vt(*argv, "--resume", "--output", "json", env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["resumed"], len(data["trials"])) == (3, 3)
    assert "starting" not in r.stderr


def test_an_unknown_knob_exits_1_with_the_valid_ones(tmp_path: Path) -> None:
    prof, env = stub_ladder(tmp_path, "tune-cli", "", STUB)
    r = vt("tune", str(prof), "--slo", "ttft_p99=1s", "--space", "batching.max_seqs=1|2", env=env)
    assert r.returncode == 1
    assert r.stderr == (
        "error: --space 'batching.max_seqs=1|2': batching.max_seqs is not a knob vllmtune tune can set for vLLM "
        "0.32.0; valid knobs: prefix_caching, batching.max_num_batched_tokens, batching.max_num_seqs, "
        "batching.chunked_prefill, quantization.kv_cache_dtype, resources.gpu_memory_utilization\n"
    )
