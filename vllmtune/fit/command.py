"""``vllmtune fit``: will this profile fit in memory? And the hook for ``vllmtune validate``.

The CLI wires :func:`fit_report` (data, ``--output json``) and :func:`fit_table` (text);
``validate`` calls :func:`fit_problems`, which never goes online and stays silent when the
facts are unknown (a missing catalog entry is not a profile error).
"""

from __future__ import annotations

from typing import Any

from vllmtune.fit.estimate import (
    AWQ_BITS,
    BNB4_BITS,
    CPU_BLOCK_SIZE,
    GIB,
    GPU_BLOCK_SIZE,
    FitInputs,
    FitResult,
    estimate,
    group_bits,
    kv_dtype_bytes,
    suggestions,
    weight_bytes,
)
from vllmtune.fit.gpus import GpuSpec, custom_gpu, find_gpu, gpu_names, kv_dtype_support, quantization_support
from vllmtune.flags.catalog import version_key
from vllmtune.modelfacts.models import FitError, ModelArch, name_quant_hint, resolve_model
from vllmtune.plan import VLLM_DEFAULT, DeploymentPlan, host_path, value_or
from vllmtune.profile.loader import LoadedProfile

CPU_DEFAULT_KV_GIB = 4  # vLLM's documented VLLM_CPU_KVCACHE_SPACE default (older releases)
UTIL_092_SINCE = (0, 20, 0)  # vLLM 0.20 raised the gpu_memory_utilization default to 0.92
FOUR_BIT = ("awq", "awq_marlin", "gptq", "gptq_marlin", "marlin", "moe_wna16", "gptq_bitblas", "awq_triton")
EIGHT_BIT = ("fp8", "fbgemm_fp8", "ptpc_fp8", "modelopt", "experts_int8", "quark", "fp_quant")


def _weights_quant(
    arch: ModelArch, method: str | None, ident: str, notes: list[str]
) -> tuple[float | None, str | None]:
    """(bits per linear weight or None = 16-bit, method) from the checkpoint config, the profile or the name."""
    if arch.quant_bits is not None:
        return group_bits(arch.quant_bits, arch.quant_group_size or (None if arch.quant_bits >= 8 else 128)), (
            method or arch.quant_method
        )
    m = method or arch.quant_method
    if m in FOUR_BIT:
        return AWQ_BITS, m
    if m in EIGHT_BIT:
        return 8.0, m
    if m == "bitsandbytes":
        return BNB4_BITS, m
    hint = name_quant_hint(ident)
    if hint is not None and (m is None or m == hint[0] or m == "compressed-tensors"):
        notes.append(f"weights: {hint[1]:g}-bit inferred from the checkpoint name {ident}")
        return group_bits(hint[1], 128 if hint[1] < 8 else None), m or hint[0]
    if m:
        notes.append(f"weights: bit width of quantization {m!r} unknown: estimated at 16-bit (an upper bound)")
    return None, m


def _resolve_gpu(gpu: str | None, memory_bytes: int | None) -> GpuSpec | None:
    """The GPU to plan for: a catalog entry, one of ``memory_bytes`` (its kernels if named), or None."""
    base = find_gpu(gpu) if gpu else None
    if memory_bytes is None:
        return base
    return custom_gpu(memory_bytes, base)


