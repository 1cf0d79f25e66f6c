"""The published start-up logs of tests/fit/data/published_logs.json as estimate inputs, and
the comparison of each logged figure with the estimate (used by test_published_logs.py; run
``python -m tests.fit.published_logs`` for the table)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllmtune.fit.estimate import AWQ_BITS, GIB, FitInputs, FitResult, estimate
from vllmtune.fit.gpus import GpuSpec, custom_gpu, find_gpu
from vllmtune.modelfacts.models import catalog_lookup

DATA = Path(__file__).parent / "data" / "published_logs.json"
BITS = {"awq": AWQ_BITS, "gptq": AWQ_BITS, "fp8": 8.0, "mxfp4": 4.25, None: None}


def cases() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]
    return loaded


def inputs(case: dict[str, Any]) -> FitInputs:
    """The estimate's inputs for a case: what its source states, else vLLM's defaults of its version."""
    arch = catalog_lookup(case["model"])
    assert arch is not None, case["model"]
    i = case["inputs"]
    total = case["logged"].get("total_gpu_memory_gib")
    if case["gpu"] is None:  # an unnamed GPU: its logged total, as --gpu-memory gives it
        gpu = custom_gpu(int(total * GIB))
    else:
        gpu = find_gpu(case["gpu"])
        if total is not None:  # the total the log states (the catalog's figure otherwise)
            gpu = GpuSpec(gpu.name, int(total * GIB), gpu.capability, gpu.bf16, gpu.fp8_compute)
    v1 = case["engine"] == "V1"
    big = gpu.memory_bytes >= 70 * GIB and not gpu.name.startswith("A100")
    default_tokens, default_seqs = ((8192, 1024) if big else (2048, 256)) if v1 else (2048, 256)
    return FitInputs(
        arch=arch,
        max_model_len=i["max_model_len"],
        weight_bits=BITS[i.get("quantization")],
        weight_method=i.get("quantization"),
        kv_cache_dtype=i.get("kv_cache_dtype", "auto"),
        tensor_parallel=i["tensor_parallel"],
        pipeline_parallel=i["pipeline_parallel"],
        max_num_seqs=i.get("max_num_seqs", default_seqs),
        max_num_batched_tokens=i.get("max_num_batched_tokens", default_tokens),
        gpu=gpu,
        gpu_memory_utilization=i["gpu_memory_utilization"],
        vllm_version=case["vllm_version"],
        enforce_eager=bool(i.get("enforce_eager", False)),
    )


@dataclass(frozen=True)
class Row:
    case: str
    figure: str
    logged: float
    estimate: float

    @property
    def error(self) -> float:
        return (self.estimate - self.logged) / abs(self.logged) if self.logged else 0.0


def rows(case: dict[str, Any], r: FitResult) -> list[Row]:
    """Logged figure vs estimate, for the figures the case logs."""
    logged = case["logged"]
    out = []
    if "weights_gib" in logged:
        out.append(Row(case["id"], "weights GiB", logged["weights_gib"], r.weights_bytes / GIB))
    if "kv_gib" in logged:
        budget = r.usable_bytes - r.weights_bytes - r.draft_weights_bytes - r.reserve_bytes
        out.append(Row(case["id"], "KV GiB", logged["kv_gib"], budget / GIB))
    if "kv_tokens" in logged:
        out.append(Row(case["id"], "KV tokens", logged["kv_tokens"], r.kv_tokens))
    return out


def kv_token_error(case: dict[str, Any], r: FitResult) -> float | None:
    """|KV-token error| of a case that started (tokens logged, else KV memory: tokens = memory / bytes per token)."""
    if case["failure"]:
        return None
    logged = case["logged"]
    if "kv_tokens" in logged:
        return float(abs(r.kv_tokens - logged["kv_tokens"]) / logged["kv_tokens"])
    budget = r.usable_bytes - r.weights_bytes - r.reserve_bytes
    return float(abs(budget / GIB - logged["kv_gib"]) / logged["kv_gib"])


def summary() -> dict[str, Any]:
    errors: list[float] = []
    all_errors: list[float] = []
    failures: list[tuple[str, str]] = []
    table: list[Row] = []
    for case in cases():
        r = estimate(inputs(case))
        table.extend(rows(case, r))
        e = kv_token_error(case, r)
        if e is None:
            failures.append((case["id"], r.fit))
            continue
        all_errors.append(e)
        if not case.get("excluded"):
            errors.append(e)
    return {
        "median": statistics.median(errors),
        "max": max(errors),
        "max_all": max(all_errors),
        "failures": failures,
        "rows": table,
        "cases": len(cases()),
        "gpus": len({c["gpu"] or c["logged"]["total_gpu_memory_gib"] for c in cases()}),
        "models": len({c["model"] for c in cases()}),
    }


def main() -> None:
    s = summary()
    print("| case | figure | logged | estimate | error |\n|---|---|---:|---:|---:|")
    for row in s["rows"]:
        fmt = "{:,.0f}" if row.figure == "KV tokens" else "{:,.2f}"
        print(
            f"| {row.case} | {row.figure} | {fmt.format(row.logged)} | {fmt.format(row.estimate)} | {row.error:+.1%} |"
        )
    print(f"cases {s['cases']}, GPUs {s['gpus']}, models {s['models']}")
    print(f"median |KV error| {s['median']:.1%}, max {s['max']:.1%} (with the excluded cases: {s['max_all']:.1%})")
    for cid, fit in s["failures"]:
        print(f"logged failure {cid}: predicted {fit}")


if __name__ == "__main__":
    main()
