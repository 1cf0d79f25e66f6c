"""vllmtune.fit.gpus: the catalog's names and the kernel warnings per compute capability."""

from __future__ import annotations

from vllmtune.fit.gpus import find_gpu, gpu_names, kv_dtype_support, quantization_support


def test_gpu_names_are_the_catalog_in_order() -> None:
    assert gpu_names() == [
        "H100-80GB", "H100-PCIe", "H100-94GB", "H200", "B200", "A100-80GB", "A100-40GB", "L40S", "L4", "A10G",
        "A10", "RTX-3090", "RTX-4090", "RTX-5090", "RTX-PRO-6000", "RTX-4060", "T4", "V100-16GB", "V100-32GB",
        "MI300X",
    ]  # fmt: skip


def test_marlin_needs_ampere() -> None:
    assert quantization_support(find_gpu("T4"), "awq_marlin") == (
        "awq_marlin (Marlin kernels) needs compute capability 8.0+ (Ampere); T4 is 7.5"
    )
    assert quantization_support(find_gpu("A10G"), "gptq_marlin") is None


def test_awq_needs_turing() -> None:
    assert quantization_support(find_gpu("V100-16GB"), "awq") == (
        "awq needs compute capability 7.5+ (Turing); V100-16GB is 7.0"
    )
    assert quantization_support(find_gpu("T4"), "awq") is None


def test_fp8_weights() -> None:
    assert quantization_support(find_gpu("T4"), "fp8") == "FP8 weights need Ampere or newer; T4 is 7.5"
    assert quantization_support(find_gpu("A100-80GB"), "fbgemm_fp8") == (
        "A100-80GB has no FP8 tensor cores: vLLM runs FP8 weights weight-only (Marlin), slower than W8A8"
    )
    assert quantization_support(find_gpu("H100-80GB"), "fp8") is None


def test_no_warning_without_a_method_or_a_known_capability() -> None:
    assert quantization_support(find_gpu("T4"), None) is None
    assert quantization_support(find_gpu("MI300X"), "awq_marlin") is None  # ROCm: no CUDA capability


def test_fp8_kv_cache_needs_ampere() -> None:
    assert kv_dtype_support(find_gpu("V100-32GB"), "fp8_e5m2") == (
        "fp8 KV cache needs Ampere or newer in vLLM's attention backends; V100-32GB is pre-Ampere"
    )
    assert kv_dtype_support(find_gpu("A10"), "fp8") is None
    assert kv_dtype_support(find_gpu("T4"), "auto") is None
    assert kv_dtype_support(find_gpu("T4"), None) is None
    assert kv_dtype_support(find_gpu("MI300X"), "fp8") is None
