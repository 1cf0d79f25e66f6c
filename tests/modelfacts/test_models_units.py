"""vllmtune.modelfacts.models.name_quant_hint: the quantization a checkpoint's name says."""

from __future__ import annotations

import pytest

from vllmtune.modelfacts.models import name_quant_hint


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", ("awq", 4.0)),
        ("TheBloke/Llama-2-7B-GPTQ", ("gptq", 4.0)),
        ("unsloth/llama-3-8b-bnb-4bit", ("bitsandbytes", 4.0)),
        ("org/model-nf4", ("bitsandbytes", 4.0)),
        ("neuralmagic/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", ("compressed-tensors", 4.0)),
        ("neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8", ("fp8", 8.0)),
        ("RedHatAI/Llama-3.1-8B-Instruct-quantized.w8a8", ("compressed-tensors", 8.0)),
        ("org/model_int8", ("compressed-tensors", 8.0)),
        ("meta-llama/Llama-3.1-8B-Instruct", None),
        ("org/awqward-model", None),  # whole words only
    ],
)
def test_name_quant_hint(name: str, hint: tuple[str, float] | None) -> None:
    assert name_quant_hint(name) == hint