def fit_inputs(
    lp: LoadedProfile, plan: DeploymentPlan, gpu: str | None, online: bool = True, gpu_memory: int | None = None
) -> tuple[FitInputs, list[str]]:
    """Resolve the profile + plan into estimate inputs; returns (inputs, notes).

    ``gpu_memory`` (bytes, ``--gpu-memory``) wins over ``resources.gpu_memory`` and the catalog.
    """
    p = lp.profile
    notes: list[str] = []
    ident = p.quantization.checkpoint or p.model.id
    try:
        arch = resolve_model(ident, plan.model_host_path, online, p.model.revision)
    except FitError:
        if not p.quantization.checkpoint or p.quantization.checkpoint == p.model.id:
            raise
        arch = resolve_model(p.model.id, host_path(p.model.id, lp.source), online, p.model.revision)
        notes.append(f"architecture of model.id {p.model.id} used for the checkpoint {ident}")
    spec = _resolve_gpu(gpu, gpu_memory if gpu_memory is not None else plan.gpu_memory_bytes)
    if spec is None and plan.gpus > 0:
        raise FitError(
            f"name the GPU to plan for: --gpu NAME, one of {', '.join(gpu_names())}; or give its memory as "
            "torch reports it: --gpu-memory 24GiB (or resources.gpu_memory)"
        )
    bits, method = _weights_quant(arch, p.quantization.method, ident, notes)
    v = plan.vllm
    dtype = value_or(v.dtype, "auto")
    act_bytes = 4 if dtype in ("float", "float32") else 2  # auto: vLLM downcasts float32 checkpoints
    kv_dtype = value_or(v.kv_cache_dtype, "auto")
    r = p.resources
    big = spec is not None and spec.memory_gib >= 70 and not spec.name.startswith("A100")
    if spec is None:
        default_tokens, default_seqs = 2048, 128
    else:
        default_tokens, default_seqs = (8192, 1024) if big else (2048, 256)
    max_len = value_or(v.max_model_len, arch.max_position_embeddings)
    if max_len is None:
        raise FitError(f"set model.max_model_len: {arch.name}'s config.json has no max_position_embeddings")
    if v.max_model_len is VLLM_DEFAULT:
        notes.append(f"max_model_len unset: vLLM uses the model's {max_len:,}")
    util = value_or(v.gpu_memory_utilization, 0.92 if version_key(plan.vllm_version) >= UTIL_092_SINCE else 0.9)
    budget = value_or(v.kv_cache_memory_bytes, None)
    if spec is None and budget is None:
        env = dict(plan.env)
        space = env.get("VLLM_CPU_KVCACHE_SPACE", "")
        if space.strip().isdigit() and int(space) > 0:
            budget = int(space) * GIB
        else:
            budget = CPU_DEFAULT_KV_GIB * GIB
            notes.append(
                f"server.env.VLLM_CPU_KVCACHE_SPACE unset: assumed {CPU_DEFAULT_KV_GIB} GiB (recent vLLM sizes the "
                "CPU KV cache from gpu_memory_utilization x RAM instead); set it for an exact figure"
            )
    draft: ModelArch | None = None
    draft_tp = 1
    s = p.speculative
    if s is not None and s.method == "draft_model" and s.model:
        draft = resolve_model(s.model, host_path(s.model, lp.source), online)
        draft_tp = s.draft_tensor_parallel_size or r.tensor_parallel_size
    elif s is not None and s.method != "ngram":
        notes.append(f"speculative {s.method}: the draft head's weights and KV are not included")
    inputs = FitInputs(
        arch=arch,
        max_model_len=max_len,
        act_bytes=act_bytes,
        weight_bits=bits,
        weight_method=method,
        use_checkpoint_bytes=bool(arch.quant_method and arch.checkpoint_bytes),
        kv_cache_dtype=kv_dtype,
        tensor_parallel=v.tensor_parallel_size,
        pipeline_parallel=v.pipeline_parallel_size,
        max_num_seqs=value_or(v.max_num_seqs, default_seqs),
        max_num_batched_tokens=value_or(v.max_num_batched_tokens, default_tokens),
        block_size=value_or(v.block_size, GPU_BLOCK_SIZE if spec else CPU_BLOCK_SIZE),
        gpu=spec,
        gpu_memory_utilization=util,
        kv_budget_override=budget,
        draft=draft,
        draft_tensor_parallel=draft_tp,
        vllm_version=plan.vllm_version,
        enforce_eager=value_or(v.enforce_eager, False),
        chunked_prefill=value_or(v.enable_chunked_prefill, None),
        max_loras=(p.lora.max_loras or 1) if p.lora else 0,
        max_lora_rank=(p.lora.max_lora_rank or 16) if p.lora else 16,
    )
    if spec is not None:
        for warning in (quantization_support(spec, method), kv_dtype_support(spec, kv_dtype)):
            if warning:
                notes.append(warning)
        if not spec.bf16 and arch.dtype == "bfloat16" and dtype == "auto":
            notes.append(f"{spec.name} has no BF16: vLLM runs this BF16 model in FP16")
        if plan.gpus and plan.gpus * r.nodes < r.tensor_parallel_size * r.pipeline_parallel_size:
            notes.append(f"resources.gpus {plan.gpus} x nodes {r.nodes} < tensor x pipeline parallel size")
    return inputs, notes


def _arch_data(a: ModelArch) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": a.name,
        "source": a.source,
        "model_type": a.model_type,
        "layers": a.num_layers,
        "hidden_size": a.hidden_size,
        "attention_heads": a.num_heads,
        "kv_heads": a.num_kv_heads,
        "head_dim": a.head_dim,
        "vocab_size": a.vocab_size,
        "intermediate_size": a.intermediate_size,
        "tie_word_embeddings": a.tie_word_embeddings,
        "params": a.params,
        "params_source": a.params_source,
        "dtype": a.dtype,
    }
    if a.num_experts:
        data["experts"] = {"routed": a.num_experts, "per_token": a.num_experts_per_tok, "shared": a.num_shared_experts}
    if a.sliding_window:
        data["sliding_window"] = {"window": a.sliding_window, "layers": a.sliding_layers}
    if a.is_mla:
        data["mla"] = {"kv_lora_rank": a.kv_lora_rank, "qk_rope_head_dim": a.qk_rope_head_dim}
    if a.quant_method:
        data["checkpoint_quantization"] = {"method": a.quant_method, "bits": a.quant_bits}
    return data


