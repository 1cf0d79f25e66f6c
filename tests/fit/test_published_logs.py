"""``vllmtune fit`` against published vLLM start-up logs (tests/fit/data/published_logs.json).

Every logged figure was read in its source (the case's url); the inputs a source does not state
are vLLM's defaults for its version, listed in the case's ``defaults``. The table of every figure
beside its estimate is a golden file: after a change of the reserve model, regenerate it with
``python -m tests.fit.published_logs > tests/fit/data/published_logs_table.md`` and review the diff.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from tests.fit import published_logs
from tests.fit.published_logs import DATA, cases, inputs, summary
from vllmtune.fit.estimate import estimate

CASE_IDS = [c["id"] for c in cases()]


def test_every_case_cites_its_source_and_logs_a_figure() -> None:
    assert len(CASE_IDS) == len(set(CASE_IDS))
    for case in cases():
        assert case["url"].startswith("https://"), case["id"]  # a public issue, README or blog post
        assert case["engine"] in ("V0", "V1") and case["vllm_version"]
        assert {"kv_gib", "kv_tokens"} & set(case["logged"]) or case["failure"], case["id"]
        for key in ("tensor_parallel", "pipeline_parallel", "gpu_memory_utilization", "max_model_len"):
            assert key in case["inputs"], (case["id"], key)


def test_kv_error_within_the_targets() -> None:
    s = summary()
    assert s["median"] <= 0.05, s["median"]
    assert s["max"] <= 0.15, s["max"]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_a_logged_failure_is_never_predicted_to_fit(case_id: str) -> None:
    case = next(c for c in cases() if c["id"] == case_id)
    r = estimate(inputs(case))
    if case["failure"]:
        assert r.fit in ("does not fit", "may not fit"), r.verdict
    else:
        assert r.fit != "does not fit", r.verdict


def test_the_table_is_the_golden_one() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        published_logs.main()
    assert out.getvalue() == (DATA.parent / "published_logs_table.md").read_text()
