"""The phone rule of the PII filter on a fixed, realistic prompt set: requests with ids and
numbers stay cacheable (false positives < 2%), no phone number is missed (0 false negatives).
The same figures are printed by benchmarks/pii_phone.py."""

from __future__ import annotations

import json

import pytest

from benchmarks.pii_phone import DATA, rates
from vllmtune.cache.pii import find_pii

SET = json.loads(DATA.read_text(encoding="utf-8"))


def test_the_set_is_realistic_and_fixed() -> None:
    assert len(SET["no_phone"]) == 108 and len(SET["phone"]) == 25
    assert len(set(SET["no_phone"])) == 108 and len(set(SET["phone"])) == 25


def test_false_positive_and_negative_rates_on_the_set() -> None:
    fp, fn, fps, fns = rates(find_pii)
    assert fns == []
    # the one false positive left: four 4-digit years read as a mistyped card (4 groups of 4 digits)
    assert fps == ["The fiscal years 2019 2020 2021 2022 all had losses; explain why."]
    assert fp < 0.02 and fn == 0


@pytest.mark.parametrize(
    "text",
    [
        "+84 912 345 678",
        "(555) 123-4567",
        "555-123-4567",
        "+44 20 7946 0958",
        "0912 345 678",
        "0912345678",
        "+14155552671",
        "+1 (555) 123-4567",
        "555.123.4567",
        "06 12 34 56 78",
        "07700 900123",
        "call 555 1234",
        "my cell is 917 555 0199",
    ],
)
def test_phone_formats_are_found(text: str) -> None:
    assert find_pii(f"reach me on {text} today") == ["phone"]


@pytest.mark.parametrize(
    "text",
    [
        "order 123456789",
        "invoice 4500012345",
        "in 2023 and 2024",
        "ISBN 978-3-16-148410-0",
        "ISBN 9780306406157",
        "epoch 1700000000",
        "epoch ms 1700000000123",
        "$1,234,567.89",
        "vLLM 0.32.0",
        "build 20241015123",
        "date 2024-01-15",
        "at 14:30:00",
        "account 000123456789",
        "UUID 123e4567-e89b-12d3-a456-426614174000",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert find_pii(f"please check {text} again") == []


def test_a_card_shaped_number_failing_luhn_is_still_personal() -> None:
    assert find_pii("number 4111 1111 1111 1112 here") == ["phone"]
    assert find_pii("number 4111111111111112 here") == []  # an unbroken run is an id, not a card
