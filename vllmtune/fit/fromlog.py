"""``vllmtune fit PROFILE --from-log vllm.log``: the figures a vLLM start-up log states, each
beside vllmtune's estimate for the profile, so that a miss can be seen (and reported).

The log lines read are those vLLM has printed since 0.5 (V0 ``worker.py`` and V1
``gpu_worker.py`` / ``kv_cache_utils.py``); a line vLLM did not print is simply absent from
the comparison. Pure text parsing: no vLLM import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtune.modelfacts.models import FitError

GIB = 1024**3
_NUM = r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)"
_GIB = _NUM + r"\s*Gi?B"

# (figure, regex): the first match of each wins; a figure has several spellings across versions
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx))
    for name, rx in (
        (
            "vllm_version",
            r"(?:LLM engine \(v|API server version |vLLM version |  version )"
            r"([0-9]+\.[0-9]+\.[0-9A-Za-z.+]+)",
        ),
        ("total_gpu_memory_gib", r"total_gpu_memory[ =(]+" + _GIB),
        ("total_gpu_memory_gib", r"Free memory on device \([0-9.]+/" + _NUM + r" GiB\)"),
        ("gpu_memory_utilization", r"gpu_memory_utilization[ =(]+([0-9.]+)"),
        ("gpu_memory_utilization", r"Desired GPU memory utilization is \(([0-9.]+)"),
        ("weights_gib", r"(?:Loading model weights took|Model loading took) " + _GIB),
        ("non_torch_gib", r"non_torch_memory(?: takes|=| +)\s*" + _GIB),
        ("activation_gib", r"(?:PyTorch activation peak memory(?: takes)?|max_inference_spike)\s+" + _GIB),
        ("activation_gib", _GIB + r" for peak activation"),
        ("kv_gib", r"Available KV cache memory: " + _GIB),
        ("kv_gib", r"the rest of the memory reserved for KV Cache is " + _GIB),
        ("kv_gib", r"(?:kv_cache_size=|available_kv_cache_memory\s+)" + _GIB),
        ("kv_tokens", r"(?:GPU|CPU|XPU) KV cache size: " + _NUM + " tokens"),
        ("gpu_blocks", r"(?:^|\s|#) ?(?:GPU|cuda|CUDA) blocks: " + _NUM),
        ("max_concurrency_len", r"Maximum concurrency for " + _NUM + " tokens per request"),
        ("max_concurrency", r"Maximum concurrency for [0-9,]+ tokens per request: " + _NUM + "x"),
    )
)
FAILURES = (
    ("no KV cache memory", re.compile(r"No available memory for the cache blocks")),
    ("max_model_len exceeds the KV cache", re.compile(r"larger than the maximum number of tokens that can be stored")),
    ("max_model_len exceeds the KV cache", re.compile(r"To serve at least one request with the models?'s max seq len")),
    ("CUDA out of memory", re.compile(r"CUDA out of memory")),
    ("start-up failed", re.compile(r"EngineCore failed to start|Engine core initialization failed")),
)


def parse_log(text: str) -> dict[str, Any]:
    """The figures a vLLM start-up log states (first occurrence), and the start-up failure if any."""
    found: dict[str, Any] = {}
    for name, rx in PATTERNS:
        if name in found:
            continue
        m = rx.search(text)
        if m:
            raw = m.group(1)
            found[name] = raw if name == "vllm_version" else float(raw.replace(",", ""))
    for key in ("kv_tokens", "gpu_blocks", "max_concurrency_len"):
        if key in found:
            found[key] = int(found[key])
    for label, rx in FAILURES:
        # a generic engine failure after the KV cache was sized is a stop, not a memory failure
        if label == "start-up failed" and ("kv_tokens" in found or "gpu_blocks" in found):
            continue
        if rx.search(text):
            found["failure"] = label
            break
    if found.get("kv_gib", 0) < 0 or (found.get("gpu_blocks") == 0):
        found["failure"] = "no KV cache memory"  # vLLM logs what is left, then raises
    return found


def read_log(path: str) -> dict[str, Any]:
    """:func:`parse_log` of a file; FitError when unreadable or without any start-up figure."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FitError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    found = parse_log(text)
    if not any(k in found for k in ("weights_gib", "kv_gib", "kv_tokens", "gpu_blocks", "failure")):
        raise FitError(
            f"{path}: no vLLM start-up figures (none of 'Model loading took', 'Available KV cache memory', "
            "'KV cache size: N tokens', '# GPU blocks', or a start-up failure): give the log of a vLLM server's "
            "start, from its first line to 'Maximum concurrency'"
        )
    return found


@dataclass(frozen=True)
class Row:
    figure: str
    logged: float
    estimate: float
    unit: str  # "GiB", "tokens", "x", ""

    @property
    def error(self) -> float | None:
        if not self.logged:
            return None
        return (self.estimate - self.logged) / abs(self.logged)


