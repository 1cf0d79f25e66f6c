"""The GPU catalog: memory as vLLM sees it, each figure with its source; GPUs outside it."""

from __future__ import annotations

import re

from vllmtune.fit.estimate import GIB
from vllmtune.fit.gpus import GPUS, custom_gpu, find_gpu

REQUIRED = {
    "RTX-3090", "RTX-4090", "RTX-5090", "RTX-PRO-6000", "L4", "L40S", "A10", "A10G", "A100-40GB", "A100-80GB",
    "H100-PCIe", "H100-80GB", "H200", "B200", "MI300X",
}  # fmt: skip


def test_the_common_gpus_are_in_the_catalog() -> None:
    assert {g.name for g in GPUS} >= REQUIRED
    assert find_gpu("rtx pro 6000 blackwell").name == "RTX-PRO-6000"
    assert find_gpu("h100-sxm").name == "H100-80GB"


def test_every_figure_says_where_it_comes_from() -> None:
    logged = re.compile(r"^[0-9.]+ GiB logged in https://github\.com/\S+ \(.+\)$")
    derived = re.compile(r"^derived: (nvidia|rocm)-smi total [0-9,]+ MiB - 0\.45 GiB = [0-9.]+ GiB$")
    for gpu in GPUS:
        assert logged.match(gpu.source) or derived.match(gpu.source), gpu
    # the torch totals of the issue, not nvidia-smi's
    assert find_gpu("H100-80GB").memory_bytes == int(79.22 * GIB)
    assert find_gpu("H100-80GB").source == (
        "79.22 GiB logged in https://github.com/vllm-project/vllm/pull/10511 (total_gpu_memory)"
    )
    assert find_gpu("RTX-3090").memory_bytes == int(23.58 * GIB)
    assert find_gpu("L40S").memory_bytes == int(44.42 * GIB)


def test_any_gpu_by_its_memory() -> None:
    gpu = custom_gpu(24 * GIB)
    assert (gpu.name, gpu.memory_gib, gpu.capability) == ("GPU (24.00 GiB)", 24.0, (8, 0))
    named = custom_gpu(int(31.5 * GIB), find_gpu("RTX-5090"))
    assert (named.name, named.capability, named.fp8_compute) == ("RTX-5090 (31.50 GiB)", (12, 0), True)
    assert named.source == "given with --gpu-memory / resources.gpu_memory"
