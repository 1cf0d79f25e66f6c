"""``vllmtune tune`` as a command: --dry-run's whole output (a TuneResult that wrote nothing), and a
search on the stub server (tests/tune/fakes.py) whose winner validates and renders for docker,
compose and kubernetes, with the notes of what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tune.conftest import CPU
from tests.tune.fakes import StubRuntime
from vllmtune.commands.tune import TuneResult, run
from vllmtune.plan.planner import load_plan
from vllmtune.profile.loader import load_profile
from vllmtune.render import render
from vllmtune.tune.args import TuneArgs


def _profile(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    path = tmp_path / "p.yaml"
    path.write_text(CPU.format(model=tmp_path / "model"))
    return path


def test_dry_run_prints_the_pruned_space_the_budget_and_the_estimate_and_starts_nothing(tmp_path: Path) -> None:
    args = TuneArgs(
        profile=str(_profile(tmp_path)),
        slo="ttft_p99=800ms,itl_p99=60ms",
        space=["batching.max_num_batched_tokens=2048..8192", "batching.chunked_prefill=true|false"],
        trials=4,
        dry_run=True,
        out=str(tmp_path / "out"),
    )
    runtime = StubRuntime()
    result = run(args, lambda msg: None, runtime)
    assert result.lines == [
        "space after pruning: 2 knobs, 6 configurations, 5 can run, 1 pruned",
        "  batching.max_num_batched_tokens: 2048 4096 8192",
        "  batching.chunked_prefill: true false",
        "pruned before any server starts:",
        "  max_num_batched_tokens=2048 chunked_prefill=false: batching.max_num_batched_tokens: 2048 is below "
        "model.max_model_len (4096); with chunked_prefill off a whole prompt must fit one step: raise it to >= 4096 "
        "or enable chunked_prefill",
        "trial budget: 4 servers (--trials 4; 5 configurations of the space can run; the input profile first)",
        "estimated time: 4 x (120 s start + 4 rate runs x 30 s) = 16m (a stated estimate per trial, not a measurement)",
        "--dry-run: no server started",
    ]
    assert result.data["estimate_s"] == 960.0
    assert isinstance(result, TuneResult)
    assert result.notes == []  # nothing written
    assert runtime.started == []
    assert not (tmp_path / "out").exists()


def test_a_search_on_the_stub_finds_more_sequences_and_its_winner_renders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = TuneArgs(
        profile=str(_profile(tmp_path)),
        slo="ttft_p99=5s",
        workload="random",
        space=["batching.max_num_seqs=1|2|8"],
        trials=3,
        requests=16,
        concurrency=8,
        max_tokens=4,
        rate_trials=2,
        out=str(out),
    )
    said: list[str] = []
    runtime = StubRuntime(itl=0.02)
    result = run(args, said.append, runtime)
    assert sorted(runtime.started) == [1, 2, 8]
    records = result.data["trials"]
    assert [r["status"] for r in records] == ["done"] * 3
    by_seqs = {r["config"][0]: r["goodput"] for r in records}
    assert by_seqs[8] > by_seqs[1]  # 8 answers at a time against 1: the stub serves 8x the requests
    best = result.data["best"]
    assert records[best]["config"] == [8]
    assert result.lines[:2] == ["| # | max_num_seqs | status | goodput req/s | max rate /s | TTFT p99 ms |",
                                "|---|---|---|---|---|---|"]  # fmt: skip
    assert result.lines[2].startswith(f"| {best} | 8 | done (best) | ")
    assert f"best: trial {best}, max_num_seqs=8: goodput " in "\n".join(result.lines)
    assert any(line.startswith("vs the input profile (trial 0): +") for line in result.lines)
    assert "changes from the input:" in result.lines
    assert "  max_num_seqs: 2 -> 8 (--max-num-seqs)" in result.lines
    assert (out / "best.yaml").read_text().splitlines()[1:] == ["extends: ../p.yaml", "batching:", "  max_num_seqs: 8"]
    lp = load_profile(out / "best.yaml")
    assert lp.profile.batching.max_num_seqs == 8
    assert lp.profile.speculative is not None and lp.profile.speculative.num_tokens == 3  # inherited
    plan = load_plan(str(out / "best.yaml"))
    for target in ("docker", "compose", "kubernetes"):
        assert "--max-num-seqs" in render(plan, target)
    assert result.data["rendered_for"] == ["docker", "compose", "kubernetes"]
    diff = (out / "best.diff").read_text().splitlines()
    assert [line for line in diff if line.startswith(("-", "+")) and "max-num-seqs" in line] == [
        "-  --max-num-seqs 2 \\",
        "+  --max-num-seqs 8 \\",
    ]
    assert json.loads((out / "tune.json").read_text())["best"] == best
    assert (out / "pareto.png").stat().st_size > 0
    assert said[0] == "space after pruning: 1 knobs, 3 configurations, 3 can run, 0 pruned"
    assert result.notes == [
        f"wrote {out / 'best.yaml'} (renders for docker, compose, kubernetes), {out / 'best.diff'}",
        f"wrote {out / 'pareto.png'}",
        f"wrote {out / 'trials.jsonl'}, {out / 'table.md'}, {out / 'tune.json'}",
    ]
