"""GPU catalog for memory planning.

``memory_bytes`` is the total memory **as vLLM sees it**: ``torch.cuda.mem_get_info()``'s
total, the ``total_gpu_memory`` vLLM logs and multiplies by ``gpu_memory_utilization``. It is
a little below ``nvidia-smi``'s total (an H100 80GB: 79.22 GiB, not 81,559 MiB = 79.65 GiB).
Each entry says where its figure comes from (``source``): a published vLLM or torch log line,
or, where none was found, nvidia-smi's total minus ``DRIVER_RESERVE`` (the median gap of the
sourced entries: RTX 3090 0.42, H100 0.43, RTX 5090 0.47, L40S 0.57 GiB) -- those say
"derived". Any other GPU: ``fit --gpu-memory 24GiB`` or ``resources.gpu_memory``.
``capability`` is the CUDA compute capability (None for AMD).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from vllmtune.modelfacts.models import FitError

MIB = 1024**2
GIB = 1024**3
DRIVER_RESERVE_GIB = 0.45


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator model."""

    name: str
    memory_bytes: int  # total as torch.cuda.mem_get_info() reports it (what vLLM multiplies)
    capability: tuple[int, int] | None  # CUDA compute capability; None: ROCm
    bf16: bool
    fp8_compute: bool  # native FP8 tensor cores (W8A8 FP8): Ada, Hopper, Blackwell, MI300
    aliases: tuple[str, ...] = ()
    source: str = ""

    @property
    def memory_mib(self) -> int:
        return self.memory_bytes // MIB

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


def _logged(gib: float, url: str) -> tuple[int, str]:
    return int(gib * GIB), f"{gib:g} GiB logged in {url}"


def _derived(smi_mib: int, what: str = "nvidia-smi") -> tuple[int, str]:
    gib = round(smi_mib / 1024 - DRIVER_RESERVE_GIB, 2)
    return int(gib * GIB), f"derived: {what} total {smi_mib:,} MiB - {DRIVER_RESERVE_GIB} GiB = {gib:g} GiB"


def _gpu(name: str, mem: tuple[int, str], cap: tuple[int, int] | None, bf16: bool, fp8: bool, *aliases: str) -> GpuSpec:
    return GpuSpec(name, mem[0], cap, bf16, fp8, aliases, mem[1])


VLLM = "https://github.com/vllm-project/vllm"
GPUS: tuple[GpuSpec, ...] = (
    _gpu("H100-80GB", _logged(79.22, f"{VLLM}/pull/10511 (total_gpu_memory)"), (9, 0), True, True,
         "h100", "h100-sxm", "h100-sxm5", "h100-80g", "h100-sxm-80gb"),
    _gpu("H100-PCIe", _derived(81559), (9, 0), True, True, "h100-pcie-80gb", "h100pcie"),
    _gpu("H100-94GB", _derived(95830), (9, 0), True, True, "h100-nvl", "h100nvl", "h100-94g"),
    _gpu("H200", _derived(143771), (9, 0), True, True, "h200-141gb", "h200-sxm"),
    _gpu("B200", _derived(183359), (10, 0), True, True, "b200-180gb", "b200-sxm"),
    _gpu("A100-80GB", _logged(79.25, "https://github.com/levihsu/OOTDiffusion/issues/235 (torch OOM total)"),
         (8, 0), True, False, "a100-80g", "a100-sxm4-80gb", "a100-pcie-80gb"),
    _gpu("A100-40GB", _logged(39.38, f"{VLLM}/issues/16570 (total_gpu_memory)"),
         (8, 0), True, False, "a100", "a100-40g", "a100-sxm4-40gb"),
    _gpu("L40S", _logged(44.42, f"{VLLM}/issues/15815 (total_gpu_memory)"), (8, 9), True, True, "l40s-48gb"),
    _gpu("L4", _derived(23034), (8, 9), True, True, "l4-24gb"),
    _gpu("A10G", _derived(23028), (8, 6), True, False, "a10g-24gb"),
    _gpu("A10", _logged(22.18, "https://github.com/OpenBMB/MiniCPM-V/issues/640 (torch OOM total)"),
         (8, 6), True, False, "a10-24gb"),
    _gpu("RTX-3090", _logged(23.58, f"{VLLM}/issues/10517 (total_gpu_memory)"), (8, 6), True, False,
         "rtx3090", "3090", "geforce-rtx-3090"),
    _gpu("RTX-4090", _logged(23.6, "https://github.com/ollama/ollama/pull/6279 (CUDA total of a GeForce RTX 4090)"),
         (8, 9), True, True, "rtx4090", "4090", "geforce-rtx-4090"),
    _gpu("RTX-5090", _logged(31.37, f"{VLLM}/issues/14452 (total_gpu_memory)"),
         (12, 0), True, True, "rtx5090", "5090", "geforce-rtx-5090"),
    _gpu("RTX-PRO-6000", _derived(97887), (12, 0), True, True,
         "rtx-pro-6000-blackwell", "rtxpro6000", "pro6000"),
    _gpu("RTX-4060", _logged(8.00, f"{VLLM}/issues/13882 (total_gpu_memory)"), (8, 9), True, True,
         "rtx4060", "4060"),
    _gpu("T4", _derived(15360), (7, 5), False, False, "t4-16gb", "tesla-t4"),
    _gpu("V100-16GB", _derived(16384), (7, 0), False, False, "v100", "v100-16g", "tesla-v100"),
    _gpu("V100-32GB", _logged(31.73, f"{VLLM}/issues/11352 (total_gpu_memory)"), (7, 0), False, False, "v100-32g"),
    _gpu("MI300X", _derived(196592, "rocm-smi"), None, True, True, "mi300x-192gb", "mi300"),
)  # fmt: skip


def custom_gpu(memory_bytes: int, base: GpuSpec | None = None) -> GpuSpec:
    """A GPU of ``memory_bytes`` total (``--gpu-memory``): the named GPU's kernels, or Ampere's."""
    gib = memory_bytes / GIB
    if base is not None:
        return GpuSpec(f"{base.name} ({gib:.2f} GiB)", memory_bytes, base.capability, base.bf16, base.fp8_compute,
                       (), "given with --gpu-memory / resources.gpu_memory")  # fmt: skip
    return GpuSpec(f"GPU ({gib:.2f} GiB)", memory_bytes, (8, 0), True, False, (),
                   "given with --gpu-memory / resources.gpu_memory")  # fmt: skip


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
