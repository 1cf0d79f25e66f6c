"""`ladder --max-error-rate`: a rung whose requests fail too often is a failed rung in the table, the
markdown and ladder.json (with the server's first error bodies), and the ladder exits 1. The rungs
run on the local runtime with a `vllm` that starts the stub server (vllmtune/bench/stub.py): the
prefix-caching rung's stub refuses every request as too long, as vLLM does past --max-model-len."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.cli import vt
from tests.support.ladder import stub_ladder

TOO_LONG = (
    r"http_400 \(\dx\): This model's maximum context length is 64 tokens\. However, you requested \d+ tokens "
    r"\(\d+ in the messages, 8 in the completion\)\. Please reduce the length of the messages or completion\."
)


def test_a_rung_over_the_error_rate_is_failed_and_the_ladder_exits_1(tmp_path: Path) -> None:
    prof, env = stub_ladder(
        tmp_path,
        "lad-err",
        "prefix_caching: true\n",
        '["--max-model-len", "64"] if "--enable-prefix-caching" in argv else []',
    )
    out = tmp_path / "out"
    argv = ["ladder", str(prof), "--runtime", "local", "-w", "duplicates",
            "-n", "8", "-c", "2", "--max-tokens", "8", "-o", str(out)]  # fmt: skip
    r = vt(*argv, env=env, timeout=300)
    assert r.returncode == 1, r.stderr
    table = r.stdout.splitlines()
    assert table[0] == (
        "| Config | p50 ms | p99 ms | TTFT p50 | Server TTFT p50 | Tokens/call | Cache hits | Quality | Server ms/req "
        "| Relative cost | vs previous rung |"
    )
    assert table[2].startswith("| baseline | ") and table[2].endswith(" | 1.00x | - |")
    assert table[3] == "| + prefix caching (FAILED) | - | - | - | - | - | - | - | - | - | - |"
    assert table[4:] == [  # no change to judge: the only other rung failed
        "",
        "Operating point: closed loop at concurrency 2, 8 measured requests per rung per round after 2 warm-up "
        "requests (excluded), workload duplicates, seed 0, 1 round (the rungs one after another).",
        "Relative cost: server-busy seconds per successful request at that point (the union of the requests' "
        "in-server intervals; prompt-cache hits cost 0), relative to the first rung, with Fieller's 95% CI of the "
        "ratio (its verdict reads the 99.2% CI). [a, b]: 95% CI. Server TTFT p50: vLLM's TTFT histogram, "
        "interpolated within its bucket (the CI: a bootstrap over the bucketed counts; no finer than the buckets).",
    ]
    err = r.stderr.splitlines()
    at = err.index(
        "ladder: + prefix caching: FAILED: 8 of 8 requests failed (100.0%, above --max-error-rate 5.0%); "
        "first distinct errors:"
    )
    assert all(re.fullmatch("  " + TOO_LONG, line) for line in err[at + 1 : at + 4]), err[at + 1 : at + 4]
    assert err[-1] == (
        "error: too many requests failed on prefix-caching (above --max-error-rate 5.0%): "
        "see the first errors above and in report.md"
    )
    md = (out / "report.md").read_text().splitlines()
    at = md.index("- + prefix caching: failed (8 of 8 requests failed (100.0%, above --max-error-rate 5.0%))")
    assert all(re.fullmatch("  - " + TOO_LONG, line) for line in md[at + 1 : at + 4]), md[at + 1 : at + 4]
    assert md[at + 4] == "- + batching: skipped (not configured in the profile)"
    summary = json.loads((out / "ladder.json").read_text())
    assert (summary["failed_rungs"], summary["error_rate_failures"]) == (["prefix-caching"], ["prefix-caching"])
    [entry] = [e for e in summary["rungs"] if e["rung"] == "prefix-caching"]
    assert entry["status"] == "failed"
    assert sum(s["count"] for s in entry["error_samples"]) <= 8
    assert all(s["error"] == "http_400" for s in entry["error_samples"])
    assert (out / "prefix-caching.json").exists()  # measured and kept, for a look
    assert [row["config"] for row in summary["rows"]] == ["baseline", "+ prefix caching"]
    assert summary["rows"][1]["failed"] is True

    # a looser threshold accepts the same rung (it is measured again: its profile is unchanged but
    # it failed, and --resume re-reports a failure; a fresh directory runs it)
    r = vt(*argv[:-1], str(tmp_path / "out2"), "--max-error-rate", "1", env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[3].startswith("| + prefix caching | ")
