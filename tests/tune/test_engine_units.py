"""The search: a killed run resumed repeats no trial, a failed start is recorded with vLLM's reason
and never retried, the same seed and measurements give the same trials. Servers are the stub
(tests/tune/fakes.py); the reproducibility test replaces the measurement by a function of the
configuration (a real server's figures vary from run to run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tune.fakes import StubRuntime
from vllmtune.profile.loader import load_profile
from vllmtune.tune import engine
from vllmtune.tune.args import TuneArgs
from vllmtune.tune.engine import read_trials, search
from vllmtune.tune.space import input_config, parse_space, prune


def _args(profile: Path, out: Path, **kw: Any) -> TuneArgs:
    base: dict[str, Any] = {"profile": str(profile), "slo": "ttft_p99=2s", "workload": "random", "out": str(out),
                            "runtime": "local", "requests": 8, "concurrency": 4, "max_tokens": 4, "rate_trials": 2}  # fmt: skip
    return TuneArgs(**{**base, **kw})


def _run(args: TuneArgs, runtime: StubRuntime) -> engine.Search:
    lp = load_profile(args.profile)
    knobs = parse_space(args.space, lp)
    valid, _ = prune(knobs, lp)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return search(args, lp, knobs, valid, input_config(knobs, lp), runtime, lambda msg: None)


SPACE = ["batching.max_num_seqs=1|2|4|8|16"]


def test_a_killed_run_resumed_repeats_no_finished_trial(cpu_profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = StubRuntime(interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        _run(_args(cpu_profile, out, space=SPACE, trials=5), first)
    recorded = read_trials(out / "trials.jsonl")
    assert [r["trial"] for r in recorded] == [0, 1, 2]
    assert [r["status"] for r in recorded] == ["done"] * 3
    assert recorded[0]["values"] == {"batching.max_num_seqs": 2}  # the input first
    with (out / "trials.jsonl").open("a") as fh:
        fh.write('{"trial": 3, "config": [')  # the line the kill cut
    again = StubRuntime()
    found = _run(_args(cpu_profile, out, space=SPACE, trials=5, resume=True), again)
    assert found.resumed == 3
    assert len(again.started) == 2
    assert not set(again.started) & {r["config"][0] for r in recorded}
    assert sorted(r["config"][0] for r in found.records) == [1, 2, 4, 8, 16]
    assert [r["trial"] for r in read_trials(out / "trials.jsonl")] == [0, 1, 2, 3, 4]
    assert again.stopped == ["tune-cpu", "tune-cpu"]


def test_a_failed_start_is_recorded_with_the_reason_and_never_retried(cpu_profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runtime = StubRuntime(fail_seqs=(4, 8))
    found = _run(_args(cpu_profile, out, space=SPACE, trials=5), runtime)
    assert sorted(runtime.started) == [1, 2, 4, 8, 16]  # every value once, the failed ones too
    failed = {r["config"][0]: r for r in found.records if r["status"] == "failed"}
    assert sorted(failed) == [4, 8]
    assert failed[4]["reason"] == "reason: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert "goodput" not in failed[4]
    # resumed with a bigger budget: nothing left to start, the failed values are not tried again
    again = StubRuntime()
    found = _run(_args(cpu_profile, out, space=SPACE, trials=10, resume=True), again)
    assert again.started == []
    assert len(found.records) == 5


def test_the_same_seed_and_figures_give_the_same_trials(
    cpu_profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoServer(StubRuntime):
        def start(self, profile: str) -> str:
            self.started.append(load_profile(profile).profile.batching.max_num_batched_tokens)
            return "http://127.0.0.1:9"

    def figure(args: TuneArgs, endpoint: str, model: str | None, requests: Path) -> dict[str, Any]:
        lp = load_profile(Path(requests).parent / "profile.yaml")
        b = lp.profile.batching
        goodput = 100.0 - abs((b.max_num_batched_tokens or 0) - 8192) / 256 - abs((b.max_num_seqs or 0) - 64) / 8
        return {"goodput": goodput, "good_share": 1.0, "requests": str(requests)}

    monkeypatch.setattr(engine, "_measure", figure)
    space = ["batching.max_num_batched_tokens=1024..65536", "batching.max_num_seqs=8..1024"]
    orders = []
    for run in ("a", "b"):
        runtime = NoServer()
        _run(_args(cpu_profile, tmp_path / run, space=space, trials=12, seed=7), runtime)
        orders.append(runtime.started)
    assert orders[0] == orders[1]
    assert len(set(orders[0])) >= 2
    other = NoServer()
    _run(_args(cpu_profile, tmp_path / "c", space=space, trials=12, seed=8), other)
    assert other.started != orders[0]


def test_an_input_with_the_knob_unset_is_measured_as_it_is_first(
    cpu_profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[bool | None] = []

    class Recorder(StubRuntime):
        def start(self, profile: str) -> str:
            starts.append(load_profile(profile).profile.prefix_caching)
            return "http://127.0.0.1:9"

    def figure(args: TuneArgs, endpoint: str, model: str | None, requests: Path) -> dict[str, Any]:
        return {"goodput": 1.0, "good_share": 1.0, "requests": str(requests)}

    monkeypatch.setattr(engine, "_measure", figure)
    found = _run(_args(cpu_profile, tmp_path / "out", space=["prefix_caching=true|false"], trials=3), Recorder())
    assert starts[0] is None and sorted(starts[1:]) == [False, True]
    assert found.records[0]["values"] == {"prefix_caching": None}
    trial0 = (tmp_path / "out" / "trials" / "000" / "profile.yaml").read_text().splitlines()
    assert trial0 == ["# vllmtune tune trial 0: prefix_caching=unset", "extends: ../../../p.yaml"]
