"""The memory math of ``vllmtune fit``: weights, reserve, KV cache, concurrency.

All figures are per GPU (per tensor/pipeline-parallel rank); bytes unless named otherwise.

Weights::

    weights = params x dtype_bytes                                    (unquantized, BF16/FP16: 2)
    weights = embedding_params x 2 + other_params x bits / 8          (weight-only quantized)
        bits = 4 + (16 + 4) / group_size   AWQ / GPTQ int4: 4-bit weights + FP16 scale + 4-bit zero
                                           per group (group 128: 4.156 bits)
        bits = 8                           FP8 / INT8 (per-tensor/channel/block scales are negligible)
        bits = 4 + 32 / 64 = 4.5           bitsandbytes NF4 (an FP32 absmax per 64 weights)
    per GPU = weights / (tensor_parallel x pipeline_parallel)
    A local quantized checkpoint counts the tensor bytes of its safetensors headers instead.

KV cache (vLLM allocates it in blocks of ``block_size`` tokens: 16 on GPU, 128 on CPU)::

    kv_bytes_per_token = 2 (K and V) x layers x kv_heads_per_gpu x head_dim x kv_dtype_bytes
        kv_heads_per_gpu = max(1, kv_heads / tensor_parallel)   layers = layers / pipeline_parallel
        kv_dtype_bytes   = 2 (auto: BF16/FP16), 1 (fp8, fp8_e4m3, fp8_e5m2)
    MLA (DeepSeek-V2/V3): (kv_lora_rank + qk_rope_head_dim) x layers x kv_dtype_bytes,
        one latent per token shared by all heads, hence NOT divided by tensor parallelism
    sliding-window layers hold at most min(window - 1 + max_num_batched_tokens, max_model_len)
        tokens (+1 block) of each request
    a draft model (speculative draft_model) adds its own layers to the same pool.

Capacity (the figure vLLM logs as "KV cache size: N tokens")::

    kv_budget  = gpu_memory x gpu_memory_utilization - weights - reserve      (GPU)
               = VLLM_CPU_KVCACHE_SPACE GiB (or --kv-cache-memory-bytes)       (CPU: exactly that)
    num_blocks = kv_budget // (block_size x kv_bytes_per_token)
    max_concurrency = num_blocks / blocks_per_request(max_model_len)
    kv_tokens  = int(max_concurrency x max_model_len)

Reserve (GPU, conservative): 1 GiB (CUDA graphs, cuBLAS/NCCL workspaces, non-torch
allocations; +0.5 GiB with tensor parallelism for NCCL buffers) plus the activation peak of the
profiling forward pass: ``max_num_batched_tokens x (4 x hidden + 2 x intermediate / TP) x 2``
plus the sampler's FP32 logits ``max_num_seqs x vocab / TP x 4``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from vllmtune.fit.gpus import GPUS, GpuSpec
from vllmtune.fit.models import ModelArch

GIB = 1024**3
FIXED_RESERVE = 1 * GIB
TP_RESERVE = GIB // 2
DEFAULT_GROUP = 128
AWQ_BITS = 4 + (16 + 4) / DEFAULT_GROUP  # 4.15625
BNB4_BITS = 4.5
GPU_BLOCK_SIZE = 16
CPU_BLOCK_SIZE = 128


def group_bits(bits: float, group_size: int | None) -> float:
    """Effective bits per weight of an integer group quantization (scale FP16 + zero point)."""
    if bits >= 8 or not group_size:
        return bits
    return bits + (16 + bits) / group_size


def kv_dtype_bytes(kv_cache_dtype: str | None, act_bytes: int) -> float:
    """Bytes per KV element: auto = the model dtype; fp8* = 1."""
    if not kv_cache_dtype or kv_cache_dtype == "auto":
        return act_bytes
    if kv_cache_dtype.startswith("fp8") or kv_cache_dtype in ("int8",):
        return 1
    if kv_cache_dtype in ("bfloat16", "float16", "half"):
        return 2
    if kv_cache_dtype in ("float32", "float"):
        return 4
    return act_bytes


@dataclass(frozen=True)
class FitInputs:
    """Everything the estimate depends on, fully resolved."""

    arch: ModelArch
    max_model_len: int
    act_bytes: int = 2  # weights/activations dtype bytes (BF16/FP16)
    weight_bits: float | None = None  # bits per linear weight; None = unquantized
    weight_method: str | None = None
    use_checkpoint_bytes: bool = False  # a local quantized checkpoint: trust its tensor bytes
    kv_cache_dtype: str = "auto"
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    block_size: int = GPU_BLOCK_SIZE
    gpu: GpuSpec | None = None  # None: the CPU build
    gpu_memory_utilization: float = 0.9
    kv_budget_override: int | None = None  # CPU KV space / --kv-cache-memory-bytes
    draft: ModelArch | None = None
    draft_tensor_parallel: int = 1

    @property
    def device(self) -> str:
        return self.gpu.name if self.gpu else "CPU"


@dataclass(frozen=True)
class FitResult:
    """The estimate for one configuration (per GPU)."""

    weights_bytes: int
    draft_weights_bytes: int
    reserve_bytes: int
    usable_bytes: int  # GPU memory x utilization (0 on CPU)
    kv_budget_bytes: int
    kv_bytes_per_token: float  # target, full-attention layers + sliding layers, per GPU
    draft_kv_bytes_per_token: float
    per_request_bytes: int  # KV of one request at max_model_len (block-rounded)
    num_blocks: int
    kv_tokens: int
    max_concurrency: float
    max_fitting_len: int  # largest max_model_len one request fits at (0: not even one block)
    fits: bool
    verdict: str
    notes: tuple[str, ...] = field(default=())


def weight_bytes(arch: ModelArch, bits: float | None, act_bytes: int, use_checkpoint: bool = False) -> int:
    """Total weight bytes of the model (all ranks)."""
    if use_checkpoint and arch.checkpoint_bytes:
        return arch.checkpoint_bytes
    if bits is None:
        return arch.params * act_bytes
    embed = min(arch.embedding_params, arch.params)
    return int(embed * act_bytes + (arch.params - embed) * bits / 8)


def kv_per_token(arch: ModelArch, kv_bytes: float, tp: int, pp: int) -> tuple[float, float]:
    """(bytes per token of full-attention layers, of sliding-window layers), per GPU."""
    layers = math.ceil(arch.num_layers / pp)
    sliding = math.ceil(arch.sliding_layers / pp)
    if arch.is_mla:
        assert arch.kv_lora_rank is not None
        per_layer = (arch.kv_lora_rank + arch.qk_rope_head_dim) * kv_bytes
    else:
        per_layer = 2 * max(1, arch.num_kv_heads // tp) * arch.head_dim * kv_bytes
    return (layers - sliding) * per_layer, sliding * per_layer


def _blocks(tokens: int, block: int) -> int:
    return -(-tokens // block)


def request_bytes(inp: FitInputs, length: int) -> int:
    """KV bytes one request of ``length`` tokens holds (block-rounded, target + draft)."""
    full, sw = kv_per_token(inp.arch, kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes), inp.tensor_parallel,
                            inp.pipeline_parallel)  # fmt: skip
    bs = inp.block_size
    total = full * _blocks(length, bs) * bs
    if sw and inp.arch.sliding_window:
        held = min(inp.arch.sliding_window - 1 + inp.max_num_batched_tokens, length)
        total += sw * (_blocks(held, bs) + 1) * bs
    if inp.draft is not None:
        dfull, dsw = kv_per_token(inp.draft, kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes),
                                  inp.draft_tensor_parallel, 1)  # fmt: skip
        total += (dfull + dsw) * _blocks(length, bs) * bs
    return int(total)


def reserve_bytes(inp: FitInputs) -> int:
    """Non-weight, non-KV memory vLLM holds on a GPU (module docstring)."""
    if inp.gpu is None:
        return 0
    a = inp.arch
    inter = a.moe_intermediate_size * max(1, a.num_experts_per_tok) if a.num_experts else a.intermediate_size
    act = inp.max_num_batched_tokens * (4 * a.hidden_size + 2 * inter / inp.tensor_parallel) * inp.act_bytes
    logits = inp.max_num_seqs * a.vocab_size / inp.tensor_parallel * 4
    return int(FIXED_RESERVE + (TP_RESERVE if inp.tensor_parallel > 1 else 0) + act + logits)


def max_fitting_len(inp: FitInputs, budget: int, upper: int) -> int:
    """Largest max_model_len (<= upper) whose one request fits ``budget``: binary search."""
    if budget <= 0 or request_bytes(inp, 1) > budget:
        return 0
    lo, hi = 1, max(1, upper)
    if request_bytes(inp, hi) <= budget:
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if request_bytes(inp, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def estimate(inp: FitInputs) -> FitResult:
    """Weights, reserve, KV capacity and verdict for one configuration."""
    a = inp.arch
    ranks = inp.tensor_parallel * inp.pipeline_parallel
    weights = weight_bytes(a, inp.weight_bits, inp.act_bytes, inp.use_checkpoint_bytes) // ranks
    draft_w = weight_bytes(inp.draft, None, inp.act_bytes) // inp.draft_tensor_parallel if inp.draft else 0
    kvb = kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes)
    full, sw = kv_per_token(a, kvb, inp.tensor_parallel, inp.pipeline_parallel)
    dfull, dsw = kv_per_token(inp.draft, kvb, inp.draft_tensor_parallel, 1) if inp.draft else (0.0, 0.0)
    reserve = reserve_bytes(inp)
    notes: list[str] = []
    if inp.gpu is not None:
        usable = int(inp.gpu.memory_bytes * inp.gpu_memory_utilization)
        budget = usable - weights - draft_w - reserve
        if inp.kv_budget_override is not None:
            budget = min(budget, inp.kv_budget_override)
    else:
        usable = 0
        budget = inp.kv_budget_override or 0
    per_block = int((full + sw + dfull + dsw) * inp.block_size)
    num_blocks = max(0, budget) // per_block if per_block else 0
    per_request = request_bytes(inp, inp.max_model_len)
    # vLLM: concurrency = num_blocks / blocks one request needs (summed over layer groups).
    concurrency = num_blocks * per_block / per_request if per_request else 0.0
    tokens = int(concurrency * inp.max_model_len)
    upper = max(inp.max_model_len, a.max_position_embeddings or 0)
    fitting = max_fitting_len(inp, num_blocks * per_block, upper)
    gib = _gib
    if inp.gpu is not None and budget <= 0:
        fits = False
        verdict = (
            f"does not fit: weights {gib(weights + draft_w)} + reserve {gib(reserve)} per GPU exceed "
            f"{gib(usable)} ({inp.gpu_memory_utilization:g} x {inp.gpu.memory_gib:.1f} GiB {inp.gpu.name})"
        )
    elif concurrency < 1:
        fits = False
        verdict = (
            f"does not fit: one request at max_model_len {inp.max_model_len:,} needs {gib(per_request)} of KV "
            f"cache, only {gib(max(0, budget))} is available"
            + (f"; the largest max_model_len that fits is {fitting:,}" if fitting else "")
        )
    else:
        fits = True
        verdict = f"fits: {math.floor(concurrency):,} concurrent sequences at max_model_len {inp.max_model_len:,}"
        if concurrency < inp.max_num_seqs:
            notes.append(
                f"max_num_seqs {inp.max_num_seqs} > {math.floor(concurrency)} full-length sequences: vLLM "
                "will preempt (recompute) requests when long contexts fill the KV cache"
            )
    return FitResult(
        weights_bytes=weights,
        draft_weights_bytes=draft_w,
        reserve_bytes=reserve,
        usable_bytes=usable,
        kv_budget_bytes=max(0, budget),
        kv_bytes_per_token=full + sw,
        draft_kv_bytes_per_token=dfull + dsw,
        per_request_bytes=per_request,
        num_blocks=num_blocks,
        kv_tokens=tokens,
        max_concurrency=concurrency,
        max_fitting_len=fitting,
        fits=fits,
        verdict=verdict,
        notes=tuple(notes),
    )


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def suggestions(inp: FitInputs, result: FitResult) -> list[dict[str, Any]]:
    """Concrete changes and what each would give (only those that help)."""
    out: list[dict[str, Any]] = []

    def add(change: str, new: FitInputs) -> None:
        r = estimate(new)
        if r.fits and (not result.fits or r.max_concurrency > result.max_concurrency * 1.05):
            out.append(
                {
                    "change": change,
                    "kv_tokens": r.kv_tokens,
                    "max_concurrency": round(r.max_concurrency, 2),
                    "verdict": r.verdict,
                }
            )

    if not result.fits and result.max_fitting_len:
        length = result.max_fitting_len
        if length >= inp.block_size:
            length -= length % inp.block_size
        add(f"model.max_model_len: {length}", replace(inp, max_model_len=length))
    if kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes) > 1:
        add("quantization.kv_cache_dtype: fp8 (halves KV bytes; re-check quality)", replace(inp, kv_cache_dtype="fp8"))
    if inp.weight_bits is None and not inp.use_checkpoint_bytes:
        marlin = inp.gpu is None or inp.gpu.capability is None or inp.gpu.capability >= (8, 0)
        method = "awq_marlin" if marlin else "awq"
        add(
            f"quantization: a 4-bit AWQ checkpoint (quantization.checkpoint: ...-AWQ-INT4, method {method})",
            replace(inp, weight_bits=AWQ_BITS, weight_method=method),
        )
    if inp.gpu is not None:
        for tp in (2, 4, 8):
            if tp > inp.tensor_parallel and tp <= max(8, inp.tensor_parallel):
                new = replace(inp, tensor_parallel=tp, draft_tensor_parallel=min(tp, max(1, inp.draft_tensor_parallel)))
                if estimate(new).fits:
                    add(f"resources.tensor_parallel_size: {tp} (and resources.gpus: {tp * inp.pipeline_parallel})", new)
                    break
        if inp.gpu_memory_utilization < 0.95:
            add("resources.gpu_memory_utilization: 0.95", replace(inp, gpu_memory_utilization=0.95))
        for gpu in sorted(GPUS, key=lambda g: g.memory_mib):
            if gpu.memory_mib > inp.gpu.memory_mib and estimate(replace(inp, gpu=gpu)).fits:
                add(f"a larger GPU: --gpu {gpu.name}", replace(inp, gpu=gpu))
                break
    else:
        need = math.ceil(result.per_request_bytes * max(1, inp.max_num_seqs) / GIB)
        if need * GIB > result.kv_budget_bytes:
            add(
                f"server.env.VLLM_CPU_KVCACHE_SPACE: '{need}' (GiB: {inp.max_num_seqs} full-length sequences)",
                replace(inp, kv_budget_override=need * GIB),
            )
    if inp.draft is not None:
        add("speculative: ngram instead of a draft model (no draft weights or KV)", replace(inp, draft=None))
    return out
