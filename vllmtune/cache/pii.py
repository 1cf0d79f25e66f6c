"""A conservative PII detector: when in doubt, do not cache.

What counts as PII (each kind is one name in the result of :func:`find_pii`):

- ``email``: ``local@domain.tld``.
- ``card``: 13-19 digits, optionally grouped by spaces or dashes, passing the Luhn check.
- ``phone``: a number written the way phone numbers are written, not any long number (order ids,
  invoice numbers, timestamps, amounts and ISBNs are everywhere in prompts, and a false positive
  makes a request uncacheable): international ``+country`` numbers (``+84 912 345 678``,
  ``+44 20 7946 0958``, ``+14155552671``), North American ``(555) 123-4567`` / ``555-123-4567`` /
  ``555.123.4567``, national numbers with their trunk ``0`` (``0912 345 678``, ``020 7946 0958``,
  ``07700 900123``, ``06 12 34 56 78``, ``0912345678``), and any 7-15 digit number right after a
  word that announces one (phone, tel, call, mobile, cell, fax, WhatsApp, SMS, text me).
  ISO dates (``2024-01-15``) and times are not phones. Four groups of four digits that fail
  Luhn (a mistyped card) are still reported as ``phone``. ``benchmarks/pii_phone.py`` measures
  the false-positive and false-negative rates on ``tests/cache/data/pii_phone_prompts.json``.
- ``ip``: IPv4 (every octet <= 255) and IPv6 (validated by :mod:`ipaddress`, ``::1`` included).
- ``name``: a capitalised word after a greeting or salutation: "Hello Diep", "Hi Anna,",
  "Dear Mr Smith", "Good morning Dr. Lee", "Thanks, Maria". Generic addressees ("Hello
  there", "Hi all", "Dear team", "Hello World") are not names.

The proxy applies it to every string of the request (messages, prompt, tools, ...) and of
the answer (content, tool-call arguments, ...). It errs on the side of finding PII: a false
positive only costs a cache miss (X-Cache: BYPASS), a false negative could serve one user's
personal data to... the same user again, but also keeps it at rest in the cache.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

DIGIT = re.compile(r"\d")
NON_DIGITS = re.compile(r"\D")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Each alternative is one way people write a phone number; a bare digit run is none of them.
PHONE = re.compile(
    r"(?<![\w+.,/-])(?:"
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}"  # +84 912 345 678, +1 (555) 123-4567, +14155552671
    r"|(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}"  # (555) 123-4567, 555-123-4567, 555.123.4567
    r"|0\d{1,4}[ .-]\d{3,4}[ .-]\d{3,4}"  # 0912 345 678, 020 7946 0958
    r"|0\d{3,4}[ .-]\d{6,7}"  # 07700 900123
    r"|0\d(?:[ .]\d{2}){4}"  # 06 12 34 56 78
    r"|0[1-9]\d{8,9}"  # 0912345678 (a leading-zero run: a mobile number written together)
    r")(?![\w.,/-]?\d)(?!\w)"
)
# A word that announces a phone number, then any 7-15 digit number with separators.
PHONE_CUE = re.compile(
    r"\b(?:phone|tel|telephone|call|mobile|cell|fax|whatsapp|sms|text me)\b\W{0,4}(?:[a-z]+\W{1,3}){0,2}"
    r"(\+?\(?\d[\d ().-]{5,20}\d)",
    re.I,
)
CARD_GROUPS = re.compile(r"(?<![\d.])\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?!\d)")
DATE_OR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
CARD = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?!\d)")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?![\w:])")
GREETING = re.compile(
    r"\b(?:hello|hi|hey|hiya|dear|greetings|welcome|good (?:morning|afternoon|evening|day)|thanks|thank you)"
    r",?\s+(?:(?:mr|mrs|ms|mx|miss|dr|prof|sir|madam)\.?\s+)?([^\W\d_][\w'-]*)",
    re.I,
)
NOT_NAMES = frozenset(
    """there all everyone everybody team world folks guys friends people sir madam again so for you and the
    i we it this that these assistant model chatgpt claude bot ai human user customer customers colleagues
    y'all yall back a an to in on from""".split()
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return NON_DIGITS.sub("", s)


def _has_phone(text: str) -> bool:
    for m in PHONE.finditer(text):
        s = m.group(0)
        if not DATE_OR_TIME.fullmatch(s.strip()) and 7 <= len(_digits(s)) <= 15:
            return True
    for m in PHONE_CUE.finditer(text):
        s = m.group(1)
        if not DATE_OR_TIME.fullmatch(s.strip()) and 7 <= len(_digits(s)) <= 15:
            return True
    return False


def find_pii(text: str) -> list[str]:
    """Kinds of PII found in ``text``, in a fixed order (empty: none found)."""
    if not text:
        return []
    kinds: list[str] = []
    if "@" in text and EMAIL.search(text):
        kinds.append("email")
    has_digit = DIGIT.search(text) is not None
    long_runs = False
    if has_digit:
        for m in CARD.finditer(text):
            digits = _digits(m.group(0))
            if 13 <= len(digits) <= 19:
                if luhn_ok(digits):
                    kinds.append("card")
                    break
                long_runs = long_runs or CARD_GROUPS.fullmatch(m.group(0).strip()) is not None
        for m in IPV4.finditer(text):
            if all(int(p) <= 255 for p in m.group(0).split(".")):
                kinds.append("ip")
                break
    if "ip" not in kinds and text.count(":") >= 2:
        for m in IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group(0))
            except ValueError:
                continue
            kinds.append("ip")
            break
    if has_digit and "card" not in kinds and (long_runs or _has_phone(IPV4.sub(" ", text) if "ip" in kinds else text)):
        kinds.append("phone")
    for m in GREETING.finditer(text):
        word = m.group(1)
        if word[0].isupper() and word.lower() not in NOT_NAMES:
            kinds.append("name")
            break
    return kinds


def strings(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string in a JSON value (dict keys in ``skip`` left out at the top level)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def find_pii_in(value: Any, skip: frozenset[str] = frozenset()) -> list[str]:
    """Kinds of PII in any string of a JSON value (each string checked on its own, so that a
    greeting and a name in different messages do not combine)."""
    found: list[str] = []
    for s in strings(value, skip):
        for kind in find_pii(s):
            if kind not in found:
                found.append(kind)
    return found
