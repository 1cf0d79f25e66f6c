"""PII in an answer is found on the assembled text, however the stream splits it (issue 13 item 3)."""

from __future__ import annotations

import pytest

from tests.cache.test_proxy_shapes import CHAT, post, proxied, run
from tests.support.upstream import Upstream
from vllmtune.cache.pii import find_pii

SPLITS = {
    "name, a word per frame": "Hello Diep, I see you live in Hanoi".replace(" ", "\0 ").split("\0"),
    "e-mail split inside": ["Write to d", "iep.ng", "@exam", "ple.c", "om today"],
    "phone split inside": ["Call +44 20 ", "7946 ", "0958 now"],
    "card split inside": ["Card 4111 11", "11 1111 1", "111 on file"],
    "ip split inside": ["The host is 192.16", "8.10.", "7 here"],
}


@pytest.mark.parametrize("case", list(SPLITS))
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "full"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_split_pii_in_answer_is_not_cached(case: str, stream: bool, path: str) -> None:
    tokens = SPLITS[case]
    assert not any(find_pii(t) for t in tokens) and find_pii("".join(tokens))  # no frame has it alone

    async def go() -> None:
        up = Upstream(tokens=tokens)
        body = (
            {**CHAT, "stream": stream}
            if path.endswith("chat/completions")
            else {"model": "m", "prompt": "Say hi", "temperature": 0, "stream": stream}
        )
        async with proxied(up) as (proxy, port):
            got = [await post(port, body, path) for _ in range(2)]
            assert [(s, h["x-cache"]) for s, h, _ in got] == [(200, "MISS"), (200, "MISS")]
            assert up.calls == 2
            assert proxy.stats()["bypass"] == {"pii_response": 2}

    run(go())


def test_clean_split_answer_is_cached() -> None:
    """Control: the same split, without PII, is cached (the check above is not a blanket refusal)."""

    async def go() -> None:
        up = Upstream(tokens="Prefix caching reuses the KV of a shared prompt prefix".replace(" ", "\0 ").split("\0"))
        async with proxied(up) as (_proxy, port):
            got = [await post(port, {**CHAT, "stream": True}) for _ in range(2)]
            assert [h["x-cache"] for _, h, _ in got] == ["MISS", "HIT"]
            assert up.calls == 1

    run(go())
