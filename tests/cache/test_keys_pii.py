"""Cache keys (property tests) and the PII detector."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vllmtune.cache.keys import cache_key, tenant_of
from vllmtune.cache.pii import find_pii, luhn_ok

SCALARS = st.one_of(st.integers(-1000, 1000), st.text(max_size=10), st.booleans(), st.none())
BODIES = st.fixed_dictionaries(
    {
        "model": st.text(min_size=1, max_size=8),
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": st.text(max_size=20)}),
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "temperature": st.floats(0, 2, allow_nan=False),
        "top_p": st.floats(0, 1, allow_nan=False),
        "max_tokens": st.integers(1, 100),
        "seed": st.integers(0, 10),
        "stop": st.lists(st.text(max_size=3)),
        "tools": st.lists(st.dictionaries(st.text(max_size=4), SCALARS, max_size=2), max_size=2),
    },
)


@given(BODIES)
def test_key_ignores_order_number_spelling_and_transport_fields(body: dict[str, Any]) -> None:
    k = cache_key("/v1/chat/completions", body, "t")
    reordered = dict(reversed(list(body.items())))
    assert cache_key("/v1/chat/completions", reordered, "t") == k
    floats = {**body, **({"max_tokens": float(body["max_tokens"])} if "max_tokens" in body else {})}
    assert cache_key("/v1/chat/completions", floats, "t") == k  # 16 == 16.0
    transport = {**body, "stream": True, "stream_options": {"include_usage": True}, "user": "u1", "cache": True}
    assert cache_key("/v1/chat/completions", transport, "t") == k


@given(
    BODIES,
    st.sampled_from(
        [
            "temperature",
            "top_p",
            "max_tokens",
            "seed",
            "model",
            "messages",
            "stop",
            "response_format",
            "logit_bias",
            "tool_choice",
        ]
    ),
)
def test_every_output_shaping_field_changes_the_key(body: dict[str, Any], field: str) -> None:
    changed = {**body, field: {"changed": [body.get(field)]}}
    assert cache_key("/v1/chat/completions", changed, "t") != cache_key("/v1/chat/completions", body, "t")


def test_tenants_and_endpoints_are_separate() -> None:
    body = {"model": "m", "prompt": "x", "temperature": 0}
    a, b = tenant_of("Bearer key-a"), tenant_of("Bearer key-b")
    assert a != b and tenant_of(None) == "anonymous" and "key-a" not in a
    assert cache_key("/v1/completions", body, a) != cache_key("/v1/completions", body, b)
    assert cache_key("/v1/completions", body, a) != cache_key("/v1/chat/completions", body, a)


def test_pii_detector() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    # a 16-digit run that fails Luhn is no card, but a long digit run is still not cached (phone)
    assert find_pii("number 4111 1111 1111 1112 here") == ["phone"]
    positives = {
        "write to diep.nguyen@example.com today": ["email"],
        "my card is 4111 1111 1111 1111": ["card"],
        "server at 192.168.10.4 is down": ["ip"],
        "ping fe80::1ff:fe23:4567:890a now": ["ip"],
        "call me at +44 20 7946 0958": ["phone"],
        "Hello Diep, your order shipped": ["name"],
        "Dear Mr Smith, thanks": ["name"],
        "Hi Anna, how are you": ["name"],
    }
    for text, kinds in positives.items():
        assert find_pii(text) == kinds, text
    negatives = [
        "Hello there, what is 2+2?",
        "The year 2024 had 365 days",
        "Summarise this policy document",
        "version 0.32.0 of vLLM",
        "hello world",
    ]
    for text in negatives:
        assert find_pii(text) == [], text
