"""GPU catalog for memory planning.

``memory_mib`` is the total memory the driver reports (``nvidia-smi`` / ``rocm-smi``), which
is what vLLM multiplies by ``gpu_memory_utilization``; marketing "80 GB" is not 80 GiB.
``capability`` is the CUDA compute capability (None for AMD).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from vllmtune.fit.models import FitError

MIB = 1024**2


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator model."""

    name: str
    memory_mib: int
    capability: tuple[int, int] | None  # CUDA compute capability; None: ROCm
    bf16: bool
    fp8_compute: bool  # native FP8 tensor cores (W8A8 FP8): Ada, Hopper, MI300
    aliases: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


GPUS: tuple[GpuSpec, ...] = (
    GpuSpec("H100-80GB", 81559, (9, 0), True, True, ("h100", "h100-sxm", "h100-pcie", "h100-80g")),
    GpuSpec("H100-94GB", 95830, (9, 0), True, True, ("h100-nvl", "h100nvl", "h100-94g")),
    GpuSpec("H200", 143771, (9, 0), True, True, ("h200-141gb", "h200-sxm")),
    GpuSpec("A100-80GB", 81920, (8, 0), True, False, ("a100-80g", "a100-sxm4-80gb")),
    GpuSpec("A100-40GB", 40960, (8, 0), True, False, ("a100", "a100-40g", "a100-sxm4-40gb")),
    GpuSpec("L40S", 46068, (8, 9), True, True, ("l40s-48gb",)),
    GpuSpec("L4", 23034, (8, 9), True, True, ("l4-24gb",)),
    GpuSpec("A10G", 23028, (8, 6), True, False, ("a10g-24gb", "a10")),
    GpuSpec("RTX-4090", 24564, (8, 9), True, True, ("rtx4090", "4090", "geforce-rtx-4090")),
    GpuSpec("T4", 15360, (7, 5), False, False, ("t4-16gb", "tesla-t4")),
    GpuSpec("V100-16GB", 16384, (7, 0), False, False, ("v100", "v100-16g", "tesla-v100")),
    GpuSpec("V100-32GB", 32768, (7, 0), False, False, ("v100-32g",)),
    GpuSpec("MI300X", 196592, None, True, True, ("mi300x-192gb", "mi300")),
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def gpu_names() -> list[str]:
    """Catalog names, in catalog order."""
    return [g.name for g in GPUS]


def find_gpu(name: str) -> GpuSpec:
    """A GPU by name or alias (case and punctuation ignored); FitError with did-you-mean."""
    key = _key(name)
    for gpu in GPUS:
        if key in {_key(gpu.name), *(_key(a) for a in gpu.aliases)}:
            return gpu
    close = difflib.get_close_matches(name.upper(), gpu_names(), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise FitError(f"unknown GPU {name!r}; {hint}choose one of: {', '.join(gpu_names())}")


def quantization_support(gpu: GpuSpec, method: str | None) -> str | None:
    """A warning when vLLM's kernels for ``method`` need a newer GPU, else None."""
    if not method or gpu.capability is None:
        return None
    cap = gpu.capability
    if method in ("awq_marlin", "gptq_marlin", "marlin") and cap < (8, 0):
        return f"{method} (Marlin kernels) needs compute capability 8.0+ (Ampere); {gpu.name} is {cap[0]}.{cap[1]}"
    if method == "awq" and cap < (7, 5):
        return f"awq needs compute capability 7.5+ (Turing); {gpu.name} is {cap[0]}.{cap[1]}"
    if method in ("fp8", "fbgemm_fp8") and not gpu.fp8_compute:
        if cap < (8, 0):
            return f"FP8 weights need Ampere or newer; {gpu.name} is {cap[0]}.{cap[1]}"
        return f"{gpu.name} has no FP8 tensor cores: vLLM runs FP8 weights weight-only (Marlin), slower than W8A8"
    return None


def kv_dtype_support(gpu: GpuSpec, kv_cache_dtype: str | None) -> str | None:
    """A warning when an fp8 KV cache is unlikely to be supported on this GPU."""
    if not kv_cache_dtype or not kv_cache_dtype.startswith("fp8") or gpu.capability is None:
        return None
    if gpu.capability < (8, 0):
        return f"fp8 KV cache needs Ampere or newer in vLLM's attention backends; {gpu.name} is pre-Ampere"
    return None
