"""A conservative PII detector: when in doubt, do not cache.

Detects e-mail addresses, phone numbers (7+ digits with common separators, optional +country
code), payment card numbers (13-19 digits passing the Luhn check), IPv4 and IPv6 addresses,
and personal names after greetings ("Hello Diep", "Hi Anna,", "Dear Mr Smith"). It errs on
the side of finding PII: a false positive only costs a cache miss, a false negative leaks.
"""

from __future__ import annotations

import ipaddress
import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?![\w.])")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?![\w:])")
GREETING = re.compile(
    r"\b(?:hello|hi|hey|dear|good (?:morning|afternoon|evening)|thanks|thank you),?\s+"
    r"(?:(?:mr|mrs|ms|miss|dr|prof)\.?\s+)?([A-Z][a-z\u00C0-\u024F'-]+)",
    re.I,
)
NOT_NAMES = frozenset(
    {
        "there",
        "all",
        "everyone",
        "team",
        "world",
        "folks",
        "guys",
        "sir",
        "madam",
        "again",
        "so",
        "for",
        "you",
        "and",
        "the",
        "i",
        "we",
        "it",
        "this",
        "that",
        "assistant",
        "model",
    }
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def find_pii(text: str) -> list[str]:
    """Kinds of PII found in ``text`` (empty: none found)."""
    if not text:
        return []
    kinds = []
    if "@" in text and EMAIL.search(text):
        kinds.append("email")
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            kinds.append("card")
            break
    for m in IPV4.finditer(text):
        if all(int(p) <= 255 for p in m.group(0).split(".")):
            kinds.append("ip")
            break
    else:
        for m in IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group(0))
            except ValueError:
                continue
            kinds.append("ip")
            break
    for m in PHONE.finditer(text):
        if sum(c.isdigit() for c in m.group(0)) >= 7 and "card" not in kinds:
            kinds.append("phone")
            break
    for m in GREETING.finditer(text):
        word = m.group(1)
        if word[0].isupper() and word.lower() not in NOT_NAMES:
            kinds.append("name")
            break
    return kinds
