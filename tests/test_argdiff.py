"""vLLM argument changes in words (issue 14: `+512 -1024` read as nothing)."""

from __future__ import annotations

from vllmtune.argdiff import describe, flag_values


def test_values_changes_additions_removals_and_booleans() -> None:
    old = ["--model", "m", "--max-num-batched-tokens", "1024", "--max-num-seqz", "8", "--no-enable-prefix-caching"]
    new = ["--model", "m", "--max-num-batched-tokens=512", "--max-num-seqs", "8", "--enable-prefix-caching"]
    assert describe(old, new) == [
        "max_num_batched_tokens: 1024 -> 512 (--max-num-batched-tokens)",
        "max_num_seqz: 8 -> (not set) (--max-num-seqz)",
        "enable_prefix_caching: off -> on (--enable-prefix-caching)",
        "max_num_seqs: (not set) -> 8 (--max-num-seqs)",
    ]
    assert describe(old[:4], new[:3], old_word="running", new_word="profile") == [
        "max_num_batched_tokens: running 1024, profile 512 (--max-num-batched-tokens)"
    ]


def test_order_only_and_repeated_flags() -> None:
    assert describe(["--a", "1", "--b"], ["--b", "--a", "1"]) == ["vLLM args: the same flags in a different order"]
    assert describe(["--a", "1", "--b"], ["--a", "1", "--b"]) == []
    assert flag_values(["serve", "m", "--mw", "x", "--mw", "y"]) == {
        "args": ("args", "serve m"),
        "--mw": ("--mw", "x y"),
    }


def test_up_says_a_changed_launch_flag_by_flag() -> None:
    from vllmtune.runtime.base import summary_changes

    old = {"image": "vllm/vllm-openai:v0.9.2", "args": ["--model", "m", "--max-num-batched-tokens", "1024"],
           "env": {}, "gpus": "0", "port": 8000}  # fmt: skip
    new = {**old, "image": "vllm/vllm-openai:v0.10.0", "env": {"A": "1"},
           "args": ["--model", "m", "--max-num-batched-tokens", "512", "--no-enable-prefix-caching"]}  # fmt: skip
    assert summary_changes(old, new) == [
        "image: vllm/vllm-openai:v0.9.2 -> vllm/vllm-openai:v0.10.0",
        "max_num_batched_tokens: 1024 -> 512 (--max-num-batched-tokens)",
        "enable_prefix_caching: (not set) -> off (--no-enable-prefix-caching)",  # as the new args spell it
        "environment changed",
    ]
    assert summary_changes(old, {**old, "args": ["--max-num-batched-tokens", "1024", "--model", "m"]}) == [
        "vLLM args: the same flags in a different order"
    ]
    assert summary_changes(old, dict(old)) == []
