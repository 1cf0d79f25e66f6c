"""benchmarks/ladder_under_load.py, imported as a module: its report from constructed ladder.json
summaries, and the background load it starts is bounded and stopped (no ladder is run here)."""

from __future__ import annotations

from benchmarks import ladder_under_load as lul
from tests.ladder.test_consistency import B, S, summary


def test_report_lists_each_runs_verdicts_and_the_consistency() -> None:
    assert lul.report([summary(B, B), summary(S, B)]) == [
        "run 1:",
        "  + prompt cache: cost_ms_per_request better, ttft_p50_ms no significant change, relative_cost better",
        "  + prefix caching: server_ttft_p50_ms better",
        "  + speculative decoding: e2e_p50_ms worse",
        "  prefix caching server TTFT p50: -60% (95% CI -70% to -50%); prompt cache relative cost: 0.60x (95% CI "
        "0.50-0.70)",
        "run 2:",
        "  + prompt cache: cost_ms_per_request no significant change, ttft_p50_ms no significant change, "
        "relative_cost no significant change",
        "  + prefix caching: server_ttft_p50_ms better",
        "  + speculative decoding: e2e_p50_ms worse",
        "  prefix caching server TTFT p50: -60% (95% CI -70% to -50%); prompt cache relative cost: 0.60x (95% CI "
        "0.50-0.70)",
        "consistency across runs:",
        "  + prompt cache: differs on cost_ms_per_request, relative_cost",
        "  + prefix caching: same verdicts in every run",
        "  + speculative decoding: same verdicts in every run",
    ]


def test_the_load_ends_by_itself_and_is_stopped() -> None:
    procs = lul.start_load(2, seconds=30)
    try:
        assert all(p.poll() is None for p in procs)
    finally:
        lul.stop_load(procs)
    assert all(p.returncode is not None for p in procs)
    short = lul.start_load(1, seconds=0)  # bounded: a load of 0 s exits on its own
    assert short[0].wait(10) == 0
