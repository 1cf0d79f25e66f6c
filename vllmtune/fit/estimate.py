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
    Llama 4 (chunked local attention on 3 of every 4 layers, attention_chunk_size 8192): vLLM
        disables the hybrid KV cache manager for it by default ("There is a latency regression
        when using chunked local attention with the hybrid KV cache manager. Disabling it, by
        default", vllm/config/vllm.py), so every layer holds the whole context; with
        VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 (FitInputs.chunked_local_hybrid)
        the chunked layers hold min(chunk + max_num_batched_tokens, max_model_len) tokens
    a draft model (speculative draft_model) adds its own layers to the same pool.

Capacity (the figure vLLM logs as "KV cache size: N tokens")::

    kv_budget  = gpu_memory x gpu_memory_utilization - weights - reserve      (GPU)
               = VLLM_CPU_KVCACHE_SPACE GiB (or --kv-cache-memory-bytes)       (CPU: exactly that)
    num_blocks = kv_budget // (block_size x kv_bytes_per_token)
    max_concurrency = num_blocks / blocks_per_request(max_model_len)
    kv_tokens  = int(max_concurrency x max_model_len)                  (vLLM 0.20 on)
               = num_blocks x block_size                                 (before: the pool
                 as if every layer were full attention -- the same figure unless the model
                 has sliding-window layers; vllm/v1/core/kv_cache_utils.py logged
                 num_blocks // len(kv_cache_groups) x block_size until vLLM PR 40694 and its
                 successors of April 2026 switched to max_concurrency x max_model_len)

Reserve (GPU): what vLLM subtracts before the KV cache (``determine_available_memory`` in
vllm/worker/worker.py (V0) and vllm/v1/worker/gpu_worker.py (V1))::

    kv_budget = total x gpu_memory_utilization - weights - non_torch - activation_peak
                - cudagraph (only where vLLM counts it) - lora_slots

    non_torch       = 0.30 GiB (V1; V0 before 0.6.5), 0.05 GiB (V0 from 0.6.5), + 0.25 GiB
                      per GPU with tensor/pipeline parallelism (NCCL / custom all-reduce buffers).
                      V0 from 0.6.5 measures it from a snapshot taken after the CUDA context
                      exists (vLLM PR 10511, memory_profiling(baseline_snapshot=...)): the logs
                      say 0.02-0.07 GiB on one GPU, 0.30 GiB per GPU at TP 2; vLLM 0.6.4 logged
                      0.15-0.73 GiB; V1 logs no figure -- its reserve leaves ~0.2-0.3 GiB
    engine          = V1 from vLLM 0.8 unless the GPU is older than compute capability 8.0 (vLLM
                      0.8-0.9 fall back to V0: "Compute Capability < 8.0 is not supported by the
                      V1 Engine") or VLLM_USE_V1=0 (FitInputs.v0_engine)
    activation_peak = max(forward, sampler): the profile runs them one after the other
        forward = profile_tokens x (3 x intermediate / TP + 2 x hidden) x act_bytes x 1.08
        sampler = max_num_seqs x vocab x 4 B x 9.5: the dummy sampler run samples every
                  sequence with top_k = vocab - 1 and top_p < 1 (gpu_model_runner
                  _dummy_sampler_run; V0: profile_run's SamplingParams), so the FP32 logits,
                  their sort (values + int64 indices), cumsum, mask, probs and logprobs are
                  alive at once: ~9.5 logits-sized buffers (PyTorch's apply_top_k_top_p in
                  vllm/v1/sample/ops/topk_topp_sampler.py)
                = max_num_seqs x vocab x 4 B x 2.5 with the FlashInfer sampler (the log says
                  "Using FlashInfer for top-p & top-k sampling"; flashinfer installed): no
                  sort, only the BF16 logits (0.5), their FP32 copy and the probs
        profile_tokens = max_num_batched_tokens: V1 (and V0 with chunked prefill) profiles one
                         batch of it; V0 without chunked prefill (max_model_len <= 32K) profiles
                         max(max_model_len, max_num_batched_tokens) tokens
        MoE: intermediate = moe_intermediate x experts_per_token (the fused-MoE buffers)
        V0 with chunked prefill samples too: profile_run builds max_num_seqs dummy sequences
                  of max_num_batched_tokens // max_num_seqs tokens, each with the top-k/top-p
                  SamplingParams (vllm/worker/model_runner.py), chunked or not; the GTX 1080
                  log of xlisp/jimw-vllm (105K context, 512-token chunks, max_num_seqs 256 in
                  its args) peaks at 1.17 GiB = the sampler term, and vLLM issue 13061's driver
                  pool (TP 2, 128K) is 1.23 GiB below its non-sampling worker's. (The OCI A10 and vLLM issue
                  10517 35K logs peak at the forward pass alone: their max_num_seqs is unstated.)
    cudagraph       = 0.4 GiB unless enforce_eager, subtracted only from vLLM 0.21 on
                      ("CUDA graph memory profiling is enabled (default since v0.21.0)"; before,
                      graphs are captured after the KV cache is allocated, outside the budget)
    lora_slots      = max_loras x max_lora_rank x sum(in + out of the adapted linears) x layers x 2 B

The constants are fitted against tests/fit/data/published_logs.json (published start-up logs,
each with its source); ``RESERVE_BAND`` is the spread of the reserve the fit leaves, which sets
the band of every estimate: below the band's low end "fits", inside it "may not fit".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from vllmtune.fit.gpus import GPUS, GpuSpec
from vllmtune.modelfacts.models import ModelArch

GIB = 1024**3
NON_TORCH = int(0.30 * GIB)
NON_TORCH_V0_PROFILED = int(0.05 * GIB)  # V0 from 0.6.5: measured after the CUDA context
V0_BASELINE_SNAPSHOT_SINCE = (0, 6, 5)  # vLLM PR 10511
V0_REMOVED_SINCE = (0, 10, 0)
TP_NON_TORCH = int(0.25 * GIB)
ACT_SCALE = 1.08
SAMPLER_COPIES = 9.5
SAMPLER_COPIES_FLASHINFER = 2.5
LOGGED_TOKENS_BY_CONCURRENCY_SINCE = (0, 20, 0)  # "GPU KV cache size" = concurrency x max_model_len
CUDAGRAPH = int(0.4 * GIB)
CUDAGRAPH_COUNTED_SINCE = (0, 21, 0)  # vLLM 0.21: the profile counts CUDA graph memory by default
V1_SINCE = (0, 8, 0)  # vLLM 0.8: the V1 engine is the default
RESERVE_BAND = 0.20  # +-20% of the reserve (and at least RESERVE_BAND_MIN) -- the fit's spread
RESERVE_BAND_MIN = int(0.25 * GIB)
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
    vllm_version: str = ""  # "": the newest behaviour
    enforce_eager: bool = False
    chunked_prefill: bool | None = None  # None: the version's default
    max_loras: int = 0
    max_lora_rank: int = 16
    flashinfer_sampler: bool = False  # vLLM samples with FlashInfer (logged; needs flashinfer installed)
    chunked_local_hybrid: bool = False  # VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 (Llama 4)
    v0_engine: bool | None = None  # None: by version and GPU (module docstring); True: VLLM_USE_V1=0

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
    fit: str = "fits"  # fits | may not fit | does not fit
    reserve_parts: tuple[tuple[str, int], ...] = ()
    reserve_band_bytes: int = 0  # +- around reserve_bytes
    kv_tokens_low: int = 0  # the band's ends
    kv_tokens_high: int = 0
    max_fitting_len_low: int = 0  # largest max_model_len that fits even the band's low end


def weight_bytes(
    arch: ModelArch, bits: float | None, act_bytes: int, use_checkpoint: bool = False, tensor_parallel: int = 1
) -> int:
    """Total weight bytes of the model (all ranks)."""
    if use_checkpoint and arch.checkpoint_bytes:
        return arch.checkpoint_bytes
    if arch.quant_method == "mxfp4" and arch.num_experts:
        # gpt-oss: only the experts are MXFP4 (4.25 bits), padded to the MoE kernels' tiles:
        # each rank's share of the intermediate to 128, the hidden size to 256 (Mxfp4MoEMethod
        # create_weights rounds intermediate_size_per_partition: gpt-oss-120b at TP 4 pads its
        # 720 columns per rank to 768 -- logged 17.22 GiB per GPU)
        h, i = arch.hidden_size, arch.moe_intermediate_size
        experts = (arch.num_layers - arch.first_k_dense) * arch.num_experts * 3 * h * i
        share = -(-i // tensor_parallel)
        padded = experts * (-(-share // 128) * 128 * tensor_parallel) * (-(-h // 256) * 256) / (i * h)
        return int(padded * 4.25 / 8 + (arch.params - experts) * act_bytes)
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
    a = inp.arch
    if inp.chunked_local_hybrid and a.attention_chunk_size and a.chunked_layers and full:
        # Llama 4's chunked layers hold at most one chunk + one batch (ChunkedLocalAttentionSpec)
        pp = inp.pipeline_parallel
        local = full * math.ceil(a.chunked_layers / pp) / math.ceil(a.num_layers / pp)
        full -= local
        total_local = local * _blocks(min(a.attention_chunk_size + inp.max_num_batched_tokens, length), bs) * bs
    else:
        total_local = 0.0
    total = full * _blocks(length, bs) * bs + total_local
    if sw and inp.arch.sliding_window:
        held = min(inp.arch.sliding_window - 1 + inp.max_num_batched_tokens, length)
        total += sw * (_blocks(held, bs) + 1) * bs
    if inp.draft is not None:
        dfull, dsw = kv_per_token(inp.draft, kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes),
                                  inp.draft_tensor_parallel, 1)  # fmt: skip
        total += (dfull + dsw) * _blocks(length, bs) * bs
    return int(total)


def _version(v: str) -> tuple[int, ...]:
    if not v:
        return (99,)
    out: list[int] = []
    for part in v.lstrip("v").split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def is_v0(inp: FitInputs) -> bool:
    """Does this configuration run vLLM's V0 engine (module docstring)?"""
    if inp.v0_engine is not None:
        return inp.v0_engine
    version = _version(inp.vllm_version)
    if version < V1_SINCE:
        return True
    old_gpu = inp.gpu is not None and inp.gpu.capability is not None and inp.gpu.capability < (8, 0)
    return old_gpu and version < V0_REMOVED_SINCE


def chunked_prefill(inp: FitInputs) -> bool:
    """Is chunked prefill on: as set, else V1 always, V0 above 32K tokens of context."""
    if inp.chunked_prefill is not None:
        return inp.chunked_prefill
    return not is_v0(inp) or inp.max_model_len > 32768


def profile_tokens(inp: FitInputs) -> int:
    """Tokens of vLLM's profiling forward pass (module docstring)."""
    if chunked_prefill(inp):
        return inp.max_num_batched_tokens
    return max(inp.max_model_len, inp.max_num_batched_tokens)


def reserve_parts(inp: FitInputs) -> list[tuple[str, int]]:
    """(name, bytes) of each part of the reserve, per GPU (module docstring); empty on CPU."""
    if inp.gpu is None:
        return []
    a = inp.arch
    tp = inp.tensor_parallel
    inter = a.moe_intermediate_size * max(1, a.num_experts_per_tok) if a.num_experts else a.intermediate_size
    tokens = profile_tokens(inp)
    act = tokens * (3 * inter / tp + 2 * a.hidden_size) * inp.act_bytes * ACT_SCALE
    copies = SAMPLER_COPIES_FLASHINFER if inp.flashinfer_sampler else SAMPLER_COPIES
    sampler = inp.max_num_seqs * a.vocab_size * 4 * copies
    # the forward pass and the sampler run one after the other: the peak is the larger one
    peak = (f"activations ({tokens:,} tokens)", int(act)) if act >= sampler else (
        f"sampler ({inp.max_num_seqs} seqs x {a.vocab_size:,} vocab)", int(sampler))  # fmt: skip
    profiled_v0 = is_v0(inp) and _version(inp.vllm_version) >= V0_BASELINE_SNAPSHOT_SINCE
    non_torch = NON_TORCH_V0_PROFILED if profiled_v0 else NON_TORCH
    non_torch += TP_NON_TORCH if tp * inp.pipeline_parallel > 1 else 0
    parts = [("non-torch", non_torch), peak]
    if not inp.enforce_eager and _version(inp.vllm_version) >= CUDAGRAPH_COUNTED_SINCE:
        parts.append(("CUDA graphs", CUDAGRAPH))
    if inp.max_loras:
        io = 2 * a.hidden_size + (a.num_heads + 2 * a.num_kv_heads) * a.head_dim  # qkv in+out
        io += a.num_heads * a.head_dim + a.hidden_size  # o_proj
        io += 3 * a.hidden_size + 3 * inter  # gate_up + down
        parts.append((f"LoRA slots ({inp.max_loras} x rank {inp.max_lora_rank})",
                      int(inp.max_loras * inp.max_lora_rank * io * a.num_layers * inp.act_bytes / tp)))  # fmt: skip
    return parts


def reserve_bytes(inp: FitInputs) -> int:
    """Non-weight, non-KV memory vLLM holds on a GPU (module docstring)."""
    return sum(n for _, n in reserve_parts(inp))


def _reserve_band(reserve: int) -> int:
    """The +- bytes around a reserve estimate (RESERVE_BAND of it, at least RESERVE_BAND_MIN)."""
    return max(RESERVE_BAND_MIN, int(reserve * RESERVE_BAND))


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


def _capacity(inp: FitInputs, budget: int, per_block: int, per_request: int) -> tuple[int, float, int]:
    """(num_blocks, max_concurrency, kv_tokens) of a KV budget, as vLLM computes and logs them."""
    num_blocks = max(0, budget) // per_block if per_block else 0
    # vLLM: concurrency = num_blocks / blocks one request needs (summed over layer groups).
    concurrency = num_blocks * per_block / per_request if per_request else 0.0
    if inp.gpu is not None and _version(inp.vllm_version) < LOGGED_TOKENS_BY_CONCURRENCY_SINCE:
        return num_blocks, concurrency, num_blocks * inp.block_size
    return num_blocks, concurrency, int(concurrency * inp.max_model_len)


def estimate(inp: FitInputs) -> FitResult:
    """Weights, reserve, KV capacity, its band and the verdict for one configuration."""
    a = inp.arch
    ranks = inp.tensor_parallel * inp.pipeline_parallel
    weights = weight_bytes(a, inp.weight_bits, inp.act_bytes, inp.use_checkpoint_bytes, inp.tensor_parallel) // ranks
    draft_w = weight_bytes(inp.draft, None, inp.act_bytes) // inp.draft_tensor_parallel if inp.draft else 0
    kvb = kv_dtype_bytes(inp.kv_cache_dtype, inp.act_bytes)
    full, sw = kv_per_token(a, kvb, inp.tensor_parallel, inp.pipeline_parallel)
    dfull, dsw = kv_per_token(inp.draft, kvb, inp.draft_tensor_parallel, 1) if inp.draft else (0.0, 0.0)
    parts = reserve_parts(inp)
    reserve = sum(n for _, n in parts)
    band = _reserve_band(reserve) if inp.gpu is not None else 0
    notes: list[str] = []
    if inp.gpu is not None:
        usable = int(inp.gpu.memory_bytes * inp.gpu_memory_utilization)
        budget = usable - weights - draft_w - reserve
        low, high = budget - band, budget + band
        if inp.kv_budget_override is not None:
            budget = low = high = min(budget, inp.kv_budget_override)
    else:
        usable = 0
        budget = low = high = inp.kv_budget_override or 0
    per_block = int((full + sw + dfull + dsw) * inp.block_size)
    per_request = request_bytes(inp, inp.max_model_len)
    num_blocks, concurrency, tokens = _capacity(inp, budget, per_block, per_request)
    blocks_low, conc_low, tokens_low = _capacity(inp, low, per_block, per_request)
    _, conc_high, tokens_high = _capacity(inp, high, per_block, per_request)
    upper = max(inp.max_model_len, a.max_position_embeddings or 0)
    fitting = max_fitting_len(inp, num_blocks * per_block, upper)
    fitting_low = max_fitting_len(inp, blocks_low * per_block, upper)
    gib = _gib
    need = gib(per_request)
    if inp.gpu is not None and high <= 0:
        fit = "does not fit"
        verdict = (
            f"does not fit: weights {gib(weights + draft_w)} + reserve {gib(reserve)} (+-{gib(band)}) per GPU exceed "
            f"{gib(usable)} ({inp.gpu_memory_utilization:g} x {inp.gpu.memory_gib:.2f} GiB {inp.gpu.name})"
        )
    elif conc_high < 1:
        fit = "does not fit"
        verdict = (
            f"does not fit: one request at max_model_len {inp.max_model_len:,} needs {need} of KV "
            f"cache, only {gib(max(0, budget))} is available"
            + (f" (at most {gib(max(0, high))})" if high != budget else "")
            + (f"; the largest max_model_len that fits is {fitting:,}" if fitting else "")
        )
    elif conc_low < 1 or concurrency < 1:
        fit = "may not fit"
        verdict = (
            f"may not fit: one request at max_model_len {inp.max_model_len:,} needs {need} of KV cache; "
            f"the estimate leaves {gib(max(0, budget))} (between {gib(max(0, low))} and {gib(max(0, high))})"
            + (f"; max_model_len {fitting:,} fits the middle of the band" if fitting and concurrency >= 0 else "")
        )
    else:
        fit = "fits"
        verdict = f"fits: {math.floor(concurrency):,} concurrent sequences at max_model_len {inp.max_model_len:,}"
        if math.floor(conc_low) != math.floor(conc_high):
            verdict += f" ({math.floor(conc_low):,} to {math.floor(conc_high):,} within the error band)"
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
        fits=fit == "fits",
        verdict=verdict,
        notes=tuple(notes),
        fit=fit,
        reserve_parts=tuple(parts),
        reserve_band_bytes=band,
        kv_tokens_low=tokens_low,
        kv_tokens_high=tokens_high,
        max_fitting_len_low=fitting_low,
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

    if not result.fits and result.max_fitting_len_low:
        length = result.max_fitting_len_low
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
        for gpu in sorted(GPUS, key=lambda g: g.memory_bytes):
            if gpu.memory_bytes > inp.gpu.memory_bytes and estimate(replace(inp, gpu=gpu)).fits:
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
