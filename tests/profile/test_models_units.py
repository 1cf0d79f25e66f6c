"""profile.models' section classes called directly: each one's defaults dumped whole, what a
minimal profile gets, an unknown key refused with its whole located message, one constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.profiles import MINIMAL, profile_errors
from vllmtune.profile.loader import load_profile
from vllmtune.profile.models import (
    BatchingSection,
    LoraAdapter,
    LoraSection,
    ModelSection,
    PromptCacheSection,
    QuantizationSection,
    QuantizeRecipe,
    ResourcesSection,
    VllmSection,
)

ADAPTER = {"name": "sql-lora", "source": "yard1/llama-2-7b-sql-lora-test"}

DEFAULTS: list[tuple[type[BaseModel], dict[str, Any], dict[str, Any]]] = [
    (VllmSection, {"version": "0.32.0"}, {"version": "0.32.0", "image": "vllm/vllm-openai"}),
    (
        ModelSection,
        {"id": "org/m"},
        {
            "id": "org/m",
            "revision": None,
            "served_name": None,
            "max_model_len": None,
            "dtype": None,
            "trust_remote_code": None,
            "tokenizer": None,
        },
    ),
    (
        PromptCacheSection,
        {},
        {
            "enabled": False,
            "backend": "memory",
            "redis_url": None,
            "ttl": "24h",
            "max_temperature": 0.1,
            "skip_pii": True,
            "port": 8080,
            "image": "vllmtune/cache-proxy",
        },
    ),
    (BatchingSection, {}, {"max_num_batched_tokens": None, "max_num_seqs": None, "chunked_prefill": None}),
    (
        QuantizeRecipe,
        {},
        {
            "scheme": "W4A16",
            "algorithm": "awq",
            "calibration_dataset": "HuggingFaceH4/ultrachat_200k",
            "calibration_split": "train_sft",
            "calibration_samples": 512,
            "max_seq_length": 2048,
            "ignore": ["lm_head"],
            "llmcompressor": "llmcompressor==0.14.0.1",
            "image": None,
            "gpus": 1,
        },
    ),
    (QuantizationSection, {}, {"method": None, "checkpoint": None, "kv_cache_dtype": None, "recipe": None}),
    (LoraAdapter, ADAPTER, ADAPTER),
    (
        LoraSection,
        {"adapters": [LoraAdapter(**ADAPTER)]},
        {
            "adapters": [ADAPTER],
            "max_loras": None,
            "max_lora_rank": None,
            "max_cpu_loras": None,
            "runtime_updates": False,
        },
    ),
    (
        ResourcesSection,
        {},
        {
            "gpus": 1,
            "gpu_type": None,
            "gpu_memory": None,
            "gpu_memory_utilization": None,
            "tensor_parallel_size": 1,
            "pipeline_parallel_size": 1,
            "nodes": 1,
            "shm_size": None,
        },
    ),
]


@pytest.mark.parametrize(("cls", "given", "dumped"), DEFAULTS, ids=[c.__name__ for c, _, _ in DEFAULTS])
def test_defaults_dumped_whole(cls: type[BaseModel], given: dict[str, Any], dumped: dict[str, Any]) -> None:
    assert cls(**given).model_dump() == dumped


def test_a_minimal_profile_gets_each_sections_defaults(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL)
    p = load_profile(path).profile
    assert p.vllm == VllmSection(version="0.32.0")
    assert p.model == ModelSection(id="meta-llama/Llama-3.1-8B-Instruct")
    assert (p.prompt_cache, p.batching, p.quantization, p.resources) == (
        PromptCacheSection(),
        BatchingSection(),
        QuantizationSection(),
        ResourcesSection(),
    )
    assert p.lora is None


ONE_ADAPTER = "lora:\n  adapters:\n    - name: sql-lora\n      source: yard1/llama-2-7b-sql-lora-test\n"

REFUSED = {
    "VllmSection unknown key": (
        "name: my-llm\nvllm:\n  version: '0.32.0'\n  imagee: x\nmodel:\n  id: m\n",
        "p.yaml:4: vllm.imagee: unknown key; did you mean 'image'?",
    ),
    "VllmSection image is a lowercase repository": (
        "name: my-llm\nvllm:\n  version: '0.32.0'\n  image: Vllm/Openai\nmodel:\n  id: m\n",
        'p.yaml:4: vllm.image: "Vllm/Openai" is not valid (must match ^[a-z0-9]+([._/:-][a-z0-9]+)*$)',
    ),
    "ModelSection unknown key": (
        MINIMAL + "  revison: main\n",
        "p.yaml:6: model.revison: unknown key; did you mean 'revision'?",
    ),
    "ModelSection id is no flag": (
        "name: my-llm\nvllm:\n  version: '0.32.0'\nmodel:\n  id: --help\n",
        "p.yaml:5: model.id: '--help' starts with '-', which vLLM would read as a flag",
    ),
    "PromptCacheSection unknown key": (
        MINIMAL + "prompt_cache:\n  enabled: true\n  tll: 1h\n",
        "p.yaml:8: prompt_cache.tll: unknown key; did you mean 'ttl'?",
    ),
    "PromptCacheSection ttl is a duration": (
        MINIMAL + "prompt_cache:\n  ttl: 1w\n",
        'p.yaml:7: prompt_cache.ttl: "1w" is not valid (a duration like 30s, 15m, 24h or 7d)',
    ),
    "BatchingSection unknown key": (
        MINIMAL + "batching:\n  max_num_seq: 8\n",
        "p.yaml:7: batching.max_num_seq: unknown key; did you mean 'max_num_seqs'?",
    ),
    "BatchingSection max_num_seqs is positive": (
        MINIMAL + "batching:\n  max_num_seqs: 0\n",
        "p.yaml:7: batching.max_num_seqs: Input should be greater than 0 (got 0)",
    ),
    "QuantizeRecipe unknown key": (
        MINIMAL + "quantization:\n  recipe:\n    schem: W8A8\n",
        "p.yaml:8: quantization.recipe.schem: unknown key; did you mean 'scheme'?",
    ),
    "QuantizeRecipe scheme is one llm-compressor has": (
        MINIMAL + "quantization:\n  recipe:\n    scheme: W3A16\n",
        'p.yaml:8: quantization.recipe.scheme: "W3A16" is not allowed; input should be '
        "'W4A16', 'W4A16_ASYM', 'W8A16', 'W8A8', 'FP8' or 'FP8_DYNAMIC'",
    ),
    "QuantizationSection unknown key": (
        MINIMAL + "quantization:\n  methd: awq\n",
        "p.yaml:7: quantization.methd: unknown key; did you mean 'method'?",
    ),
    "QuantizationSection checkpoint is no flag": (
        MINIMAL + "quantization:\n  checkpoint: -x\n",
        "p.yaml:7: quantization.checkpoint: '-x' starts with '-', which vLLM would read as a flag",
    ),
    # an item of a list: the did-you-mean reads the item's model (it listed no keys at all)
    "LoraAdapter unknown key": (
        MINIMAL + ONE_ADAPTER + "      sourc: t\n",
        "p.yaml:10: lora.adapters[0].sourc: unknown key; did you mean 'source'?",
    ),
    # the words come from the pattern: an adapter's name is no Kubernetes name
    "LoraAdapter name pattern": (
        MINIMAL + "lora:\n  adapters:\n    - name: -a\n      source: s\n",
        'p.yaml:8: lora.adapters[0].name: "-a" is not valid (must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$)',
    ),
    "LoraSection unknown key": (
        MINIMAL + ONE_ADAPTER + "  max_lora: 2\n",
        "p.yaml:10: lora.max_lora: unknown key; did you mean 'max_loras'?",
    ),
    "LoraSection needs an adapter": (
        MINIMAL + "lora:\n  adapters: []\n",
        "p.yaml:7: lora.adapters: no adapter to serve: list at least one, or set lora.runtime_updates: true to load "
        "them at run time",
    ),
    "ResourcesSection unknown key": (
        MINIMAL + "resources:\n  gpu: 2\n",
        "p.yaml:7: resources.gpu: unknown key; did you mean 'gpus'?",
    ),
    "ResourcesSection at most 64 nodes": (
        MINIMAL + "resources:\n  nodes: 65\n",
        "p.yaml:7: resources.nodes: Input should be less than or equal to 64 (got 65)",
    ),
}


@pytest.mark.parametrize(("text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_with_the_whole_located_message(tmp_path: Path, text: str, message: str) -> None:
    assert profile_errors(tmp_path, text) == message


def test_a_lora_adapter_name_may_use_what_kubernetes_names_may_not(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL + "lora:\n  adapters:\n    - name: SQL_lora.v2\n      source: s\n")
    lora = load_profile(path).profile.lora
    assert lora == LoraSection(adapters=[LoraAdapter(name="SQL_lora.v2", source="s")])
