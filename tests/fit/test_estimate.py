"""Memory planning: exact figures for known models, model facts, messages."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vllmtune.fit import FitError, FitInputs, find_gpu, fit_problems, fit_report, resolve_model
from vllmtune.fit.estimate import AWQ_BITS, GIB, estimate, kv_per_token, suggestions, weight_bytes
from vllmtune.modelfacts import models as fit_models
from vllmtune.modelfacts.models import (
    catalog_lookup,
    catalog_names,
    derived_params,
    from_directory,
    normalise_name,
    safetensors_params,
    unknown_model_message,
)
from vllmtune.plan import build_plan
from vllmtune.profile.loader import load_profile

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def arch(name: str) -> fit_models.ModelArch:
    found = catalog_lookup(name)
    assert found is not None, name
    return found


# ------------------------------------------------------------------ exact figures


def test_llama_8b_bf16_kv_bytes_and_weights() -> None:
    a = arch(LLAMA_8B)
    assert a.params == 8_030_261_248  # the published safetensors total
    assert kv_per_token(a, 2, 1, 1) == (131_072, 0)  # 32 layers x 8 kv heads x 128 x 2 (K,V) x 2 B
    assert weight_bytes(a, None, 2) == 16_060_522_496  # 16.06 GB


def test_llama_8b_awq_weights_keep_embeddings_16_bit() -> None:
    a = arch("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    assert a.name == LLAMA_8B
    assert AWQ_BITS == 4.15625  # 4-bit + FP16 scale + 4-bit zero per group of 128
    # embed + lm_head: 1,050,673,152 x 2 B; other 6,979,588,096 params x 4.15625 / 8
    assert weight_bytes(a, AWQ_BITS, 2) == 5_727_460_432  # the checkpoint is 5.73 GB


def test_llama_70b_tp4_on_h100() -> None:
    inp = FitInputs(
        arch=arch("meta-llama/Llama-3.1-70B-Instruct"),
        max_model_len=32768,
        tensor_parallel=4,
        gpu=find_gpu("H100-80GB"),
        gpu_memory_utilization=0.9,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
    )
    r = estimate(inp)
    assert r.weights_bytes == 35_276_853_248  # 141.1 GB / 4
    assert r.kv_bytes_per_token == 81_920  # 80 layers x 2 kv heads per GPU x 128 x 2 x 2 B
    # non-torch 0.30 + 0.25 GiB (TP); the peak is the sampler's: 256 x 128,256 x 4 B x 9.5 (the forward
    # pass, 8192 x (3 x 28672 / 4 + 2 x 8192) x 2 B x 1.08 = 0.62 GiB, is smaller); CUDA graphs 0.4 GiB
    assert r.reserve_parts == (
        ("non-torch", 590_558_003),
        ("sampler (256 seqs x 128,256 vocab)", 1_247_674_368),
        ("CUDA graphs", 429_496_729),
    )
    assert r.reserve_bytes == 2_267_729_100
    assert r.reserve_band_bytes == 453_545_820  # 20% of the reserve
    assert r.usable_bytes == 76_555_644_567  # 79.22 GiB (torch's total of an H100 80GB) x 0.9
    assert r.kv_budget_bytes == 39_011_062_219
    assert r.num_blocks == 29_763  # // (81,920 B x 16 tokens)
    assert r.kv_tokens == 476_208  # 29,763 / 2,048 blocks per request x 32,768
    assert (r.kv_tokens_low, r.kv_tokens_high) == (470_672, 481_744)
    assert r.fit == "fits" and r.verdict == "fits: 14 concurrent sequences at max_model_len 32,768"


def test_70b_does_not_fit_one_h100_and_suggestions_say_what_does() -> None:
    inp = FitInputs(arch=arch("meta-llama/Llama-3.1-70B"), max_model_len=8192, gpu=find_gpu("h100"))
    r = estimate(inp)
    assert not r.fits
    assert r.verdict.startswith("does not fit: weights 131.42 GiB + reserve")
    changes = [s["change"] for s in suggestions(inp, r)]
    assert "resources.tensor_parallel_size: 2 (and resources.gpus: 2)" in changes
    assert any(c.startswith("quantization: a 4-bit AWQ checkpoint") for c in changes)


def test_max_model_len_too_long_names_the_length_that_fits() -> None:
    inp = FitInputs(arch=arch(LLAMA_8B), max_model_len=131072, gpu=find_gpu("L4"), gpu_memory_utilization=0.9)
    r = estimate(inp)
    assert not r.fits and r.fit == "does not fit"
    assert r.max_fitting_len == r.num_blocks * 16 == 24_704
    assert r.verdict == (
        "does not fit: one request at max_model_len 131,072 needs 16.00 GiB of KV cache, only 3.02 GiB "
        "is available (at most 3.39 GiB); the largest max_model_len that fits is 24,704"
    )
    first = suggestions(inp, r)[0]
    assert r.max_fitting_len_low == 21_648  # fits even the low end of the band
    assert first["change"] == "model.max_model_len: 21648"


def test_near_the_edge_may_not_fit() -> None:
    # 3.02 GiB of KV +- 0.37 GiB: 24,704 tokens fit the middle of the band, not its low end
    inp = FitInputs(arch=arch(LLAMA_8B), max_model_len=24_000, gpu=find_gpu("L4"), gpu_memory_utilization=0.9)
    r = estimate(inp)
    assert r.fit == "may not fit" and not r.fits
    assert r.verdict == (
        "may not fit: one request at max_model_len 24,000 needs 2.93 GiB of KV cache; the estimate leaves "
        "3.02 GiB (between 2.64 GiB and 3.39 GiB); max_model_len 24,704 fits the middle of the band"
    )
    assert estimate(replace(inp, max_model_len=20_000)).fit == "fits"
    assert estimate(replace(inp, max_model_len=28_000)).fit == "does not fit"


def test_fp8_kv_halves_and_mla_is_not_split_by_tp() -> None:
    a = arch(LLAMA_8B)
    assert kv_per_token(a, 1, 1, 1) == (65_536, 0)
    ds = arch("deepseek-ai/DeepSeek-V3")
    assert ds.is_mla and ds.params == 671_026_404_352
    assert kv_per_token(ds, 2, 8, 1) == ((512 + 64) * 61 * 2, 0)  # 70,272 B on every rank


def test_sliding_window_layers_cap_at_the_window() -> None:
    g = arch("google/gemma-2-9b-it")
    assert (g.sliding_window, g.sliding_layers) == (4096, 21)
    full, sw = kv_per_token(g, 2, 1, 1)
    assert full == sw == 21 * 2 * 8 * 256 * 2
    inp = FitInputs(arch=g, max_model_len=8192, max_num_batched_tokens=2048, gpu=find_gpu("A100-80GB"))
    per_request = estimate(inp).per_request_bytes
    # full layers hold 8192 tokens, sliding layers min(4095 + 2048, 8192) -> 385 blocks + 1
    assert per_request == full * 8192 + sw * 385 * 16


def test_draft_model_costs_weights_and_kv() -> None:
    base = FitInputs(arch=arch(LLAMA_8B), max_model_len=8192, gpu=find_gpu("H100-80GB"))
    with_draft = replace(base, draft=arch("meta-llama/Llama-3.2-1B-Instruct"))
    r = estimate(with_draft)
    assert r.draft_weights_bytes == 1_235_814_400 * 2
    assert r.draft_kv_bytes_per_token == 16 * 2 * 8 * 64 * 2  # 32,768 B
    assert r.kv_tokens < estimate(base).kv_tokens


# ------------------------------------------------------------------ CPU (vLLM's exact arithmetic)


@pytest.mark.parametrize(
    ("space_gib", "max_len", "block", "kv_dtype", "tokens"),
    [
        (1, 1024, 128, "auto", 2_097_152),  # measured with vLLM 0.32.0 CPU: 2,097,152
        (1, 1024, 128, "fp8", 4_194_304),  # measured: 4,194,304
        (2, 1024, 128, "auto", 4_194_304),  # measured: 4,194,304
        (1, 512, 128, "auto", 2_097_152),  # measured: 2,097,152
        (1, 1000, 128, "auto", 2_048_000),  # measured: 2,048,000 (8 blocks per 1000-token request)
        (1, 1024, 32, "auto", 2_097_152),  # measured: 2,097,152
    ],
)
def test_cpu_kv_tokens_reproduce_vllm(space_gib: int, max_len: int, block: int, kv_dtype: str, tokens: int) -> None:
    tiny = fit_models.parse_config(TINY_CONFIG, "tiny", "test")
    inp = FitInputs(
        arch=tiny, max_model_len=max_len, block_size=block, kv_cache_dtype=kv_dtype, kv_budget_override=space_gib * GIB
    )
    assert estimate(inp).kv_tokens == tokens


TINY_CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "intermediate_size": 256,
    "vocab_size": 3072,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "dtype": "float32",
}


# ------------------------------------------------------------------ model facts


def test_unknown_model_error_is_whole_and_actionable() -> None:
    with pytest.raises(FitError) as info:
        resolve_model("acme/mystery-13b", None, online=False)
    assert str(info.value) == (
        "no architecture facts for 'acme/mystery-13b': memory planning needs its number of layers, hidden size, "
        "attention and KV heads, head dimension, vocabulary and intermediate size (config.json), and its "
        "parameter count. Provide them by pointing model.id (or quantization.checkpoint) at a local directory "
        "holding config.json (and *.safetensors), or use a model of the built-in catalog "
        "(vllmtune/modelfacts/model_catalog.json), or go online with huggingface_hub installed so that config.json is "
        "read from the Hub"
    )
    assert unknown_model_message("acme/mystery-13b") == str(info.value)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    sizes = {"F32": 4, "BF16": 2, "I32": 4, "F16": 2}
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * offset)


def test_safetensors_headers_give_params_and_bytes(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "a.safetensors", {"w": ("BF16", [4, 8]), "b": ("F32", [8])})
    write_safetensors(tmp_path / "b.safetensors", {"qweight": ("I32", [16, 2]), "scales": ("F16", [1, 16])})
    assert safetensors_params([tmp_path / "a.safetensors"]) == (40, 96)
    assert safetensors_params(sorted(tmp_path.glob("*.safetensors"))) == (40 + 32 + 16, 96 + 128 + 32)


def test_local_directory_uses_config_and_headers(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    write_safetensors(tmp_path / "model.safetensors", {"w": ("F32", [10, 10])})
    a = from_directory(tmp_path)
    assert (a.num_layers, a.num_kv_heads, a.head_dim) == (2, 2, 32)
    assert a.params == 100 and a.params_source == "safetensors headers (1 file(s))"
    derived = derived_params(replace(a, params=0))
    # 3072 x 128 x 2 + 2 x (128 x 256 + 128 x 128 + 3 x 128 x 256 + 2 x 128) + 128
    assert derived == 1_081_984


def test_local_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(FitError, match=r"has no config\.json: cannot read the architecture"):
        from_directory(tmp_path)


def test_names_normalise_to_the_catalog() -> None:
    assert normalise_name("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4") == "llama318b"
    assert normalise_name("neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8") == "llama3170b"
    assert arch("Qwen/Qwen2.5-7B-Instruct-AWQ").name == "Qwen/Qwen2.5-7B-Instruct"
    assert len(catalog_names()) >= 20


def test_catalog_params_match_published_counts() -> None:
    doc = json.loads((Path(fit_models.__file__).parent / "model_catalog.json").read_text())
    for entry in doc["models"]:
        a = arch(entry["id"])
        assert abs(a.params / entry["params_published"] - 1) < 0.01, entry["id"]


def test_hub_path_downloads_config_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    calls: list[tuple[str, str]] = []

    def hf_hub_download(repo: str, filename: str, revision: str | None = None) -> str:
        calls.append((repo, filename))
        return str(tmp_path / filename)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(fit_models, "import_module", lambda name: SimpleNamespace(hf_hub_download=hf_hub_download))
    a = resolve_model("acme/tiny", None, online=True)
    assert calls == [("acme/tiny", "config.json")]
    assert a.name == "acme/tiny" and a.num_layers == 2


def test_unknown_gpu_did_you_mean() -> None:
    with pytest.raises(FitError, match=r"unknown GPU 'H10-80GB'; did you mean H100-80GB\?"):
        find_gpu("H10-80GB")
    assert find_gpu("rtx4090").name == "RTX-4090"


# ------------------------------------------------------------------ profile level


PROFILE = """name: big
vllm:
  version: "{version}"
