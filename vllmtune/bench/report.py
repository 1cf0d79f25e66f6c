"""Turn records into the result JSON, and results into the comparison table."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vllmtune.bench.metrics import Scrape, counter_deltas, histogram_deltas, spec_decode
from vllmtune.bench.runner import Options, Record, error_counts, error_samples
from vllmtune.bench.slo import Objective, RequestMetrics, goodput
from vllmtune.bench.stats import diff_ci, quantile_ci_min_samples, summarize
from vllmtune.errors import CompareError as CompareError

RESULT_VERSION = 1
DEFINITIONS = {
    "ttft_ms": "time to first token: request sent -> first chunk carrying output (streaming only)",
    "itl_chunk_ms": "inter-chunk latency: gap between consecutive output chunks",
    "itl_token_ms": "inter-token latency: each chunk gap divided by the tokens that chunk carried",
    "tokens_per_chunk": "output tokens per streamed chunk (above 1 with speculative decoding)",
    "tpot_ms": "time per output token after the first: (e2e - ttft) / (completion_tokens - 1)",
    "e2e_ms": "end-to-end latency: request sent -> last byte of the answer",
    "request_throughput": "completed requests per second of the measured (post-warm-up) wall time",
    "output_token_throughput": "completion tokens per second of the measured wall time",
    "quality": "share of JSONL cases with 'expected' whose answer matches (exact, or normalized: "
    "case, accents, punctuation and spacing ignored)",
    "goodput": "requests per second completed with every per-request metric within its --slo bound "
    "(vllm bench serve --goodput's definition)",
    "relative_cost": "cost per request relative to the first config: (GPU $/h / requests per s) ratio",
}


def normalize(text: str) -> str:
    """For the normalized match: lowercase, no accents, no punctuation, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def quality(records: list[Record], cases: list[Any]) -> dict[str, Any] | None:
    """Exact and normalized match rates over cases that have an expected answer."""
    scored = [(r, cases[r.index % len(cases)]) for r in records if r.error is None]
    scored = [(r, c) for r, c in scored if c.expected is not None]
    if not scored:
        return None
    exact = sum(r.text.strip() == c.expected.strip() for r, c in scored)
    norm = sum(normalize(r.text) == normalize(c.expected) for r, c in scored)
    return {"cases": len(scored), "exact": exact / len(scored), "normalized": norm / len(scored)}


