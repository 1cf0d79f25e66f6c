"""run_ladder called directly (in process) on the local runtime with the stub server as ``vllm``:
``--slo`` finds the baseline's operating point first, then every rung runs open loop at it, its
goodput reported. The logic is asserted (which rate, which runs, what is printed), never a timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ladder.verdict_checks import check_verdicts
from tests.support.ladder import stub_ladder
from vllmtune.commands.ladder import run_ladder
from vllmtune.errors import LadderError, SloError
from vllmtune.ladder.args import LadderArgs


def test_run_ladder_at_the_slo_operating_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prof, env = stub_ladder(tmp_path, "lad-slo", "prefix_caching: true\n", '["--ttft", "0.005"]')
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    said: list[str] = []
    args = LadderArgs(profile=str(prof), out=str(out), runtime="local", workload="duplicates", requests=20,
                      concurrency=2, max_tokens=4, rungs="prefix", slo="e2e_p99=5s", max_trials=2)  # fmt: skip
    summary = run_ladder(args, said.append)
    # the search ran once, on the baseline, before its measured run: a closed loop within 5 s meets the SLO,
    # so its throughput is the operating point
    assert [s.split(":")[0] for s in said] == [
        "baseline",  # starting
        "baseline",  # finding the highest request rate ...
        "baseline",  # trial 1: closed loop ...
        "baseline",  # operating point ...
        "baseline",  # measured
        "+ prefix caching",
        "+ prefix caching",
    ]
    assert said[1] == "baseline: finding the highest request rate meeting --slo e2e_p99=5s (at most 2 runs)"
    [trial] = summary["operating_point"]["trials"]
    assert trial["rate"] is None and trial["met"] is True
    rate = summary["operating_point"]["rate"]
    assert rate == trial["request_throughput"] > 0
    assert said[3] == f"baseline: operating point {rate:,.2f} requests/s"
    for entry in summary["rungs"]:  # every rung measured open loop at that rate, with the SLO
        result = json.loads(Path(entry["results"][0]).read_text())
        assert (result["config"]["rate"], result["slo"]["objectives"][0]["objective"]) == (rate, "e2e_p99")
    for row in summary["rows"]:
        assert row["goodput"]["requests_sent"] == 20 and row["goodput"]["good_requests"] <= 20
    table = summary["table_markdown"]
    assert "| Goodput req/s |" in table[0]
    assert table[5].startswith(f"Operating point: open loop at {rate:,.2f} requests/s, at most 2 in flight: ")
    check_verdicts(summary, table)
    assert json.loads((out / "ladder.json").read_text())["operating_point"]["rate"] == rate
    # --resume: the operating point is not searched again
    again: list[str] = []
    resumed = run_ladder(LadderArgs(**{**args.__dict__, "resume": True}), again.append)
    assert not any("finding" in s for s in again) and resumed["operating_point"]["rate"] == rate


def test_a_bad_slo_is_refused_before_any_server_starts(tmp_path: Path) -> None:
    said: list[str] = []
    with pytest.raises(SloError) as exc:
        run_ladder(LadderArgs(profile=str(tmp_path / "none.yaml"), out=str(tmp_path), slo="ttft=fast"), said.append)
    assert str(exc.value) == "--slo 'ttft=fast': unknown unit 'fast'; use ms or s (a bare number is ms)"
    assert said == []


def test_resume_with_another_slo_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(
        json.dumps({"baseline": {"status": "done"}, "_rate_search": {"slo": "e2e=5s"}})
    )
    prof = tmp_path / "p.yaml"
    prof.write_text("name: x\nvllm: {version: '0.32.0'}\nmodel: {id: org/m}\nresources: {gpus: 0}\n")
    with pytest.raises(LadderError) as exc:
        run_ladder(LadderArgs(profile=str(prof), out=str(tmp_path), resume=True, slo="e2e=1s"), lambda _: None)
    assert str(exc.value) == (
        "--resume: this ladder was measured with --slo e2e=5s, not e2e=1s; resume with the same --slo, or start "
        "again without --resume (or with another -o)"
    )
