"""Whether K ladders agree, from their ladder.json summaries (constructed here)."""

from __future__ import annotations

from typing import Any

from vllmtune.ladder.consistency import consistent_verdicts, headline, rung_verdicts

B, S, W = "better", "no significant change", "worse"


def summary(prompt_cost: str, prefix_ttft: str, *, with_spec: bool = True) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [
        {"config": "baseline", "rung": "baseline", "vs": None, "verdicts": {}, "relative_cost": 1.0},
        {
            "config": "+ prompt cache",
            "rung": "prompt-cache",
            "vs": "baseline",
            "verdicts": {"cost_ms_per_request": prompt_cost, "ttft_p50_ms": S},
            "relative_cost": 0.6,
            "relative_cost_ci95": [0.5, 0.7],
            "relative_cost_verdict": prompt_cost,
        },
        {
            "config": "+ prefix caching",
            "rung": "prefix-caching",
            "vs": "+ prompt cache",
            "verdicts": {"server_ttft_p50_ms": prefix_ttft},
            "server_ttft_change": {"ratio": 0.4, "ratio_ci95": [0.3, 0.5], "verdict": prefix_ttft},
        },
        {"config": "+ quantization (FAILED)", "failed": True},
    ]
    if with_spec:
        rows.append({"config": "+ speculative decoding", "rung": "speculative", "vs": "+ prefix caching",
                     "verdicts": {"e2e_p50_ms": W}})  # fmt: skip
    return {"rows": rows}


def test_rung_verdicts_skip_the_baseline_and_failed_rungs() -> None:
    assert rung_verdicts(summary(B, B)) == {
        "+ prompt cache": {"cost_ms_per_request": B, "ttft_p50_ms": S, "relative_cost": B},
        "+ prefix caching": {"server_ttft_p50_ms": B},
        "+ speculative decoding": {"e2e_p50_ms": W},
    }


def test_consistent_when_every_run_says_the_same() -> None:
    out = consistent_verdicts([summary(B, B), summary(B, B), summary(B, B)])
    assert {k: v["consistent"] for k, v in out.items()} == {
        "+ prompt cache": True,
        "+ prefix caching": True,
        "+ speculative decoding": True,
    }
    assert out["+ prefix caching"]["figures"] == {"server_ttft_p50_ms": {"verdicts": [B, B, B], "consistent": True}}


def test_one_run_differing_or_missing_a_rung_is_inconsistent() -> None:
    out = consistent_verdicts([summary(B, B), summary(S, B), summary(B, B, with_spec=False)])
    assert out["+ prompt cache"] == {
        "figures": {
            "cost_ms_per_request": {"verdicts": [B, S, B], "consistent": False},
            "ttft_p50_ms": {"verdicts": [S, S, S], "consistent": True},
            "relative_cost": {"verdicts": [B, S, B], "consistent": False},
        },
        "consistent": False,
    }
    assert out["+ prefix caching"]["consistent"] is True
    assert out["+ speculative decoding"] == {
        "figures": {"e2e_p50_ms": {"verdicts": [W, W, None], "consistent": False}},
        "consistent": False,
    }


def test_headline_figures() -> None:
    assert headline(summary(B, B)) == {
        "prefix_caching_server_ttft": {"ratio": 0.4, "ratio_ci95": [0.3, 0.5], "verdict": B},
        "prompt_cache_relative_cost": {"ratio": 0.6, "ratio_ci95": [0.5, 0.7]},
    }
    assert headline({"rows": []}) == {"prefix_caching_server_ttft": None, "prompt_cache_relative_cost": None}