def _result_data(inp: FitInputs, r: FitResult) -> dict[str, Any]:
    return {
        "weights_bytes": r.weights_bytes,
        "draft_weights_bytes": r.draft_weights_bytes,
        "reserve_bytes": r.reserve_bytes,
        "usable_bytes": r.usable_bytes,
        "kv_budget_bytes": r.kv_budget_bytes,
        "kv_bytes_per_token": r.kv_bytes_per_token,
        "draft_kv_bytes_per_token": r.draft_kv_bytes_per_token,
        "block_size": inp.block_size,
        "num_blocks": r.num_blocks,
        "kv_tokens": r.kv_tokens,
        "kv_tokens_band": [r.kv_tokens_low, r.kv_tokens_high],
        "max_concurrency": round(r.max_concurrency, 2),
        "max_model_len": inp.max_model_len,
        "max_fitting_len": r.max_fitting_len,
        "reserve_parts": {name: n for name, n in r.reserve_parts},
        "reserve_band_bytes": r.reserve_band_bytes,
    }


def report_for(
    lp: LoadedProfile,
    plan: DeploymentPlan,
    gpu: str | None,
    suggest: bool,
    online: bool = True,
    gpu_memory: int | None = None,
) -> dict[str, Any]:
    """The fit report of an already loaded profile (see :func:`fit_report`)."""
    inp, notes = fit_inputs(lp, plan, gpu, online, gpu_memory)
    r = estimate(inp)
    data: dict[str, Any] = {
        "profile": plan.name,
        "vllm_version": plan.vllm_version,
        "model": plan.model,
        "device": inp.device,
        "gpu_memory_bytes": inp.gpu.memory_bytes if inp.gpu else None,
        "gpu_memory_source": inp.gpu.source if inp.gpu else None,
        "gpu_memory_utilization": inp.gpu_memory_utilization if inp.gpu else None,
        "tensor_parallel_size": inp.tensor_parallel,
        "pipeline_parallel_size": inp.pipeline_parallel,
        "weights": {
            "method": inp.weight_method or "none",
            "bits_per_weight": round(inp.weight_bits, 3) if inp.weight_bits else inp.act_bytes * 8,
            "total_bytes": weight_bytes(
                inp.arch, inp.weight_bits, inp.act_bytes, inp.use_checkpoint_bytes, inp.tensor_parallel
            ),
        },
        "kv_cache_dtype": inp.kv_cache_dtype,
        "kv_dtype_bytes": kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes),
        "architecture": _arch_data(inp.arch),
        "draft": _arch_data(inp.draft) if inp.draft else None,
        "per_gpu" if inp.gpu else "cpu": _result_data(inp, r),
        "fits": r.fits,
        "fit": r.fit,
        "verdict": r.verdict,
        "notes": [*notes, *r.notes],
    }
    if suggest:
        data["suggestions"] = suggestions(inp, r)
    return data


def fit_report(profile_path: str, gpu: str | None, suggest: bool, gpu_memory: int | None = None) -> dict[str, Any]:
    """``vllmtune fit PROFILE [--gpu NAME] [--gpu-memory SIZE] [--suggest]`` as JSON-able data.

    Raises FitError (unknown model or GPU) or ProfileError (invalid profile).
    """
    from vllmtune.plan import build_plan
    from vllmtune.profile.loader import load_profile

    lp = load_profile(profile_path)
    return report_for(lp, build_plan(lp), gpu, suggest, gpu_memory=gpu_memory)


def _fmt_bytes(n: float) -> str:
    return f"{n / GIB:,.2f} GiB" if n >= GIB / 10 or n == 0 else f"{n / 1024**2:,.2f} MiB"