model:
  id: {model}
  max_model_len: {max_len}
resources:
  gpus: 1
"""


def write_profile(tmp_path: Path, model: str, max_len: int, version: str = "0.32.0") -> str:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(model=model, max_len=max_len, version=version))
    return str(path)


def test_fit_report_json_and_default_utilization(tmp_path: Path) -> None:
    report = fit_report(write_profile(tmp_path, LLAMA_8B, 8192), "H100-80GB", suggest=True)
    json.dumps(report)
    assert report["gpu_memory_utilization"] == 0.92  # vLLM 0.32.0's default
    assert report["per_gpu"]["kv_bytes_per_token"] == 131_072
    assert report["fits"] and report["verdict"].startswith("fits: ")
    old = fit_report(write_profile(tmp_path, LLAMA_8B, 8192, "0.11.1"), "H100-80GB", suggest=False)
    assert old["gpu_memory_utilization"] == 0.9 and "suggestions" not in old


def test_fit_report_needs_a_gpu_name_for_gpu_profiles(tmp_path: Path) -> None:
    with pytest.raises(FitError, match=r"name the GPU to plan for: --gpu NAME, one of H100-80GB"):
        fit_report(write_profile(tmp_path, LLAMA_8B, 8192), None, suggest=False)


def test_fit_problems_for_validate(tmp_path: Path) -> None:
    lp = load_profile(write_profile(tmp_path, LLAMA_8B, 131072))
    plan = build_plan(lp)
    [problem] = fit_problems(lp, plan, "L4")
    assert problem.startswith(f"{tmp_path}/p.yaml:6: model.max_model_len: does not fit: one request at max_model_len")
    assert fit_problems(lp, plan, "H100-80GB") == []
    assert fit_problems(lp, plan, None) == []  # no GPU named: cannot judge
    unknown = load_profile(write_profile(tmp_path, "acme/mystery-13b", 4096))
    assert fit_problems(unknown, build_plan(unknown), "L4") == []  # offline, unknown facts: silent


def test_cpu_draft_model_shares_the_kv_pool() -> None:
    tiny = fit_models.parse_config(TINY_CONFIG, "tiny", "test")
    draft_cfg = {**TINY_CONFIG, "num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 2}
    draft = fit_models.parse_config({**draft_cfg, "num_key_value_heads": 1}, "draft", "test")
    inp = FitInputs(arch=tiny, max_model_len=1024, block_size=128, kv_budget_override=GIB, draft=draft)
    r = estimate(inp)
    assert (r.kv_bytes_per_token, r.draft_kv_bytes_per_token) == (512, 128)
    assert r.kv_tokens == 1_677_696  # measured with vLLM 0.32.0 CPU: 1,677,696 (13,107 blocks of 640 B x 128)