def build_result(
    opts: Options,
    records: list[Record],
    wall: float,
    *,
    label: str,
    workload: str,
    before: Scrape,
    after: Scrape,
    meta: dict[str, Any],
    partial: bool,
    ceiling: float | None,
    slo: Sequence[Objective] = (),
) -> dict[str, Any]:
    """The result JSON of one run (with goodput when ``slo`` has objectives)."""
    ok = [r for r in records if r.error is None and not math.isnan(r.end)]
    e2e = [(r.end - r.start) * 1000 for r in ok]
    ttft = [(r.first_token - r.start) * 1000 for r in ok if not math.isnan(r.first_token)]
    itl_chunk: list[float] = []
    itl_token: list[float] = []
    tpc: list[float] = []
    tpot: list[float] = []
    for r in ok:
        for t1, t2, k in zip(r.chunk_times, r.chunk_times[1:], r.chunk_tokens[1:], strict=False):
            itl_chunk.append((t2 - t1) * 1000)
            itl_token.append((t2 - t1) * 1000 / max(k, 1))
        tpc.extend(float(k) for k in r.chunk_tokens)
        if r.completion_tokens > 1 and not math.isnan(r.first_token):
            tpot.append((r.end - r.first_token) * 1000 / (r.completion_tokens - 1))
    completion = sum(r.completion_tokens for r in ok)
    sent = [r for r in records if not math.isnan(r.start)]
    lag = [(r.start - r.scheduled) * 1000 for r in sent] if opts.rate else []
    summary: dict[str, Any] = {
        "requests_sent": len(sent),
        "requests_ok": len(ok),
        "wall_s": round(wall, 4),
        "request_throughput": len(ok) / wall if wall > 0 else 0.0,
        "output_token_throughput": completion / wall if wall > 0 else 0.0,
        "tokens_per_call": completion / len(ok) if ok else 0.0,
        "prompt_tokens_per_call": sum(r.prompt_tokens for r in ok) / len(ok) if ok else 0.0,
        "cached_prompt_tokens": sum(r.cached_tokens for r in ok),
        "e2e_ms": summarize(e2e),
        "ttft_ms": summarize(ttft),
        "itl_chunk_ms": summarize(itl_chunk),
        "itl_token_ms": summarize(itl_token),
        "tokens_per_chunk": summarize(tpc),
        "tpot_ms": summarize(tpot),
    }
    warnings = []
    if opts.rate and lag:
        late = sorted(lag)[len(lag) // 2]
        summary["schedule_lag_p50_ms"] = late
        if late > 50:
            warnings.append(
                f"could not hold the target rate of {opts.rate}/s: requests left a median "
                f"{late:.0f} ms late (raise --concurrency or lower --rate)"
            )
    if ceiling and summary["request_throughput"] > 0.7 * ceiling:
        warnings.append(
            f"{summary['request_throughput']:.0f} req/s is close to this client's ceiling "
            f"({ceiling:.0f} req/s, vllmtune bench --calibrate): the client may be the bottleneck"
        )
    server = counter_deltas(before, after)
    q = quality(records, opts.cases)
    slo_result = None
    if slo:
        per_request = []
        for r in ok:
            ttft_ms = (r.first_token - r.start) * 1000 if not math.isnan(r.first_token) else math.nan
            gaps = tuple(
                (t2 - t1) * 1000 / max(k, 1)
                for t1, t2, k in zip(r.chunk_times, r.chunk_times[1:], r.chunk_tokens[1:], strict=False)
            )
            tpot_ms = (r.end - r.first_token) * 1000 / (r.completion_tokens - 1) if r.completion_tokens > 1 else 0.0
            per_request.append(RequestMetrics(ttft_ms, tpot_ms, (r.end - r.start) * 1000, gaps))
        slo_result = goodput(per_request, slo, wall, len(sent))
        summary["goodput"] = slo_result["goodput"]
    return {
        "version": RESULT_VERSION,
        "label": label,
        "partial": partial,
        "config": {
            "endpoint": opts.url,
            "model": opts.model,
            "workload": workload,
            "seed": opts.seed,
            "requests": len(opts.cases),
            "warmup": opts.warmup,
            "concurrency": opts.concurrency,
            "rate": opts.rate,
            "arrivals": arrivals(opts),
            "burstiness": opts.burstiness,
            "duration": opts.duration,
            "stream": opts.stream,
            "api": opts.api,
            "ignore_eos": opts.ignore_eos,
            "session_header": opts.session_header,
            **meta,
        },
        "summary": summary,
        "server_metrics": server,
        "spec_decode": spec_decode(server),
        "server_histograms": histogram_deltas(before, after),
        "quality": q,
        "slo": slo_result,
        "errors": error_counts(records),
        "error_samples": error_samples(records),
        "warnings": warnings,
        "definitions": DEFINITIONS,
        "samples": {"e2e_ms": e2e, "ttft_ms": ttft},
    }


def arrivals(opts: Options) -> str:
    """How requests arrived: closed-loop, constant, poisson or gamma(burstiness)."""
    if not opts.rate:
        return "closed-loop"
    if opts.burstiness is not None:
        return f"gamma (burstiness {opts.burstiness:g})"
    return "poisson" if opts.poisson else "constant"


def request_lines(records: list[Record]) -> list[dict[str, Any]]:
    """One JSON object per measured request (``bench --save-requests``): times in ms from the run
    start (the first request of the measured part is sent near 0)."""

    def ms(v: float) -> float | None:
        return None if math.isnan(v) else round(v * 1000, 6)

    out = []
    for r in records:
        gaps = [round((t2 - t1) * 1000, 3) for t1, t2 in zip(r.chunk_times, r.chunk_times[1:], strict=False)]
        out.append(
            {
                "index": r.index,
                "scheduled_ms": ms(r.scheduled),
                "sent_ms": ms(r.start),
                "ttft_ms": None if math.isnan(r.first_token) else round((r.first_token - r.start) * 1000, 3),
                "e2e_ms": None if math.isnan(r.end) or math.isnan(r.start) else round((r.end - r.start) * 1000, 3),
                "status": r.status,
                "error": r.error,
                "error_detail": r.error_detail or None,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cached_tokens": r.cached_tokens,
                "chunk_tokens": r.chunk_tokens,
                "chunk_gaps_ms": gaps,
                "x_cache": r.x_cache or None,
            }
        )
    return out


# what compare_rows, table_lines and plot read from a result without a default (declared once;
# load_result refuses a file that lacks any of them: a user's mistake, not a crash)
REQUIRED = {
    "summary": ("request_throughput", "output_token_throughput", "tokens_per_call", "e2e_ms", "ttft_ms"),
    "samples": ("e2e_ms", "ttft_ms"),
}


def load_result(path: str) -> dict[str, Any]:
    """Read a result JSON written by ``vllmtune bench -o``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CompareError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise CompareError(f"{path}: not a vllmtune bench result (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("version") != RESULT_VERSION or "summary" not in data:
        raise CompareError(f"{path}: not a vllmtune bench result (write one with vllmtune bench -o FILE)")
    missing = [f"{part}.{key}" for part, keys in REQUIRED.items() for key in keys if key not in _part(data, part)]
    if missing:
        raise CompareError(
            f"{path}: an incomplete vllmtune bench result: no {', '.join(missing)}",
            hint="write it again with vllmtune bench -o FILE (compare and ladder read these keys)",
        )
    data["_path"] = path
    return data


def _part(data: dict[str, Any], part: str) -> dict[str, Any]:
    value = data.get(part)
    return value if isinstance(value, dict) else {}


def compare_rows(
    results: list[dict[str, Any]], gpu_hour_usd: float | None, quality_drop: float = 0.01
) -> list[dict[str, Any]]:
    """One row per result, the first is the reference (relative cost 1.00x)."""
    base = results[0]
    rows = []
    for res in results:
        s = res["summary"]
        thr = s["request_throughput"]
        row: dict[str, Any] = {
            "config": res.get("label") or Path(res["_path"]).stem,
            "p50_ms": s["e2e_ms"].get("p50"),
            "p99_ms": s["e2e_ms"].get("p99"),
            "ttft_p50_ms": s["ttft_ms"].get("p50"),
            "ttft_p99_ms": s["ttft_ms"].get("p99"),
            "tokens_per_call": s["tokens_per_call"],
            "output_tok_s": s["output_token_throughput"],
            "req_s": thr,
            "goodput": s.get("goodput"),  # req/s within every --slo bound (None: the run had no --slo)
            "relative_cost": (base["summary"]["request_throughput"] / thr) if thr else math.inf,
            "errors": sum(res.get("errors", {}).values()),
        }
        if gpu_hour_usd:
            out_tok_s = s["output_token_throughput"]
            row["usd_per_1k_requests"] = gpu_hour_usd / (thr * 3600) * 1000 if thr else math.inf
            row["usd_per_1m_output_tokens"] = gpu_hour_usd / (out_tok_s * 3600) * 1e6 if out_tok_s else math.inf
        q, bq = res.get("quality"), base.get("quality")
        if q:
            row["quality"] = q["normalized"]
            if bq:
                row["quality_delta"] = q["normalized"] - bq["normalized"]
                row["quality_regression"] = row["quality_delta"] < -quality_drop
        if res is not base:
            row.update(_delta_ci("p50_delta_ms_ci95", base["samples"]["e2e_ms"], res["samples"]["e2e_ms"]))
            if base["samples"]["ttft_ms"] and res["samples"]["ttft_ms"]:
                row.update(_delta_ci("ttft_p50_delta_ms_ci95", base["samples"]["ttft_ms"], res["samples"]["ttft_ms"]))
        rows.append(row)
    return rows


def _delta_ci(key: str, a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``{key: the p50 difference's 95% CI}``, or (too few requests for one) ``{key: None,
    key_note: why}``: never NaN, which is not JSON."""
    n = min(sum(not math.isnan(v) for v in a), sum(not math.isnan(v) for v in b))
    need = quantile_ci_min_samples(50)
    if n < need:
        return {key: None, f"{key}_note": f"too few requests for a p50 CI: {n} < {need}"}
    return {key: diff_ci(a, b)}


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


COLUMNS = (
    ("Config", "config", 0),
    ("p50 ms", "p50_ms", 0),
    ("p99 ms", "p99_ms", 0),
    ("TTFT p50", "ttft_p50_ms", 0),
    ("TTFT p99", "ttft_p99_ms", 0),
    ("Tokens/call", "tokens_per_call", 1),
    ("Output tok/s", "output_tok_s", 0),
    ("Quality", "quality", 3),
    ("Relative cost", "relative_cost", 2),
)
# with --gpu-hour-usd: what a request and a million output tokens cost at the measured throughput
COST_COLUMNS = (
    ("$/1k req", "usd_per_1k_requests", 4),
    ("$/1M out tok", "usd_per_1m_output_tokens", 2),
)


def columns_for(rows: list[dict[str, Any]]) -> tuple[tuple[str, str, int], ...]:
    """The table's columns: the $ ones only when a GPU price was given."""
    return COLUMNS + (COST_COLUMNS if any("usd_per_1k_requests" in r for r in rows) else ())


def workload_mismatch(results: list[dict[str, Any]]) -> str | None:
    """What each result ran, when they did not all run the same workload: name, seed, request
    count, for a file its sha256 (the same path may hold other requests; a result from before
    the digest was recorded has none and is told apart by the rest), and the session header its
    requests carried (bench --session-header; none before it was recorded). None when they match."""

    def what(res: dict[str, Any]) -> str:
        c = res.get("config", {})
        digest = c.get("workload_sha256")
        name = f"{c.get('workload')}" + (f" (sha256 {digest[:12]})" if digest else "")
        header = c.get("session_header")
        return f"{name}, seed {c.get('seed')}, {c.get('requests')} requests" + (
            f", session header {header.lower()}" if header else ""  # (header names are case-insensitive)
        )

    if len({what(r) for r in results}) <= 1:
        return None
    return "; ".join(f"{r['_path']}: {what(r)}" for r in results)


def workload_warnings(results: list[dict[str, Any]]) -> list[str]:
    """A warning when the results did not run the same workload (see workload_mismatch)."""
    listing = workload_mismatch(results)
    if listing is None:
        return []
    return ["these results ran different workloads, so the comparison is not like for like: " + listing]


def table_lines(rows: list[dict[str, Any]], markdown: bool) -> list[str]:
    """The comparison as aligned text or a markdown table."""
    columns = columns_for(rows)
    cells = []
    for r in rows:
        line = []
        for _, key, digits in columns:
            v = r.get(key)
            text = _fmt(v, digits)
            if key == "relative_cost" and text != "-":
                text += "x"
            if key == "quality" and r.get("quality_regression"):
                text += " (!)"
            line.append(text)
        cells.append(line)
    header = [c[0] for c in columns]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(c) + " |" for c in cells]
    else:
        widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    deltas = []
    for r in rows[1:]:
        part = _delta_text(r, rows[0], "p50_ms", "p50_delta_ms_ci95", "p50")
        if part:
            tpart = _delta_text(r, rows[0], "ttft_p50_ms", "ttft_p50_delta_ms_ci95", "TTFT p50")
            deltas.append(f"{r['config']}: {part}" + (f", {tpart}" if tpart else ""))
        if r.get("quality_regression"):
            deltas.append(f"{r['config']}: QUALITY DROP {r['quality_delta']:+.3f} vs {rows[0]['config']}")
    if deltas:
        out.append("")
        out.append(f"vs {rows[0]['config']}:")
        out += ["  " + d for d in deltas]
    return out


