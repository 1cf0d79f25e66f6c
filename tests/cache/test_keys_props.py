"""Property tests of the cache key (hypothesis) and of the PII detector's card / negative cases."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vllmtune.cache.keys import TRANSPORT_FIELDS, _normal, cache_key, canonical, tenant_of
from vllmtune.cache.pii import find_pii, find_pii_in, luhn_ok

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)


def _keyed(values: st.SearchStrategy[Any], size: int) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts whose keys are made distinct by their index (a unique-key filter would discard examples)."""
    return st.lists(st.tuples(st.text(max_size=6), values), max_size=size).map(
        lambda items: {f"{i}{k}": v for i, (k, v) in enumerate(items)}
    )


# JSON two levels deep, built explicitly: st.recursive marks examples over its leaf limit invalid
_LEVEL1 = SCALARS | st.lists(SCALARS, max_size=4) | _keyed(SCALARS, 4)
JSON = _LEVEL1 | st.lists(_LEVEL1, max_size=3) | _keyed(_LEVEL1, 3)
OUTPUT_SHAPING = [
    "model",
    "messages",
    "prompt",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logprobs",
    "top_logprobs",
    "n",
    "best_of",
    "echo",
    "suffix",
    "guided_json",
    "chat_template_kwargs",
    "some_future_vllm_param",
]
BODIES = st.builds(
    lambda base, extra: {**base, **extra},
    st.fixed_dictionaries(
        {
            "model": st.text(min_size=1, max_size=8),
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "system", "assistant"]), "content": st.text(max_size=20)}
                ),
                min_size=1,
                max_size=3,
            ),
        }
    ),
    # distinct field names by construction: the first few of a permutation
    st.tuples(st.permutations(OUTPUT_SHAPING[2:]), st.lists(JSON, max_size=3)).map(
        lambda t: dict(zip(t[0], t[1], strict=False))
    ),
)


def floaty(v: Any) -> Any:
    """The same value with every integral number spelled as a float (1 -> 1.0), dicts reordered."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return float(v) if abs(v) < 2**53 else v
    if isinstance(v, float):
        return v
    if isinstance(v, list):
        return [floaty(x) for x in v]
    items = [(k, floaty(x)) for k, x in v.items()]
    random.Random(len(items)).shuffle(items)
    return dict(reversed(items))


@given(BODIES)
def test_key_ignores_key_order_and_number_spelling(body: dict[str, Any]) -> None:
    k = cache_key("/v1/chat/completions", body, "t")
    assert cache_key("/v1/chat/completions", floaty(body), "t") == k
    assert cache_key("/v1/chat/completions", json.loads(json.dumps(body)), "t") == k
    assert canonical({"a": 0, "b": [1.0, {"c": -0.0}]}) == canonical({"b": [1, {"c": 0}], "a": 0.0})


# 1-4 distinct transport fields by construction (a permutation's first few)
TRANSPORT = st.tuples(st.permutations(sorted(TRANSPORT_FIELDS)), st.lists(JSON, min_size=1, max_size=4)).map(
    lambda t: dict(zip(t[0], t[1], strict=False))
)


@given(BODIES, TRANSPORT)
def test_transport_fields_do_not_change_the_key(body: dict[str, Any], transport: dict[str, Any]) -> None:
    assert cache_key("/v1/chat/completions", {**body, **transport}, "t") == cache_key("/v1/chat/completions", body, "t")


# Fields built, not filtered (no example is discarded): an output-shaping name, or any text made
# distinct from the transport fields by a first character none of them starts with.
FIELDS = st.sampled_from(OUTPUT_SHAPING) | st.text(max_size=9).map(lambda s: "~" + s)


@settings(max_examples=150)
@given(BODIES, FIELDS, JSON)
def test_any_output_shaping_field_changes_the_key(body: dict[str, Any], field: str, value: Any) -> None:
    assert field not in TRANSPORT_FIELDS
    if field in body and _normal(body[field]) == _normal(value):  # the same value: then the body lacks it
        body = {k: v for k, v in body.items() if k != field}
    assert cache_key("/v1/chat/completions", {**body, field: value}, "t") != cache_key(
        "/v1/chat/completions", body, "t"
    )


KEYS = st.from_regex(r"sk-[A-Za-z0-9]{8,24}", fullmatch=True)


# two distinct keys, by construction: the second one is changed when both draws agree
KEY_PAIRS = st.tuples(KEYS, KEYS).map(lambda ab: (ab[0], ab[1] + "Z" if ab[1] == ab[0] else ab[1]))


@given(BODIES, KEY_PAIRS)
def test_tenants_never_share_a_key_and_the_credential_is_not_in_it(body: dict[str, Any], pair: tuple[str, str]) -> None:
    a, b = pair
    assert a != b
    ta, tb = tenant_of(f"Bearer {a}"), tenant_of(f"Bearer {b}")
    assert ta != tb and ta != "anonymous"
    ka, kb = cache_key("/v1/chat/completions", body, ta), cache_key("/v1/chat/completions", body, tb)
    assert ka != kb and a not in ka and a not in ta
    assert cache_key("/v1/completions", body, ta) != ka  # the endpoint is part of the key


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError


@given(st.text(alphabet="0123456789", min_size=12, max_size=18), st.sampled_from(["", " ", "-"]))
def test_luhn_valid_card_numbers_are_found_in_any_grouping(prefix: str, sep: str) -> None:
    number = luhn_complete(prefix)
    grouped = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    assert "card" in find_pii(f"pay with {grouped} please")
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not luhn_ok(broken) and "card" not in find_pii(f"pay with {broken} please")


def test_pii_positive_and_negative_cases() -> None:
    positives = {
        "Hello Diep, your order shipped": "name",
        "Hi Anna, how are you": "name",
        "Dear Mr Smith, thanks": "name",
        "Dear Mrs. O'Brien": "name",
        "Good morning Dr. Lee": "name",
        "Thanks, Maria!": "name",
        "mail me: anna.k+test@mail.example.co.uk": "email",
        "card 4111-1111-1111-1111": "card",
        "call +1 (555) 123-4567.": "phone",
        "my number is 06 12 34 56 78": "phone",
        "server 10.0.0.254 is down": "ip",
        "IPv6 2001:db8:85a3::8a2e:370:7334": "ip",
        "loopback ::1": "ip",
    }
    for text, kind in positives.items():
        assert kind in find_pii(text), text
    negatives = [
        "Hello there, what is 2+2?",
        "Hi all, summarise this",
        "Dear team, see below",
        "Hello World in C",
        "hello world",
        "The year 2024 had 365 days",
        "Meet on 2024-01-15 at 10:30:00",
        "version 0.32.0 of vLLM",
        "pi is 3.14159265358979",
        "price 1,299.99 USD",
        "x = arr[1:2:3]",
        "ratio 16:9",
        "Summarise this policy",
        "4111 1111 1111 1112 is not a card",  # fails Luhn: not a card (still a long number: see below)
    ]
    for text in negatives[:-1]:
        assert find_pii(text) == [], text
    assert "card" not in find_pii(negatives[-1])
    # every string of a request is checked, each on its own
    assert find_pii_in({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "Hi Anna"}]})
    assert not find_pii_in({"messages": [{"role": "user", "content": "Hello"}, {"content": "Diep"}]})