def compare(report: dict[str, Any], logged: dict[str, Any]) -> list[Row]:
    """Each logged figure beside the fit report's estimate of it."""
    per = report.get("per_gpu") or report["cpu"]
    rows: list[Row] = []
    if "total_gpu_memory_gib" in logged and report.get("gpu_memory_bytes"):
        rows.append(Row("GPU memory", logged["total_gpu_memory_gib"], report["gpu_memory_bytes"] / GIB, "GiB"))
    if "weights_gib" in logged:
        rows.append(Row("weights", logged["weights_gib"], per["weights_bytes"] / GIB, "GiB"))
    parts = per.get("reserve_parts", {})
    if "non_torch_gib" in logged and "non-torch" in parts:
        rows.append(Row("non-torch memory", logged["non_torch_gib"], parts["non-torch"] / GIB, "GiB"))
    if "activation_gib" in logged and report.get("per_gpu"):
        peak = sum(n for name, n in parts.items() if name.startswith(("activations", "sampler")))
        rows.append(Row("activation peak", logged["activation_gib"], peak / GIB, "GiB"))
    if "kv_gib" in logged:
        rows.append(Row("KV cache memory", logged["kv_gib"], _signed_budget(report) / GIB, "GiB"))
    if "kv_tokens" in logged:
        rows.append(Row("KV cache tokens", logged["kv_tokens"], per["kv_tokens"], "tokens"))
    elif "gpu_blocks" in logged:
        rows.append(Row("KV cache blocks", logged["gpu_blocks"], per["num_blocks"], "blocks"))
    if "max_concurrency" in logged:
        rows.append(Row("max concurrency", logged["max_concurrency"], per["max_concurrency"], "x"))
    return rows


def _signed_budget(report: dict[str, Any]) -> float:
    """The KV budget before clamping at zero (vLLM logs negative figures when it does not fit)."""
    per = report.get("per_gpu")
    if per is None:
        return float(report["cpu"]["kv_budget_bytes"])
    return float(per["usable_bytes"] - per["weights_bytes"] - per["draft_weights_bytes"] - per["reserve_bytes"])


def from_log_report(profile: str, log: str, gpu: str | None, gpu_memory: int | None = None) -> dict[str, Any]:
    """``fit PROFILE --from-log LOG``: the fit report and each logged figure beside its estimate.

    Without ``--gpu`` / ``--gpu-memory`` the GPU total the log states is planned for, so that the
    comparison shows the reserve model and not a catalog figure.
    """
    from vllmtune.fit.command import fit_report

    logged = read_log(log)
    notes: list[str] = []
    if gpu_memory is None and "total_gpu_memory_gib" in logged:
        gpu_memory = int(logged["total_gpu_memory_gib"] * GIB)
        notes.append(f"GPU memory {logged['total_gpu_memory_gib']:g} GiB from the log")
    report = fit_report(profile, gpu, False, gpu_memory)
    if "vllm_version" in logged and logged["vllm_version"] != report["vllm_version"]:
        notes.append(
            f"the log is vLLM {logged['vllm_version']}, the profile pins {report['vllm_version']}: "
            "the estimate follows the profile's version"
        )
    util = report.get("gpu_memory_utilization")
    if "gpu_memory_utilization" in logged and util is not None and abs(logged["gpu_memory_utilization"] - util) > 1e-6:
        notes.append(f"the log used gpu_memory_utilization {logged['gpu_memory_utilization']:g}, the profile {util:g}")
    rows = compare(report, logged)
    failure = logged.get("failure")
    return {
        "log": log,
        "report": report,
        "logged": logged,
        "rows": [_row_data(r) for r in rows],
        "failure": failure,
        "predicted": report["fit"],
        # a logged failure should be predicted "does not fit" or "may not fit"; a start, not "does not fit"
        "agrees": report["fit"] != "fits" if failure else report["fit"] != "does not fit",
        "notes": notes,
    }


def _row_data(r: Row) -> dict[str, Any]:
    error = None if r.error is None else round(r.error, 4)
    return {"figure": r.figure, "logged": r.logged, "estimate": round(r.estimate, 4), "unit": r.unit, "error": error}


def from_log_table(result: dict[str, Any]) -> Any:
    """A rich renderable: the figures, then the verdicts."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    report = result["report"]
    table = Table()
    table.add_column("figure")
    table.add_column("vLLM logged", justify="right")
    table.add_column("estimate", justify="right")
    table.add_column("difference", justify="right")
    for row in result["rows"]:
        fmt = "{:,.0f}" if row["unit"] in ("tokens", "blocks") else "{:,.2f}"
        unit = f" {row['unit']}" if row["unit"] in ("GiB",) else ("x" if row["unit"] == "x" else "")
        diff = "" if row["error"] is None else f"{row['error']:+.1%}"
        table.add_row(row["figure"], fmt.format(row["logged"]) + unit, fmt.format(row["estimate"]) + unit, diff)
    header = f"{result['log']}: vLLM's figures beside vllmtune fit's ({report['device']})"
    parts: list[Any] = [escape(header), table]
    logged = f"vLLM: {result['failure']}" if result["failure"] else "vLLM: started"
    parts.append(escape(f"{logged}; vllmtune fit: {report['verdict']}"))
    for note in result["notes"]:
        parts.append(f"[yellow]note:[/yellow] {escape(note)}")
    return Group(*parts)
