"""Profiles for the tune tests: a CPU profile (fit cannot judge it, so only the profile checks
prune) and a GPU one on an L4 (fit prunes what does not fit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import load_profile

CPU = """name: tune-cpu
vllm: {{version: "0.32.0"}}
model: {{id: {model}, served_name: tiny, max_model_len: 4096}}
resources: {{gpus: 0}}
batching: {{max_num_seqs: 2, chunked_prefill: false, max_num_batched_tokens: 4096}}
speculative: {{method: ngram, num_tokens: 3, prompt_lookup_max: 4}}
"""
GPU = """name: tune-gpu
vllm: {version: "0.32.0"}
model: {id: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 8192}
resources: {gpus: 1, gpu_type: L4, gpu_memory_utilization: 0.9}
"""


@pytest.fixture
def cpu_profile(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    path = tmp_path / "p.yaml"
    path.write_text(CPU.format(model=tmp_path / "model"))
    return path


@pytest.fixture
def cpu(cpu_profile: Path) -> LoadedProfile:
    return load_profile(cpu_profile)


@pytest.fixture
def gpu(tmp_path: Path) -> LoadedProfile:
    path = tmp_path / "g.yaml"
    path.write_text(GPU)
    return load_profile(path)
