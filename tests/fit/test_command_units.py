"""vllmtune.fit.command: the estimate's inputs resolved from profile + plan, the report, and its
table. Models come from the built-in catalog (offline), GPUs from vllmtune.fit.gpus."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from vllmtune.errors import FitError
from vllmtune.fit.command import fit_inputs, fit_table, report_for
from vllmtune.fit.estimate import AWQ_BITS
from vllmtune.fit.gpus import find_gpu, gpu_names
from vllmtune.plan import build_plan
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import load_profile, validate_document
from vllmtune.profile.yamlio import load_yaml

HEAD = "name: p\nvllm: {version: '0.32.0'}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 4096}\n"
CPU_NOTE = (
    "server.env.VLLM_CPU_KVCACHE_SPACE unset: assumed 4 GiB (recent vLLM sizes the CPU KV cache from "
    "gpu_memory_utilization x RAM instead); set it for an exact figure"
)


def lp_of(text: str) -> LoadedProfile:
    return validate_document(load_yaml(text, "p.yaml"), "p.yaml")


def test_fit_inputs_on_an_old_gpu_warn_about_its_kernels() -> None:
    lp = lp_of(
        HEAD + "quantization: {method: awq_marlin, kv_cache_dtype: fp8, "
        "checkpoint: hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4}\nresources: {gpus: 1}\n"
    )
    inputs, notes = fit_inputs(lp, build_plan(lp), "V100-16GB", online=False)
    assert (inputs.arch.name, inputs.arch.num_layers, inputs.arch.num_kv_heads) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        32,
        8,
    )
    assert (inputs.weight_method, inputs.weight_bits, inputs.kv_cache_dtype) == ("awq_marlin", AWQ_BITS, "fp8")
    assert (inputs.gpu, inputs.gpu_memory_utilization, inputs.max_model_len) == (find_gpu("V100-16GB"), 0.92, 4096)
    # vLLM's defaults on a GPU under 70 GiB: 256 sequences, 2,048 batched tokens, blocks of 16
    assert (inputs.max_num_seqs, inputs.max_num_batched_tokens, inputs.block_size) == (256, 2048, 16)
    assert notes == [
        "awq_marlin (Marlin kernels) needs compute capability 8.0+ (Ampere); V100-16GB is 7.0",
        "fp8 KV cache needs Ampere or newer in vLLM's attention backends; V100-16GB is pre-Ampere",
        "V100-16GB has no BF16: vLLM runs this BF16 model in FP16",
    ]


def test_fit_inputs_on_cpu_read_vllm_cpu_kvcache_space() -> None:
    lp = lp_of(HEAD + "resources: {gpus: 0}\nserver: {env: {VLLM_CPU_KVCACHE_SPACE: '8'}}\n")
    inputs, notes = fit_inputs(lp, build_plan(lp), None, online=False)
    assert (inputs.gpu, inputs.kv_budget_override, inputs.block_size) == (None, 8 * 2**30, 128)
    assert (inputs.max_num_seqs, inputs.max_num_batched_tokens) == (128, 2048)
    assert notes == []


def test_fit_inputs_on_cpu_without_the_space_assume_vllm_s_old_default() -> None:
    lp = lp_of(HEAD + "resources: {gpus: 0}\n")
    inputs, notes = fit_inputs(lp, build_plan(lp), None, online=False)
    assert inputs.kv_budget_override == 4 * 2**30
    assert notes == [CPU_NOTE]


def test_fit_inputs_on_gpus_need_the_gpu_named() -> None:
    lp = lp_of(HEAD + "resources: {gpus: 1}\n")
    with pytest.raises(FitError) as e:
        fit_inputs(lp, build_plan(lp), None, online=False)
    assert str(e.value) == (
        f"name the GPU to plan for: --gpu NAME, one of {', '.join(gpu_names())}; or give its memory as torch "
        "reports it: --gpu-memory 24GiB (or resources.gpu_memory)"
    )


def test_fit_inputs_with_gpu_memory_plan_for_that_memory() -> None:
    lp = lp_of(HEAD + "resources: {gpus: 1}\n")
    inputs, _ = fit_inputs(lp, build_plan(lp), None, online=False, gpu_memory=24 * 2**30)
    assert inputs.gpu is not None
    assert (inputs.gpu.name, inputs.gpu.memory_bytes) == ("GPU (24.00 GiB)", 24 * 2**30)


def baseline_report(suggest: bool) -> dict[str, object]:
    lp = load_profile("preset:baseline")
    return report_for(lp, build_plan(lp), "L4", suggest, online=False)


def test_report_for_the_baseline_on_an_l4() -> None:
    assert baseline_report(False) == {
        "profile": "llama-8b-baseline",
        "vllm_version": "0.32.0",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "device": "L4",
        "gpu_memory_bytes": 23_665_269_800,
        "gpu_memory_source": "derived: nvidia-smi total 23,034 MiB - 0.45 GiB = 22.04 GiB",
        "gpu_memory_utilization": 0.9,
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "weights": {"method": "none", "bits_per_weight": 16, "total_bytes": 8_030_261_248 * 2},
        "kv_cache_dtype": "auto",
        "kv_dtype_bytes": 2,
        "architecture": {
            "name": "meta-llama/Llama-3.1-8B-Instruct",
            "source": "built-in catalog (meta-llama/Llama-3.1-8B-Instruct)",
            "model_type": "llama",
            "layers": 32,
            "hidden_size": 4096,
            "attention_heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "vocab_size": 128256,
            "intermediate_size": 14336,
            "tie_word_embeddings": False,
            "params": 8_030_261_248,
            "params_source": "derived from the architecture",
            "dtype": "bfloat16",
        },
        "draft": None,
        "per_gpu": {
            "weights_bytes": 16_060_522_496,
            "draft_weights_bytes": 0,
            "reserve_bytes": 1_999_293_644,
            "usable_bytes": 21_298_742_820,  # int(23,665,269,800 x 0.9)
            "kv_budget_bytes": 3_238_926_680,  # usable - weights - reserve
            "kv_bytes_per_token": 2 * 32 * 8 * 128 * 2,  # K and V, layers, KV heads, head dim, 16-bit
            "draft_kv_bytes_per_token": 0.0,
            "block_size": 16,
            "num_blocks": 1544,
            "kv_tokens": 1544 * 16,
            "kv_tokens_band": [21648, 27760],
            "max_concurrency": 3.02,
            "max_model_len": 8192,
            "max_fitting_len": 24704,
            "reserve_parts": {
                "non-torch": 322_122_547,
                "sampler (256 seqs x 128,256 vocab)": 1_247_674_368,
                "CUDA graphs": 429_496_729,
            },
            "reserve_band_bytes": 399_858_728,
        },
        "fits": True,
        "fit": "fits",
        "verdict": "fits: 3 concurrent sequences at max_model_len 8,192 (2 to 3 within the error band)",
        "notes": [
            "max_num_seqs 256 > 3 full-length sequences: vLLM will preempt (recompute) requests when long "
            "contexts fill the KV cache"
        ],
    }


def test_fit_table_of_the_baseline_with_suggestions() -> None:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(fit_table(baseline_report(True)))
    assert console.export_text() == (
        "llama-8b-baseline: meta-llama/Llama-3.1-8B-Instruct on L4                                           \n"
        "┌──────────────┬───────────────────────────────────────────────────────────────────────────────────┐\n"
        "│ architecture │ 32 layers, 8 KV heads x 128, 8,030,261,248 params (built-in catalog               │\n"
        "│              │ (meta-llama/Llama-3.1-8B-Instruct))                                               │\n"
        "│ weights      │ 14.96 GiB (none, 16 bits)                                                         │\n"
        "│ GPU memory   │ 22.04 GiB (derived: nvidia-smi total 23,034 MiB - 0.45 GiB = 22.04 GiB)           │\n"
        "│ usable       │ 19.84 GiB (x0.9)                                                                  │\n"
        "│ reserve      │ 1.86 GiB +- 0.37 GiB (non-torch 0.30 GiB, sampler (256 seqs x 128,256 vocab) 1.16 │\n"
        "│              │ GiB, CUDA graphs 0.40 GiB)                                                        │\n"
        "│ KV cache     │ 3.02 GiB (auto)                                                                   │\n"
        "│ KV per token │ 131,072 B                                                                         │\n"
        "│ KV tokens    │ 24,704 (1,544 blocks of 16), 21,648 to 27,760 within the error band               │\n"
        "│ concurrency  │ 3.02x at max_model_len 8,192                                                      │\n"
        "│ verdict      │ fits: 3 concurrent sequences at max_model_len 8,192 (2 to 3 within the error      │\n"
        "│              │ band)                                                                             │\n"
        "└──────────────┴───────────────────────────────────────────────────────────────────────────────────┘\n"
        "note: max_num_seqs 256 > 3 full-length sequences: vLLM will preempt (recompute) requests when long \n"
        "contexts fill the KV cache\n"
        "Suggestions                                                                                         \n"
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━┓\n"
        "┃ change                                                                 ┃ KV tokens ┃ concurrency ┃\n"
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━┩\n"
        "│ quantization.kv_cache_dtype: fp8 (halves KV bytes; re-check quality)   │    49,408 │       6.03x │\n"
        "│ quantization: a 4-bit AWQ checkpoint (quantization.checkpoint:         │   103,536 │      12.64x │\n"
        "│ ...-AWQ-INT4, method awq_marlin)                                       │           │             │\n"
        "│ resources.tensor_parallel_size: 2 (and resources.gpus: 2)              │   167,856 │      20.49x │\n"
        "│ resources.gpu_memory_utilization: 0.95                                 │    33,728 │       4.12x │\n"
        "└────────────────────────────────────────────────────────────────────────┴───────────┴─────────────┘\n"
    )
