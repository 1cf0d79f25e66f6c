"""The search: a killed run resumed repeats no trial, a failed start is recorded with vLLM's reason
and never retried, the same seed and measurements give the same trials. Servers are the stub
(tests/tune/fakes.py); the reproducibility test replaces the measurement by a function of the
configuration (a real server's figures vary from run to run). The trial documents, how they name
the input, and the real runtime (``vllmtune up``, replaced by a recorder) are tested directly."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.tune.fakes import StubRuntime
from vllmtune.errors import LaunchError
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import load_profile
from vllmtune.runtime import up as up_module
from vllmtune.runtime.up import UpOptions, UpResult
from vllmtune.tune import engine
from vllmtune.tune.args import TuneArgs
from vllmtune.tune.engine import Runtime, UpRuntime, parent_ref, read_trials, search, trial_document
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


def test_a_trial_document_extends_the_input_with_only_the_changed_fields(cpu: LoadedProfile, cpu_profile: Path) -> None:
    knobs = parse_space(["batching.max_num_seqs=2|8", "speculative.num_tokens=0|3"], cpu)
    where = cpu_profile.parent / "out" / "trials" / "003"
    where.mkdir(parents=True)
    text = trial_document(knobs, (8, 0), cpu, parent_ref(str(cpu_profile), where), "trial 3")
    assert text == "# trial 3\nextends: ../../../p.yaml\nbatching:\n  max_num_seqs: 8\nspeculative: null\n"
    (where / "profile.yaml").write_text(text)
    trial = load_profile(where / "profile.yaml").profile
    assert (trial.batching.max_num_seqs, trial.speculative, trial.batching.max_num_batched_tokens) == (8, None, 4096)
    assert trial_document(knobs, (2, 3), cpu, "../p.yaml", "the input") == "# the input\nextends: ../p.yaml\n"


def test_parent_ref_is_the_preset_name_or_the_path_relative_to_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parent_ref("preset:cpu-tiny", tmp_path / "out") == "cpu-tiny"
    assert parent_ref(str(tmp_path / "p.yaml"), tmp_path / "out" / "trials" / "000") == "../../../p.yaml"
    monkeypatch.chdir(tmp_path)  # a relative input is relative to where tune runs, not to OUT
    assert parent_ref("p.yaml", Path("out")) == "../p.yaml"
    assert parent_ref("profiles/p.yaml", tmp_path / "out") == "../profiles/p.yaml"


def test_the_stub_and_the_real_runtime_have_the_runtime_protocols_methods() -> None:
    methods = [name for name, value in vars(Runtime).items() if callable(value) and not name.startswith("_")]
    assert methods == ["start", "stop"]
    for cls in (StubRuntime, UpRuntime):
        for name in methods:
            assert inspect.signature(getattr(cls, name)) == inspect.signature(getattr(Runtime, name)), (cls, name)


def _started(endpoint: str, vllm_endpoint: str) -> UpResult:
    return UpResult("tune-cpu", "local", endpoint, "tiny", "123", "started", vllm_endpoint=vllm_endpoint)


def test_up_runtime_starts_with_vllmtune_up_replacing_on_a_free_port_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, UpOptions]] = []
    results = [
        _started("http://127.0.0.1:9001/v1", "http://127.0.0.1:8123/v1"),  # a prompt cache: vLLM's own is measured
        _started("http://10.0.0.5:8000/v1", ""),
    ]

    def fake_up(profile: str, opts: UpOptions, on_phase: Any, log_tail: list[str] | None = None) -> UpResult:
        on_phase("loading weights", 1.0)  # said to nobody
        calls.append((profile, opts))
        return results[len(calls) - 1]

    monkeypatch.setattr(up_module, "up", fake_up)
    monkeypatch.setattr("vllmtune.util.net.free_port", lambda: 8123)
    assert UpRuntime("local", 30.0).start("out/trials/000/profile.yaml") == "http://127.0.0.1:8123"
    assert UpRuntime("docker", 600.0).start("out/trials/001/profile.yaml") == "http://10.0.0.5:8000"
    assert calls == [
        ("out/trials/000/profile.yaml", UpOptions(runtime="local", port=8123, timeout=30.0, replace=True)),
        ("out/trials/001/profile.yaml", UpOptions(runtime="docker", port=None, timeout=600.0, replace=True)),
    ]


def test_up_runtime_stops_through_the_backend_and_a_failed_stop_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[tuple[str, str]] = []

    class Backend:
        def __init__(self, runtime: str) -> None:
            self.runtime = runtime

        def stop(self, name: str) -> bool:
            stopped.append((self.runtime, name))
            if name == "gone":
                raise LaunchError("docker is not reachable", hint="start dockerd")
            return True

    monkeypatch.setattr(up_module, "get_backend", Backend)
    UpRuntime("docker", 30.0).stop("tune-cpu")
    UpRuntime("local", 30.0).stop("gone")  # the trial is over either way: nothing raised
    assert stopped == [("docker", "tune-cpu"), ("local", "gone")]
