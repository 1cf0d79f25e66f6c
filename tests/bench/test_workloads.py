"""The built-in workloads against the built-in presets: the defaults must work together."""

from __future__ import annotations

import pytest

from vllmtune.bench import workloads
from vllmtune.profile.loader import load_profile

# Characters per token of the tiny model's byte-level BPE (scripts/make_tiny_model.py), measured
# on these workloads with its tokenizer and chat template: 2.9 (shared-prefix 1,482 tokens, random
# 2,623 tokens at most with max_tokens). 2.5 leaves a margin for the chat template and a worse split.
CHARS_PER_TOKEN = 2.5


@pytest.mark.parametrize("name", workloads.BUILTIN)
def test_bench_default_workloads_fit_cpu_tiny(name: str) -> None:
    max_len = load_profile("preset:cpu-tiny").profile.model.max_model_len
    cases = workloads.build(name, 100, 0)  # bench's defaults: -n 100, --seed 0
    longest = max(sum(len(c) for _, c in case.messages) / CHARS_PER_TOKEN + case.max_tokens for case in cases)
    assert max_len is not None and longest <= max_len, (name, longest, max_len)
