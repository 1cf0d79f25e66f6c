"""vllmtune.fit.estimate: bits per weight of group quantization, bytes per KV element."""

from __future__ import annotations

import pytest

from vllmtune.fit.estimate import AWQ_BITS, group_bits, kv_dtype_bytes


def test_group_bits_adds_an_fp16_scale_and_a_zero_point_per_group() -> None:
    assert group_bits(4, 128) == 4 + 20 / 128 == AWQ_BITS
    assert group_bits(4, 32) == 4.625
    assert group_bits(3, 64) == 3 + 19 / 64


def test_group_bits_without_groups_or_at_8_bits_is_the_bit_width() -> None:
    assert group_bits(4, None) == 4
    assert group_bits(4, 0) == 4  # group_size 0 / -1 in a config: per channel
    assert group_bits(8, 128) == 8


@pytest.mark.parametrize(
    ("dtype", "act_bytes", "expected"),
    [
        (None, 2, 2), ("auto", 2, 2), ("auto", 4, 4),  # the model's dtype
        ("fp8", 2, 1), ("fp8_e4m3", 2, 1), ("fp8_e5m2", 4, 1), ("int8", 2, 1),
        ("bfloat16", 4, 2), ("float16", 4, 2), ("half", 4, 2),
        ("float32", 2, 4), ("float", 2, 4),
        ("nvfp4", 2, 2),  # unknown to the estimate: the model's dtype (an upper bound)
    ],
)  # fmt: skip
def test_kv_dtype_bytes(dtype: str | None, act_bytes: int, expected: float) -> None:
    assert kv_dtype_bytes(dtype, act_bytes) == expected
