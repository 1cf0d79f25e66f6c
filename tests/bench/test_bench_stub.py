"""`vllmtune bench` / `compare` against the stub server with controlled timing and faults."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import time
from itertools import pairwise
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.require_real import require_module
from tests.support.stub import stub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


vt = Cli(env={"XDG_CACHE_HOME": "/nonexistent-cache"})


def test_ttft_and_inter_token_latency_are_measured(tmp_path: Path) -> None:
    with stub("--ttft", "0.08", "--itl", "0.02", "--tokens", "10") as url:
        r = vt(
            "bench",
            url,
            "-n",
            "12",
            "-c",
            "4",
            "-w",
            "random",
            "--max-tokens",
            "20",
            "-o",
            str(tmp_path / "r.json"),
            "--output",
            "json",
        )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    s = res["summary"]
    assert s["requests_ok"] == 12
    # Lower bounds only, and only those the stub's sleeps guarantee (a sleep is never shorter):
    # the first token after 80 ms, the last after 80 ms + 9 x 20 ms. How close to them a busy
    # machine gets is a benchmark's claim (benchmarks/bench_stub_timing.py), not a test's.
    assert s["ttft_ms"]["p50"] >= 80 and s["ttft_ms"]["count"] == 12
    assert s["e2e_ms"]["p50"] >= 80 + 9 * 20
    assert s["e2e_ms"]["p50"] >= s["ttft_ms"]["p50"]
    assert s["itl_token_ms"]["count"] == 12 * 9  # 10 one-token chunks: 9 gaps per request
    assert s["tokens_per_chunk"]["mean"] == 1.0
    assert s["tokens_per_call"] == 10
    assert res["config"]["workload"] == "random" and res["config"]["seed"] == 0
    assert res["definitions"]["ttft_ms"].startswith("time to first token")
    assert res["server_metrics"]["vllm:prefix_cache_queries_total"] > 0


def test_several_tokens_per_chunk_like_speculative_decoding() -> None:
    with stub("--itl", "0.01", "--tokens", "12", "--tokens-per-chunk", "3") as url:
        res = json.loads(vt("bench", url, "-n", "6", "-c", "2", "--output", "json").stdout)
    s = res["summary"]
    assert s["tokens_per_chunk"]["mean"] == 3.0
    # each chunk gap divided by the 3 tokens of that chunk (whatever the gap measured)
    assert s["itl_token_ms"]["count"] == s["itl_chunk_ms"]["count"] == 6 * 3  # 4 chunks: 3 gaps
    assert s["itl_token_ms"]["p50"] == pytest.approx(s["itl_chunk_ms"]["p50"] / 3, rel=0.01)


def test_errors_are_counted_not_hidden() -> None:
    with stub("--fail-every", "4", "--malformed-every", "5", "--cut-every", "7", "--itl", "0.001") as url:
        r = vt("bench", url, "-n", "40", "-c", "1", "--output", "json")
    res = json.loads(r.stdout)
    errors = res["errors"]
    assert errors.get("http_500") == 10
    assert errors.get("malformed_sse", 0) >= 3
    assert errors.get("connection", 0) + errors.get("stream_incomplete", 0) >= 3
    assert res["summary"]["requests_ok"] == 40 - sum(errors.values())


def test_non_streaming_and_completions_api() -> None:
    with stub() as url:
        res = json.loads(vt("bench", url, "-n", "20", "--no-stream", "--api", "completions", "--output", "json").stdout)
    assert res["summary"]["requests_ok"] == 20
    assert res["summary"]["ttft_ms"] == {"count": 0}


def test_rate_is_held_and_lag_reported() -> None:
    with stub() as url:
        res = json.loads(vt("bench", url, "-n", "20", "--rate", "40", "--output", "json").stdout)
    assert res["config"]["arrivals"] == "constant"
    # held: the 20th request is not sent before its slot, 19 x 25 ms after the first
    assert res["summary"]["wall_s"] >= 19 / 40
    assert res["summary"]["schedule_lag_p50_ms"] >= 0  # reported, and never early


def test_quality_scored_from_jsonl(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"input": "say ok", "expected": "OkOkOkOkOk!"}\n\n{"input": [{"role": "user", "content": "x"}], '
        '"expected": "something else", "max_tokens": 5}\n'
    )
    with stub("--tokens", "5") as url:
        res = json.loads(vt("bench", url, "-w", str(cases), "-n", "4", "--output", "json").stdout)
    assert res["quality"] == {"cases": 4, "exact": 0.0, "normalized": 0.5}


def test_bad_input_messages(tmp_path: Path) -> None:
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"input": "a"}\n{"input": "b",}\n')
    with stub() as url:
        r = vt("bench", url, "-w", str(bad))
        assert (r.returncode, r.stderr) == (
            1,
            f"error: {bad}:2: not valid JSON (Expecting property name enclosed in double quotes at column 15)\n",
        )
        r = vt("bench", url, "--model", "gpt-9")
        assert (r.returncode, r.stderr) == (
            1,
            "error: the server serves stub-model, not 'gpt-9'; use --model stub-model\n",
        )
        r = vt("bench", url, "-w", "nope")
        assert r.stderr == (
            "error: unknown workload 'nope': use shared-prefix, duplicates, mixed, random, multi-turn, rag, a JSONL file (eval cases or OpenAI chat "
            "requests) or a ShareGPT JSON file\n"
        )
    port = free_port()
    r = vt("bench", f"http://127.0.0.1:{port}")
    assert (r.returncode, r.stderr) == (
        1,
        f"error: nothing answers at http://127.0.0.1:{port}: start the server "
        "(vllmtune up PROFILE -d) or check the URL\n",
    )


def test_ctrl_c_writes_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    with stub("--itl", "0.05", "--tokens", "20") as url:
        proc = vt.popen("bench", url, "-n", "500", "-c", "2", "-o", str(out))
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "warning: interrupted: the result is partial" in err
    res = json.loads(out.read_text())
    assert res["partial"] is True
    assert 0 < res["summary"]["requests_ok"] < 500


def test_compare_table_and_formats(tmp_path: Path) -> None:
    with stub("--ttft", "0.05", "--itl", "0.01", "--tokens", "8") as slow_url:
        vt("bench", slow_url, "-n", "20", "-c", "2", "-l", "baseline", "-o", str(tmp_path / "a.json"))
    with stub("--ttft", "0.01", "--itl", "0.005", "--tokens", "8") as fast_url:
        vt("bench", fast_url, "-n", "20", "-c", "2", "-l", "prefix", "-o", str(tmp_path / "b.json"))
    r = vt("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))  # no price: no $ columns
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "Config",
        "p50",
        "ms",
        "p99",
        "ms",
        "TTFT",
        "p50",
        "TTFT",
        "p99",
        "Tokens/call",
        "Output",
        "tok/s",
        "Quality",
        "Relative",
        "cost",
    ]
    assert lines[1].startswith("baseline") and lines[1].endswith("1.00x")
    assert lines[2].startswith("prefix")
    a, b = (json.loads((tmp_path / f).read_text())["summary"] for f in ("a.json", "b.json"))
    # relative cost = the reference's throughput / this one's (whichever was faster on this machine)
    assert lines[2].split()[-1] == f"{a['request_throughput'] / b['request_throughput']:.2f}x"
    assert lines[4] == "vs baseline:"
    assert lines[5].startswith("  prefix: p50 -") and "(95% CI -" in lines[5]
    md = vt("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--output", "markdown").stdout
    assert md.splitlines()[1].startswith("|---|")
    rows = json.loads(
        vt(
            "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--gpu-hour-usd", "2.49", "--output", "json"
        ).stdout
    )["rows"]
    for row, summary in zip(rows, (a, b), strict=True):
        assert row["usd_per_1k_requests"] == pytest.approx(2.49 / (summary["request_throughput"] * 3600) * 1000)
    csv_text = vt("compare", str(tmp_path / "a.json"), "--output", "csv").stdout
    assert csv_text.startswith("config,")
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    r = vt("compare", str(bad))
    assert (r.returncode, r.stderr) == (
        1,
        f"error: {bad}: not a vllmtune bench result (write one with vllmtune bench -o FILE)\n",
    )


def test_plot(tmp_path: Path) -> None:
    require_module("matplotlib", "matplotlib (pip install -e '.[test]')")
    with stub("--ttft", "0.01") as url:
        vt("bench", url, "-n", "10", "-o", str(tmp_path / "a.json"))
    r = vt("compare", str(tmp_path / "a.json"), "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_and_the_ceiling_warning(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    r = vt("bench", "--calibrate", "--output", "json", env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout)
    # a measured rate (how high is this machine's business: benchmarks/bench_client_ceiling.py)
    assert isinstance(figures["non_streaming_c16_req_s"], float) and figures["non_streaming_c16_req_s"] > 0
    assert json.loads((tmp_path / "vllmtune" / "bench-ceiling.json").read_text()) == figures
    # pretend the ceiling is tiny: an ordinary run now gets the warning
    (tmp_path / "vllmtune" / "bench-ceiling.json").write_text('{"non_streaming_c16_req_s": 5}')
    with stub() as url:
        r = vt("bench", url, "-n", "50", env=env)
    assert (
        "close to this client's ceiling (5 req/s, vllmtune bench --calibrate): the client may be the bottleneck"
        in r.stderr
    )


def test_zero_prefix_cache_hits_are_reported_not_a_crash() -> None:
    with stub("--prefix-hit-share", "0") as url:
        r = vt("bench", url, "-n", "4", "-c", "2", "-w", "random")
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if "server prefix cache" in x]
    assert len(line) == 1 and line[0].startswith("  server prefix cache: 0 of ")
    assert line[0].endswith(" prompt tokens hit (0.0%)")


def test_every_request_failing_is_exit_1_with_the_servers_reason(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with stub("--max-model-len", "64") as url:
        r = vt("bench", url, "-n", "8", "-c", "2", "-w", "duplicates", "--max-tokens", "8", "-o", str(out))
    assert r.returncode == 1, r.stderr
    assert "  ok 0/8  errors http_400 8" in r.stdout
    err = r.stderr.splitlines()
    assert err[0] == f"wrote {out}"
    assert err[1] == "error: 8 of 8 requests failed (100.0%, above --max-error-rate 5.0%); first distinct errors:"
    # the first 3 distinct bodies (the prompts differ in length), each with its count
    for line in err[2:5]:
        assert re.fullmatch(
            r"  http_400 \(\dx\): This model's maximum context length is 64 tokens\. However, you requested "
            r"(\d+) tokens \(\d+ in the messages, 8 in the completion\)\. Please reduce the length of the "
            r"messages or completion\.",
            line,
        ), line
    assert err[5:] == [
        "  (the server's max_model_len is 64 tokens: shorten the workload's prompts and --max-tokens, "
        "or raise model.max_model_len)"
    ]
    res = json.loads(out.read_text())  # still written, for a look
    assert res["error_samples"][0]["error"] == "http_400"
    assert res["error_samples"][0]["message"].startswith("This model's maximum context length is 64 tokens.")


def test_error_rate_threshold(tmp_path: Path) -> None:
    with stub("--fail-every", "4") as url:  # 25% fail
        loose = vt("bench", url, "-n", "20", "-c", "1", "--max-error-rate", "0.3")
        strict = vt("bench", url, "-n", "20", "-c", "1")
    assert loose.returncode == 0, loose.stderr
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[-2:] == [
        "error: 5 of 20 requests failed (25.0%, above --max-error-rate 5.0%); first distinct errors:",
        "  http_500 (5x): stub failure",
    ]


def test_compare_warns_on_different_workloads_and_shows_costs(tmp_path: Path) -> None:
    with stub("--tokens", "8") as url:
        vt("bench", url, "-n", "10", "-w", "shared-prefix", "-l", "a", "-o", str(tmp_path / "a.json"))
        vt("bench", url, "-n", "10", "-w", "random", "-l", "b", "-o", str(tmp_path / "b.json"))
        vt("bench", url, "-n", "10", "-w", "random", "-l", "c", "-o", str(tmp_path / "c.json"))
    a, b, c = (str(tmp_path / f"{x}.json") for x in "abc")
    r = vt("compare", a, b)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        "warning: these results ran different workloads, so the comparison is not like for like: "
        f"{a}: shared-prefix, seed 0, 10 requests; {b}: random, seed 0, 10 requests\n"
    )
    assert vt("compare", b, c).stderr == ""
    # --gpu-hour-usd: $ per 1k requests and per 1M output tokens, in text and markdown
    r = vt("compare", b, c, "--gpu-hour-usd", "3.6")
    header, row_b = r.stdout.splitlines()[:2]
    assert header.endswith("Relative cost  $/1k req  $/1M out tok")
    res = json.loads(Path(b).read_text())["summary"]
    per_1k = 3.6 / (res["request_throughput"] * 3600) * 1000
    per_1m = 3.6 / (res["output_token_throughput"] * 3600) * 1e6
    assert row_b.split()[-2:] == [f"{per_1k:,.4f}", f"{per_1m:,.2f}"]
    md = vt("compare", b, c, "--gpu-hour-usd", "3.6", "--output", "markdown").stdout.splitlines()
    assert md[0].endswith("| Relative cost | $/1k req | $/1M out tok |")
    assert md[2].endswith(f"| {per_1k:,.4f} | {per_1m:,.2f} |")
    assert "$/1k req" not in vt("compare", b, c).stdout  # no price, no $ columns


def test_goodput_counts_the_requests_within_the_slo() -> None:
    # every 4th request waits 1 s more for its first token: 5 of 20 are over a 500 ms TTFT bound
    # whatever the machine's load (a sleep is never shorter); the others have 500 ms of slack
    with stub("--slow-every", "4", "--slow-ttft", "1.0", "--tokens", "4") as url:
        r = vt("bench", url, "-n", "20", "-c", "4", "-w", "random", "--max-tokens", "4",
               "--slo", "ttft_p50=500ms,e2e_p99=30s", "--output", "json")  # fmt: skip
        text = vt("bench", url, "-n", "20", "-c", "4", "-w", "random", "--max-tokens", "4", "--slo", "ttft=500ms")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    g = res["slo"]
    assert (g["good_requests"], g["requests_sent"], g["good_share"]) == (15, 20, 0.75)
    assert g["goodput"] == pytest.approx(15 / res["summary"]["wall_s"], rel=1e-3)
    assert res["summary"]["goodput"] == g["goodput"]
    ttft, e2e = g["objectives"]
    assert (ttft["objective"], ttft["limit_ms"], ttft["requests_within"], ttft["met"]) == ("ttft_p50", 500.0, 15, True)
    assert ttft["observed_ms"] < 500
    assert (e2e["objective"], e2e["limit_ms"], e2e["requests_within"], e2e["met"]) == ("e2e_p99", 30000.0, 20, True)
    assert e2e["observed_ms"] >= 1000  # the slow ones are in the p99
    assert g["met"] is True  # at the p50 the TTFT objective holds, although 5 requests missed it
    # the text report: p99 by default, so this run does not meet its SLO
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  goodput "))
    assert re.fullmatch(
        r"  goodput      [\d.]+ req/s: 15 of 20 requests \(75\.0%\) within every bound; SLO NOT met", lines[at]
    ), lines[at]
    assert re.fullmatch(r"    ttft_p99   [\d,.]+ ms \(limit 500\.0\): over, 15 requests within", lines[at + 1]), lines[
        at + 1
    ]


def test_bad_slo_is_a_clear_error_before_any_request() -> None:
    r = vt("bench", "http://127.0.0.1:9", "--slo", "ttft_p99=500ms,latency=2s")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "error: --slo 'latency=2s': unknown metric 'latency'; use one of ttft, tpot, itl, e2e\n"
    r = vt("bench", "http://127.0.0.1:9", "--slo", "itl_p99=50ms", "--no-stream")
    assert r.returncode == 1
    assert r.stderr == "error: --slo itl_p99: measured on streamed answers only; drop --no-stream\n"


def test_find_max_rate_bisects_below_the_servers_capacity(tmp_path: Path) -> None:
    # One answer at a time (--max-concurrent 1), each >= 40 ms (4 gaps of 10 ms): the stub completes
    # at most 25 req/s. Closed loop at c=16 queues 15 requests ahead of the last: its p99 e2e is
    # >= 600 ms, over the 200 ms bound whatever the load, so the search bisects below that run's
    # throughput; at 5 req/s each answer has 160 ms of slack (the generous lower bound).
    saved = tmp_path / "requests.jsonl"
    with stub("--itl", "0.01", "--tokens", "5", "--max-concurrent", "1") as url:
        r = vt("bench", url, "-w", "random", "--max-tokens", "5", "-n", "30", "-c", "16",
               "--slo", "e2e_p99=200ms", "--find-max-rate", "--max-trials", "5",
               "--save-requests", str(saved), "--output", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    f = res["find_max_rate"]
    trials = f["trials"]
    assert len(trials) == 5
    assert trials[0]["rate"] is None and trials[0]["met"] is False
    assert trials[0]["request_throughput"] <= 25.5  # the capacity (a little slack for timer granularity)
    met = [t["rate"] for t in trials[1:] if t["met"]]
    missed = [t["rate"] for t in trials[1:] if not t["met"]]
    assert not met or not missed or max(met) < min(missed)  # bisection: below every miss
    assert f["max_rate"] == max(met)
    assert 5 <= f["max_rate"] <= trials[0]["request_throughput"]
    # the bisection points: halves of the range, in order
    lo, hi = 0.0, trials[0]["request_throughput"]
    for t in trials[1:]:
        assert t["rate"] == pytest.approx((lo + hi) / 2)
        lo, hi = (t["rate"], hi) if t["met"] else (lo, t["rate"])
    assert res["config"]["rate"] == f["max_rate"]  # the figures are the best trial's
    assert res["slo"]["met"] is True
    lines = saved.read_text().splitlines()
    assert len(lines) == 30 and not (tmp_path / "requests.jsonl.trial").exists()


def test_save_requests_writes_one_line_per_request(tmp_path: Path) -> None:
    saved = tmp_path / "r.jsonl"
    with stub("--fail-every", "5", "--tokens", "4", "--tokens-per-chunk", "2") as url:
        r = vt("bench", url, "-w", "random", "--max-tokens", "4", "-n", "10", "-c", "2",
               "--max-error-rate", "0.5", "--save-requests", str(saved))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"wrote {saved}" in r.stderr.splitlines()
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    assert sorted(row["index"] for row in rows) == list(range(10))
    failed = [row for row in rows if row["error"]]
    assert [(row["status"], row["error"], row["error_detail"]) for row in failed] == [
        (500, "http_500", "stub failure")
    ] * 2
    for row in rows:
        assert set(row) == {"index", "scheduled_ms", "sent_ms", "ttft_ms", "e2e_ms", "status", "error",
                            "error_detail", "prompt_tokens", "completion_tokens", "cached_tokens",
                            "chunk_tokens", "chunk_gaps_ms", "x_cache"}  # fmt: skip
        assert row["x_cache"] is None  # no prompt-cache proxy in front of the stub
        if not row["error"]:
            assert row["status"] == 200 and row["completion_tokens"] == 4 and row["chunk_tokens"] == [2, 2]
            assert len(row["chunk_gaps_ms"]) == 1
            assert 0 <= row["ttft_ms"] <= row["e2e_ms"]


def test_burstiness_draws_gamma_intervals(tmp_path: Path) -> None:
    from scipy import stats as sps

    saved = tmp_path / "r.jsonl"
    rate, shape, n = 1000.0, 0.5, 1500
    with stub() as url:
        r = vt("bench", url, "-w", "random", "--max-tokens", "2", "-n", str(n), "-c", "32", "--rate", str(rate),
               "--burstiness", str(shape), "--save-requests", str(saved), "--output", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["config"]["arrivals"] == "gamma (burstiness 0.5)"
    scheduled = sorted(json.loads(line)["scheduled_ms"] for line in saved.read_text().splitlines())
    gaps = [(b - a) / 1000 for a, b in pairwise(scheduled)]
    # the seeded schedule's intervals are Gamma(shape, 1 / (rate * shape)) (mean 1/rate), as vllm
    # bench serve draws them: a one-sample KS test at a 1e-6 false-alarm level (the schedule is
    # seeded, so this is the same draw every run; the file's times are rounded to 1 ns, which moves
    # the CDF by under 0.001 even at this shape's steep start)
    d = sps.kstest(gaps, sps.gamma(a=shape, scale=1 / (rate * shape)).cdf).statistic
    assert d < 2.78 / len(gaps) ** 0.5 + 0.001, d


def test_burstiness_needs_a_rate_and_a_positive_shape() -> None:
    r = vt("bench", "http://127.0.0.1:9", "--burstiness", "0.5")
    assert (r.returncode, r.stderr) == (1, "error: --burstiness shapes the arrivals at --rate: give --rate too\n")
    r = vt("bench", "http://127.0.0.1:9", "--rate", "5", "--burstiness", "-1")
    assert (r.returncode, r.stderr) == (1, "error: --burstiness must be a positive number (1 = Poisson), not -1\n")
    r = vt("bench", "http://127.0.0.1:9", "--find-max-rate")
    assert (r.returncode, r.stderr) == (
        1,
        "error: --find-max-rate searches the highest rate meeting an SLO: give --slo too\n",
    )


def test_injected_ttft_and_chunk_gap_are_what_the_client_reports(tmp_path: Path) -> None:
    """The stub waits 50 ms before the first token and 10 ms between chunks (asyncio sleeps, never
    shorter). The 2 ms accuracy claim is a timing claim and lives in benchmarks/bench_stub_timing.py
    (measured there: TTFT p50 +1.0 to +1.5 ms, chunk gap +0.3 ms on this machine); the exact
    accounting is tested with an injected clock in tests/bench/test_runner.py. Here: the figures
    are the right ones in the right unit — not below what the stub's sleeps guarantee, and not off
    by as much as half the injected delay, which scheduling on a loaded 2-core machine does not do
    to a median but a wrong start instant, a wrong unit or a per-token/per-chunk mix-up does."""
    with stub("--ttft", "0.05", "--itl", "0.01", "--tokens", "16") as url:
        r = vt("bench", url, "-n", "40", "-c", "4", "-w", "random", "--max-tokens", "16", "--warmup", "4",
               "-o", str(tmp_path / "r.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert (s["requests_ok"], s["tokens_per_call"]) == (40, 16)
    assert s["itl_chunk_ms"]["count"] == 40 * 15
    assert 50 <= s["ttft_ms"]["p50"] < 75, s["ttft_ms"]
    # the sleeps bound the gaps between sends; a late read of one chunk shortens the next gap
    # seen by the client, so the gaps' median gets 1 ms below the sleep
    assert 9 <= s["itl_chunk_ms"]["p50"] < 15, s["itl_chunk_ms"]
    assert 9 <= s["itl_token_ms"]["p50"] < 15, s["itl_token_ms"]


DATA = Path(__file__).parent / "data"


def test_user_files_are_recorded_by_digest_and_compare_tells_them_apart(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_bytes((DATA / "chat_sample.jsonl").read_bytes())
    a, b, c, d = (str(tmp_path / f"{x}.json") for x in "abcd")
    with stub() as url:
        assert vt("bench", url, "-n", "6", "-w", str(DATA / "sharegpt_sample.json"), "-o", a).returncode == 0
        assert vt("bench", url, "-n", "6", "-w", str(chat), "-o", b).returncode == 0
        assert vt("bench", url, "-n", "6", "-w", str(chat), "-o", c).returncode == 0
        chat.write_text(chat.read_text().replace("five", "six"))  # same path, other requests
        assert vt("bench", url, "-n", "6", "-w", str(chat), "-o", d).returncode == 0
    config = json.loads(Path(a).read_text())["config"]
    share = hashlib.sha256((DATA / "sharegpt_sample.json").read_bytes()).hexdigest()
    assert (config["workload_format"], config["workload_sha256"]) == ("sharegpt", share)
    assert json.loads(Path(a).read_text())["summary"]["requests_ok"] == 6
    digest_b = json.loads(Path(b).read_text())["config"]["workload_sha256"]
    digest_d = json.loads(Path(d).read_text())["config"]["workload_sha256"]
    assert digest_b == hashlib.sha256((DATA / "chat_sample.jsonl").read_bytes()).hexdigest()
    assert digest_d == hashlib.sha256(chat.read_bytes()).hexdigest() != digest_b
    assert vt("compare", b, c).stderr == ""
    assert vt("compare", b, c, "--strict").returncode == 0
    r = vt("compare", b, d)
    assert r.returncode == 0
    listing = (
        f"{b}: {chat} (sha256 {digest_b[:12]}), seed 0, 6 requests; {d}: {chat} (sha256 {digest_d[:12]}), "
        "seed 0, 6 requests"
    )
    assert r.stderr == (
        f"warning: these results ran different workloads, so the comparison is not like for like: {listing}\n"
    )
    r = vt("compare", b, d, "--strict")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"error: --strict: these results ran different workloads: {listing}\n"
        "  hint: run each config on the same --workload (file), --seed, -n and --session-header, or drop --strict\n"
    )


def test_ignore_eos_is_sent_and_recorded(tmp_path: Path) -> None:
    from vllmtune.bench.runner import Options, _body
    from vllmtune.bench.workloads import Case

    case = Case(messages=(("user", "hi"),), max_tokens=3)
    for api in ("chat", "completions"):
        assert json.loads(_body(case, Options(url="", model="m", cases=[], api=api, ignore_eos=True)))["ignore_eos"]
        assert "ignore_eos" not in json.loads(_body(case, Options(url="", model="m", cases=[], api=api)))
    with stub() as url:
        r = vt("bench", url, "-n", "2", "-w", "random", "--ignore-eos", "-o", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["config"]["ignore_eos"] is True


def test_the_server_deltas_leave_the_warm_up_out() -> None:
    # the stub counts every request it answers in vllm:time_to_first_token_seconds_count
    with stub() as url:
        res = json.loads(vt("bench", url, "-n", "5", "-c", "2", "--warmup", "3", "--output", "json").stdout)
    assert res["summary"]["requests_ok"] == 5
    assert res["server_metrics"]["vllm:time_to_first_token_seconds_count"] == 5


def _tenants_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenants.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 2, "user": f"tenant-{i % 3}"}
        for i in range(5)
    ]
    lines.insert(2, {"messages": [{"role": "user", "content": "anonymous"}], "max_tokens": 2})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_session_header_arrives_on_the_wire_for_each_request_with_a_user(tmp_path: Path) -> None:
    workload = _tenants_file(tmp_path)
    log = tmp_path / "received.jsonl"
    with stub("--record-headers", str(log)) as url:
        r = vt("bench", url, "-w", str(workload), "-n", "6", "-c", "1", "--session-header", "X-Tenant-Id",
               "-o", str(tmp_path / "h.json"))  # fmt: skip
        assert r.returncode == 0, r.stderr
        sent = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        r = vt("bench", url, "-w", str(workload), "-n", "6", "-c", "1", "-o", str(tmp_path / "none.json"))
        assert r.returncode == 0, r.stderr
        plain = [json.loads(line) for line in log.read_text().splitlines()]
    # -c 1: one request at a time, in the file's order; the header as named, once, on each request with a user
    assert [[v for k, v in e["headers"] if k == "X-Tenant-Id"] for e in sent] == [
        ["tenant-0"],
        ["tenant-1"],
        [],
        ["tenant-2"],
        ["tenant-0"],
        ["tenant-1"],
    ]
    assert all(k.lower() != "x-tenant-id" for e in plain for k, _ in e["headers"])
    assert len(plain) == 6
    assert json.loads((tmp_path / "h.json").read_text())["config"]["session_header"] == "X-Tenant-Id"
    assert json.loads((tmp_path / "none.json").read_text())["config"]["session_header"] is None
    r = vt("compare", str(tmp_path / "h.json"), str(tmp_path / "none.json"))
    assert r.returncode == 0
    assert (
        f"warning: these results ran different workloads, so the comparison is not like for like: "
        f"{tmp_path / 'h.json'}: {workload} (sha256 {hashlib.sha256(workload.read_bytes()).hexdigest()[:12]}), seed 0, "
        f"6 requests, session header x-tenant-id; {tmp_path / 'none.json'}: {workload} "
        f"(sha256 {hashlib.sha256(workload.read_bytes()).hexdigest()[:12]}), seed 0, 6 requests\n"
    ) in r.stderr


def test_session_header_refusals_send_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"messages": [{"content": "a"}], "user": "ok"}\n{"messages": [{"content": "b"}], "user": "x\\r\\nEvil: 1"}\n'
    )
    log = tmp_path / "received.jsonl"
    with stub("--record-headers", str(log)) as url:
        r = vt("bench", url, "-w", str(bad), "-n", "2", "--session-header", "x-tenant-id")
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == (
            f"error: {bad}:2: \"user\" 'x\\r\\nEvil: 1' cannot be sent as the x-tenant-id header: it holds the "
            "control character U+000D; change that user, or leave out --session-header\n"
        )
        r = vt("bench", url, "-w", str(_tenants_file(tmp_path)), "-n", "2", "--session-header", "Authorization")
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == (
            "error: --session-header Authorization: the benchmark client writes that header itself; "
            "name the header the router reads, e.g. --session-header x-tenant-id (vllm-router's "
            "consistent_hash reads x-session-id, x-user-id, x-tenant-id, x-correlation-id, x-request-id or "
            "x-trace-id)\n"
        )
    assert not log.exists()  # refused before any request
