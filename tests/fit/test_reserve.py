"""The reserve model's version- and setup-dependent terms, each against the figure it predicts
(the logs these terms come from are cases of tests/fit/data/published_logs.json)."""

from __future__ import annotations

from dataclasses import replace

from vllmtune.fit.estimate import (
    GIB,
    FitInputs,
    chunked_prefill,
    estimate,
    is_v0,
    kv_per_token,
    profile_tokens,
    request_bytes,
    reserve_parts,
    weight_bytes,
)
from vllmtune.fit.gpus import custom_gpu, find_gpu
from vllmtune.modelfacts.models import ModelArch, catalog_lookup


def arch(name: str) -> ModelArch:
    found = catalog_lookup(name)
    assert found is not None, name
    return found


def test_flashinfer_sampler_holds_fewer_logits_copies() -> None:
    inp = FitInputs(arch=arch("Qwen/Qwen2-7B-Instruct"), max_model_len=16384, gpu=find_gpu("A100-80GB"),
                    gpu_memory_utilization=0.5, vllm_version="0.10.1.1")  # fmt: skip
    assert reserve_parts(inp) == [("non-torch", 322122547), ("sampler (256 seqs x 152,064 vocab)", 1479278592)]
    fast = replace(inp, flashinfer_sampler=True)  # 256 x 152,064 x 4 B x 2.5, not x 9.5
    assert reserve_parts(fast) == [("non-torch", 322122547), ("sampler (256 seqs x 152,064 vocab)", 389283840)]


def test_v0_with_chunked_prefill_profiles_the_sampler_too() -> None:
    inp = FitInputs(arch=arch("meta-llama/Llama-3.2-1B"), max_model_len=105088, gpu=custom_gpu(int(7.92 * GIB)),
                    gpu_memory_utilization=0.95, max_num_batched_tokens=512, vllm_version="0.6.4.post1")  # fmt: skip
    # > 32K: V0 chunks the prefill, yet profile_run still samples 256 dummy sequences (2 tokens each):
    # 256 x 128,256 x 4 B x 9.5 = 1.16 GiB; the GTX 1080 log's activation peak is 3.49 - 2.32 = 1.17 GiB
    assert reserve_parts(inp) == [("non-torch", 322122547), ("sampler (256 seqs x 128,256 vocab)", 1247674368)]
    assert chunked_prefill(inp) and profile_tokens(inp) == 512


def test_v0_runs_on_gpus_older_than_ampere_until_vllm_0_10() -> None:
    inp = FitInputs(arch=arch("meta-llama/Llama-3.2-3B-Instruct"), max_model_len=2048, gpu=find_gpu("T4"),
                    vllm_version="0.8.2")  # fmt: skip
    assert is_v0(inp)
    assert not is_v0(replace(inp, gpu=find_gpu("L4")))
    assert not is_v0(replace(inp, vllm_version="0.10.0"))
    assert is_v0(replace(inp, gpu=find_gpu("L4"), v0_engine=True))  # VLLM_USE_V1=0


def test_mxfp4_experts_pad_each_tensor_parallel_rank() -> None:
    a = arch("openai/gpt-oss-120b")
    # 2,880 / 4 = 720 columns per rank pad to 768: 17.13 GiB per GPU (17.22 logged), not 16.46
    assert weight_bytes(a, None, 2, tensor_parallel=1) == 70673795712
    assert weight_bytes(a, None, 2, tensor_parallel=4) == 73561574016


def test_logged_kv_tokens_before_vllm_0_20_count_every_layer_as_full() -> None:
    inp = FitInputs(arch=arch("openai/gpt-oss-20b"), max_model_len=16384, gpu=find_gpu("A100-80GB"),
                    vllm_version="0.10.1")  # fmt: skip
    old = estimate(inp)
    assert (old.num_blocks, old.kv_tokens) == (75837, 1213392)  # num_blocks x 16
    assert estimate(replace(inp, vllm_version="0.20.0")).kv_tokens == 2140419  # concurrency x max_model_len


def test_llama4_kv_is_full_on_every_layer_unless_the_hybrid_manager_is_allowed() -> None:
    scout = arch("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    assert (scout.num_experts, scout.num_shared_experts, scout.first_k_dense) == (16, 1, 0)
    assert (scout.attention_chunk_size, scout.chunked_layers) == (8192, 36)  # NoPE on every 4th layer
    maverick = arch("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    assert (maverick.num_experts, maverick.first_k_dense, maverick.intermediate_size) == (128, 24, 16384)
    assert kv_per_token(scout, 2, 8, 1) == (24576, 0)  # 48 layers x 1 kv head per GPU x 128 x 2 x 2 B
    inp = FitInputs(arch=scout, max_model_len=131072, tensor_parallel=8, gpu=find_gpu("H100"),
                    max_num_batched_tokens=8192, max_num_seqs=1024)  # fmt: skip
    assert request_bytes(inp, 131072) == 48 * 1024 * 131072 // 2  # vLLM's default: no hybrid manager
    hybrid = replace(inp, chunked_local_hybrid=True)  # 36 layers hold 8,192 + 8,192 tokens only
    assert request_bytes(hybrid, 131072) == (12 * 131072 + 36 * 16384) * 512