def _delta_text(row: dict[str, Any], base: dict[str, Any], key: str, ci_key: str, label: str) -> str | None:
    """``p50 -100 ms (95% CI -120 .. -80)``, or with the reason there is no CI; None when the
    row has neither (or either side has no such figure)."""
    if row.get(key) is None or base.get(key) is None:
        return None
    ci, note = row.get(ci_key), row.get(f"{ci_key}_note")
    if ci and not math.isnan(ci[0]):
        why = f"95% CI {ci[0]:+,.0f} .. {ci[1]:+,.0f}"
    elif note:
        why = note
    else:
        return None
    return f"{label} {row[key] - base[key]:+,.0f} ms ({why})"


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (every field)."""
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "config", k))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})
    return buf.getvalue()


def plot(results: list[dict[str, Any]], rows: list[dict[str, Any]], path: str) -> None:
    """Latency CDFs and the relative cost bars, as one PNG (matplotlib, imported lazily)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CompareError("--plot needs matplotlib", hint="pip install matplotlib", sep=": ") from None
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.5))
    for res, row in zip(results, rows, strict=True):
        for ax, key in ((ax1, "e2e_ms"), (ax2, "ttft_ms")):
            vals = sorted(res["samples"][key])
            if vals:
                ax.plot(vals, [(i + 1) / len(vals) for i in range(len(vals))], label=row["config"])
    ax1.set(title="End-to-end latency CDF", xlabel="ms", ylabel="share of requests")
    ax2.set(title="TTFT CDF", xlabel="ms")
    ax1.legend()
    costs = [r["relative_cost"] for r in rows]
    ax3.bar([r["config"] for r in rows], costs, color="tab:green")
    ax3.set(title="Relative cost per request", ylabel="x of first config")
    ax3.tick_params(axis="x", labelrotation=25)
    for label in ax3.get_xticklabels():
        label.set_horizontalalignment("right")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
