"""Read vLLM's start-up log: which phase it is in, why it failed, what KV cache it got.

Patterns are matched on lines vLLM really prints (0.6 .. 0.33); a line we do not know
never changes the phase, so new vLLM wording degrades to "starting", never to a wrong word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (phase, pattern): distinctive messages only (engine config dumps mention "torch.compile"
# and "compilation", so those words alone prove nothing). The order on GPU and CPU differs,
# so a phase is never inferred from position; "starting" is only the initial phase.
PHASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("downloading weights", re.compile(r"Downloading |Fetching \d+ files|Using model weights format")),
    (
        "loading weights",
        re.compile(r"Starting to load model|Loading weights took|Loading safetensors checkpoint|Loading model weights"),
    ),
    (
        "compiling / warming up",
        re.compile(
            r"Warming up model|Capturing CUDA graphs|Compiling a graph for|torch\.compile takes"
            r"|Dynamo bytecode transform"
        ),
    ),
    ("allocating KV cache", re.compile(r"Memory profiling takes|KV cache size: |# (?:GPU|CPU) blocks:")),
    ("ready", re.compile(r"Application startup complete|Starting vLLM (?:API )?server on")),
)


@dataclass(frozen=True)
class Failure:
    """A recognised start-up failure and what to do about it."""

    reason: str
    hint: str


_KV_TOO_SMALL = re.compile(
    r"max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored in KV "
    r"cache \((\d+)\)",
    re.I,
)
# 0.9+ wording: "...max seq len (131072), (16.00 GiB KV cache is needed, which is larger than
# the available KV cache memory (9.50 GiB). ... the estimated maximum model length is 77824."
_KV_MEMORY_TOO_SMALL = re.compile(
    r"max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the "
    r"available KV cache memory \(([\d.]+) GiB\)",
    re.I,
)
# What helps whenever max_model_len does not fit the KV cache (after lowering it).
_KV_FIX = "raise resources.gpu_memory_utilization, or use an fp8 KV cache (quantization.kv_cache_dtype: fp8)"
_ESTIMATED_MAX = re.compile(r"estimated maximum model length is (\d+)", re.I)
FAILURES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"CUDA out of memory|OutOfMemoryError|torch\.OutOfMemoryError", re.I),
        "CUDA out of memory",
        "lower model.max_model_len or batching.max_num_seqs, raise "
        "resources.gpu_memory_utilization, use a quantized checkpoint, or add GPUs "
        "(tensor_parallel_size); run `vllmtune fit` to see what fits",
    ),
    (
        re.compile(r"unrecognized arguments: (.*)", re.I),
        "vLLM rejected an argument",
        "the pinned vllm.version does not accept it: check `vllmtune flags --vllm VERSION`",
    ),
    (
        re.compile(r"_C::(\w*(?:fp8|quant|marlin|awq|gptq)\w*)\(\) expected at most 0 argument", re.I),
        "this vLLM build has no kernel for the quantization method",
        "the hardware / build cannot run it (e.g. FP8 on vLLM's CPU build): choose a method it supports "
        "or serve unquantized",
    ),
    (
        re.compile(r"No space left on device", re.I),
        "disk full",
        "free space where the Hugging Face cache lives (HF_CACHE / the model cache volume)",
    ),
    (
        re.compile(r"(401|403) Client Error|GatedRepoError|Access to model .* is restricted", re.I),
        "the model is gated and no valid Hugging Face token was sent",
        "accept the licence on the Hub and set server.hf_token: {env: HF_TOKEN}",
    ),
    (
        re.compile(
            r"RepositoryNotFoundError|Repository Not Found|is not a local folder and is not a valid model identifier",
            re.I,
        ),
        "model not found",
        "check model.id (a Hub id or an existing local directory)",
    ),
    (
        re.compile(r"Address already in use|address already in use", re.I),
        "port already in use",
        "pick another server.port or stop what holds it",
    ),
    (
        re.compile(r"No CUDA GPUs are available|Found no NVIDIA driver|libcuda\.so", re.I),
        "no usable GPU in the container",
        "run with --gpus and the NVIDIA Container Toolkit, or use a CPU build of vLLM",
    ),
)

ROOT_CAUSE = re.compile(
    r"\((?:Worker|VllmWorker|EngineCore)[^)]*\) ERROR [^\]]*\] ((?:\w+\.)*\w*(?:Error|Exception): .*)"
)
KV_TOKENS = re.compile(r"(?:GPU|CPU)? ?KV cache size: ([\d,]+) tokens", re.I)
MAX_CONCURRENCY = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x", re.I)


def phase_of(line: str) -> str | None:
    """The start-up phase a log line announces, if any."""
    found = None
    for name, pattern in PHASES:
        if pattern.search(line):
            found = name
    return found


def diagnose(lines: list[str]) -> Failure | None:
    """The most specific recognisable reason in a failed start-up's log."""
    text = "\n".join(lines)
    m = _KV_MEMORY_TOO_SMALL.search(text)
    if m:
        est = _ESTIMATED_MAX.search(text)
        fix = f"set model.max_model_len: {est.group(1)} (or less)" if est else "lower model.max_model_len"
        return Failure(
            f"max_model_len {m.group(1)} needs {m.group(2)} GiB of KV cache but only {m.group(3)} GiB is available",
            f"{fix}, {_KV_FIX}",
        )
    m = _KV_TOO_SMALL.search(text)
    if m:
        est = _ESTIMATED_MAX.search(text)
        suggestion = est.group(1) if est else m.group(2)
        return Failure(
            f"max_model_len {m.group(1)} does not fit the KV cache ({m.group(2)} tokens)",
            f"set model.max_model_len: {suggestion} (or less), {_KV_FIX}",
        )
    for pattern, reason, hint in FAILURES:
        hit = pattern.search(text)
        if hit:
            if hit.groups():
                reason = f"{reason}: {hit.group(1).strip()}"
            return Failure(reason, hint)
    # Unrecognised: the root cause vLLM's worker or engine logged is still the best reason.
    root = ROOT_CAUSE.search(text)
    if root:
        return Failure(root.group(1).strip()[:300], "see the log lines above")
    return None


def kv_cache_facts(lines: list[str]) -> dict[str, float]:
    """What vLLM reports it allocated: KV cache tokens and max concurrency."""
    out: dict[str, float] = {}
    for line in lines:
        m = KV_TOKENS.search(line)
        if m:
            out["kv_cache_tokens"] = int(m.group(1).replace(",", ""))
        m = MAX_CONCURRENCY.search(line)
        if m:
            out["max_concurrency_tokens_per_request"] = int(m.group(1).replace(",", ""))
            out["max_concurrency"] = float(m.group(2))
    return out
