from __future__ import annotations

import pytest

from vllmtune.util.paths import looks_local


@pytest.mark.parametrize("ident", ["/models/llama", "./ckpt", "../ckpt", "~/models/x", ".", ".."])
def test_local_spellings(ident: str) -> None:
    assert looks_local(ident) is True


@pytest.mark.parametrize(
    "ident", ["meta-llama/Llama-3.1-8B-Instruct", "gpt2", "", "~", "~user/x", ".hidden", "..x", "models/x"]
)
def test_hub_ids_and_other_spellings_are_not_local(ident: str) -> None:
    assert looks_local(ident) is False
