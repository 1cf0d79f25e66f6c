"""GPU memory sizes as users write them (``--gpu-memory``, ``resources.gpu_memory``)."""

from __future__ import annotations

import pytest

from vllmtune.modelfacts.sizes import HINT, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("24GiB", 24 * 2**30),
        ("23.58GiB", int(23.58 * 2**30)),
        ("23.58 gib", int(23.58 * 2**30)),
        ("80GB", 80 * 10**9),
        ("24576MiB", 24 * 2**30),
        ("1TiB", 2**40),
    ],
)
def test_sizes_parse_exactly(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("24", "'24' is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB); "),
        ("24 gigs", "'24 gigs' is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB); "),
        ("-3GiB", "'-3GiB' is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB); "),
        ("512MiB", "'512MiB' is less than 1 GiB: not the memory of a GPU (a unit missing?); "),
        ("24TB", "'24TB' is more than 4 TiB: not the memory of one GPU; "),
    ],
)
def test_bad_sizes_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert str(info.value) == message + HINT
    assert HINT == (
        "write the memory torch reports (nvidia-smi's total is slightly larger), e.g. 23.58GiB, 80GB, 24576MiB"
    )
