"""presets' public names called directly: preset_rows, one row per built-in preset (what
`vllmtune presets` prints): its description, the levers its plan turns on, how to use it."""

from __future__ import annotations

from vllmtune.presets import preset_rows


def _use(name: str) -> str:
    return f"vllmtune init NAME --preset {name}, or preset:{name} wherever a profile goes"


def test_preset_rows() -> None:
    assert preset_rows() == [
        {
            "name": "all-levers",
            "description": "Every lever on - prompt cache, prefix caching, batching budget, AWQ, speculative decoding.",
            "levers_on": ["prompt-cache", "prefix-caching", "batching", "quantization", "speculative-decoding"],
            "use": _use("all-levers"),
        },
        {
            "name": "awq",
            "description": "Prompt cache + prefix caching + AWQ 4-bit weights.",
            "levers_on": ["prompt-cache", "prefix-caching", "quantization"],
            "use": _use("awq"),
        },
        {
            "name": "baseline",
            "description": "Llama-3.1-8B-Instruct, BF16, one GPU, every lever off (the row everything is compared to).",
            "levers_on": [],
            "use": _use("baseline"),
        },
        {
            "name": "cpu-tiny",
            "description": "Tiny local Llama on vLLM's CPU build (tests, laptops, CI).",
            "levers_on": ["prefix-caching"],
            "use": _use("cpu-tiny"),
        },
        {
            "name": "prefix-cache",
            "description": "Baseline + prompt-result cache + KV prefix caching.",
            "levers_on": ["prompt-cache", "prefix-caching"],
            "use": _use("prefix-cache"),
        },
        {
            "name": "speculative",
            "description": "AWQ + prefix caching + prompt cache + speculative decoding with Llama-3.2-1B.",
            "levers_on": ["prompt-cache", "prefix-caching", "quantization", "speculative-decoding"],
            "use": _use("speculative"),
        },
    ]