def fit_table(report: dict[str, Any]) -> Any:
    """A rich renderable of a fit report."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    per = report.get("per_gpu") or report["cpu"]
    on_gpu = "per_gpu" in report
    title = f"{report['profile']}: {report['model']} on {report['device']}"
    if on_gpu and report["tensor_parallel_size"] * report["pipeline_parallel_size"] > 1:
        title += f" x{report['tensor_parallel_size'] * report['pipeline_parallel_size']} (per GPU)"
    table = Table(title=escape(title), title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    a = report["architecture"]
    w = report["weights"]
    table.add_row(
        "architecture",
        escape(
            f"{a['layers']} layers, {a['kv_heads']} KV heads x {a['head_dim']}, {a['params']:,} params ({a['source']})"
        ),
    )
    table.add_row(
        "weights", escape(f"{_fmt_bytes(per['weights_bytes'])} ({w['method']}, {w['bits_per_weight']:g} bits)")
    )
    if report.get("draft"):
        table.add_row("draft weights", _fmt_bytes(per["draft_weights_bytes"]))
    if on_gpu:
        table.add_row("GPU memory", escape(f"{_fmt_bytes(report['gpu_memory_bytes'])} ({report['gpu_memory_source']})"))
        table.add_row("usable", f"{_fmt_bytes(per['usable_bytes'])} (x{report['gpu_memory_utilization']:g})")
        reserve = ", ".join(f"{name} {_fmt_bytes(n)}" for name, n in per["reserve_parts"].items())
        table.add_row(
            "reserve",
            escape(f"{_fmt_bytes(per['reserve_bytes'])} +- {_fmt_bytes(per['reserve_band_bytes'])} ({reserve})"),
        )
    table.add_row("KV cache", f"{_fmt_bytes(per['kv_budget_bytes'])} ({report['kv_cache_dtype']})")
    kv = f"{per['kv_bytes_per_token']:,.0f} B"
    if per["draft_kv_bytes_per_token"]:
        kv += f" + {per['draft_kv_bytes_per_token']:,.0f} B draft"
    table.add_row("KV per token", kv)
    tokens = f"{per['kv_tokens']:,} ({per['num_blocks']:,} blocks of {per['block_size']})"
    low, high = per["kv_tokens_band"]
    if on_gpu and (low, high) != (per["kv_tokens"], per["kv_tokens"]):
        tokens += f", {low:,} to {high:,} within the error band"
    table.add_row("KV tokens", tokens)
    table.add_row("concurrency", f"{per['max_concurrency']:,.2f}x at max_model_len {per['max_model_len']:,}")
    style = {"fits": "green", "may not fit": "yellow"}.get(report["fit"], "red")
    table.add_row("verdict", f"[{style}]{escape(report['verdict'])}[/{style}]")
    parts: list[Any] = [table]
    for note in report["notes"]:
        parts.append(f"[yellow]note:[/yellow] {escape(note)}")
    if "suggestions" in report:
        if report["suggestions"]:
            s = Table(title="Suggestions", title_justify="left")
            s.add_column("change", overflow="fold")
            s.add_column("KV tokens", justify="right")
            s.add_column("concurrency", justify="right")
            for row in report["suggestions"]:
                s.add_row(escape(row["change"]), f"{row['kv_tokens']:,}", f"{row['max_concurrency']:,.2f}x")
            parts.append(s)
        else:
            parts.append("no change found that helps")
    return Group(*parts)


def _judged(loaded_profile: LoadedProfile, plan: DeploymentPlan, gpu: str | None) -> FitResult | None:
    """The estimate ``vllmtune validate`` judges, or None when it cannot judge (fit_problems)."""
    if gpu is None and plan.gpus > 0 and plan.gpu_memory_bytes is None:
        return None
    try:
        inp, notes = fit_inputs(loaded_profile, plan, gpu, online=False)
    except FitError:
        return None
    if inp.gpu is None and any("VLLM_CPU_KVCACHE_SPACE unset" in n for n in notes):
        return None
    return estimate(inp)


def _where(loaded_profile: LoadedProfile, r: FitResult) -> tuple[str | int, ...]:
    where: tuple[str | int, ...] = ("model", "max_model_len") if r.max_fitting_len else ("resources",)
    if not loaded_profile.profile.model.max_model_len and r.max_fitting_len:
        where = ("model",)
    return where


def fit_problems(loaded_profile: LoadedProfile, plan: DeploymentPlan, gpu: str | None) -> list[str]:
    """``file:line: key: does not fit ...`` lines for ``vllmtune validate`` (offline only).

    Empty when it fits, or when it cannot be judged: no GPU named for a GPU profile, unknown
    model facts, or a CPU profile whose KV space is vLLM's auto-sizing.
    """
    r = _judged(loaded_profile, plan, gpu)
    if r is None or r.fit != "does not fit":  # "may not fit" is the band's doubt: fit_warnings
        return []
    message = f"{r.verdict} (vllmtune fit --suggest for options)"
    return [str(loaded_profile.problem(_where(loaded_profile, r), message))]


def fit_warnings(loaded_profile: LoadedProfile, plan: DeploymentPlan, gpu: str | None) -> list[str]:
    """``file:line: key: may not fit ...`` lines: the estimate's error band reaches "does not fit"."""
    r = _judged(loaded_profile, plan, gpu)
    if r is None or r.fit != "may not fit":
        return []
    message = f"{r.verdict} (vllmtune fit --suggest for options)"
    return [str(loaded_profile.problem(_where(loaded_profile, r), message))]


__all__ = ["fit_inputs", "fit_problems", "fit_report", "fit_table", "fit_warnings", "report_for"]
