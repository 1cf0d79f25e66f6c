"""bench.headers: the session header's name and values against RFC 9110, checked by hypothesis
over hostile alphabets against regexes written here straight from the RFC's ABNF (not from the
module's own code), and the whole messages of each refusal; CLIENT_HEADERS, header_line."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support.hypothesis_profiles import examples
from vllmtune.bench.headers import CLIENT_HEADERS, header_line, name_problem, value_problem

# RFC 9110 5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
#   / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
RFC_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: field-value = *field-content; field-content = field-vchar
#   [ 1*( SP / HTAB / field-vchar ) field-vchar ]; field-vchar = VCHAR / obs-text;
#   VCHAR = %x21-7E (RFC 5234 B.1); obs-text = %x80-FF
RFC_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[ \t\x21-\x7e\x80-\xff]+[\x21-\x7e\x80-\xff])?)*")
# what the brief says the client controls, spelled here on its own (case-insensitive), and Accept
# (the client writes "Accept: */*" on every request too)
OWN = {"host", "content-length", "transfer-encoding", "content-type", "connection", "authorization", "accept"}

HOSTILE = ["\x00", "\r", "\n", "\r\n", "\x85", "\x7f", "\t", " ", "$(VAR)", "${VAR}", "`", "\x1b", "\u2028", "\ufeff"]
HOSTILE += ["é", "\xff", "\x80", "字", ":", '"', "\\", "tenant-", "-", "x"]
TEXT = st.lists(st.sampled_from(HOSTILE + list(string.ascii_letters[:4] + string.digits[:3] + "!#|~")), max_size=12)


@settings(max_examples=examples(1000))
@given(TEXT.map("".join))
@example("tenant-0")
@example("a b\tc")
@example(" lead")
@example("trail\t")
@example("caf\xe9")  # obs-text to RFC 9110; refused here (the module's documented choice)
@example("")
def test_value_problem_agrees_with_the_rfc_field_value_ascii_only(value: str) -> None:
    rfc = RFC_FIELD_VALUE.fullmatch(value) is not None
    assert (value_problem(value) is None) == (rfc and value.isascii() and value != "")
    if rfc and value and not value.isascii():  # allowed by the RFC as obs-text, refused as non-ASCII
        assert (value_problem(value) or "").startswith("it holds the non-ASCII character U+")
    if value_problem(value) is None:
        line = header_line("x-tenant-id", value)
        assert line == b"x-tenant-id: " + value.encode("ascii") + b"\r\n"
        assert line.count(b"\r") == line.count(b"\n") == 1  # one header line, nothing smuggled after it
    else:
        with pytest.raises(ValueError):
            header_line("x-tenant-id", value)


@settings(max_examples=examples(1000))
@given(TEXT.map("".join) | st.sampled_from(sorted(OWN) + ["X-Tenant-Id", "HOST", "Content-TYPE", "x_user.id"]))
def test_name_problem_agrees_with_the_rfc_token_less_the_clients_own(name: str) -> None:
    ok = RFC_TOKEN.fullmatch(name) is not None and name.lower() not in OWN
    assert (name_problem(name) is None) == ok


def test_client_headers_are_the_ones_the_client_writes() -> None:
    assert set(CLIENT_HEADERS) == OWN
    assert all(h == h.lower() for h in CLIENT_HEADERS)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "--session-header is empty: give a header name"),
        (
            "x tenant",
            "--session-header 'x tenant' is not an HTTP header name: ' ' (character 2) cannot be in one "
            "(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)",
        ),
        (
            "x-tenant-id:",
            "--session-header 'x-tenant-id:' is not an HTTP header name: ':' (character 12) cannot be in one "
            "(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)",
        ),
        (
            "x\r\nEvil",
            "--session-header 'x\\r\\nEvil' is not an HTTP header name: '\\r' (character 2) cannot be in one "
            "(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)",
        ),
        (
            "tenant-é",
            "--session-header 'tenant-é' is not an HTTP header name: 'é' (character 8) cannot be in one "
            "(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)",
        ),
        ("Content-Type", "--session-header Content-Type: the benchmark client writes that header itself"),
        ("AUTHORIZATION", "--session-header AUTHORIZATION: the benchmark client writes that header itself"),
        ("host", "--session-header host: the benchmark client writes that header itself"),
    ],
)
def test_name_problem_messages(name: str, message: str) -> None:
    assert name_problem(name) == message


@pytest.mark.parametrize("name", ["x-tenant-id", "X-Session-ID", "x_user.id", "!#$%&'*+-.^_`|~09azAZ"])
def test_name_problem_accepts_tokens(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "it is empty (an empty value names no session)"),
        ("tenant\r\nX-Evil: 1", "it holds the control character U+000D"),
        ("a\nb", "it holds the control character U+000A"),
        ("a\x00", "it holds the control character U+0000"),
        ("del\x7f", "it holds the control character U+007F"),
        ("nel\x85", "it holds the non-ASCII character U+0085 (session header values are ASCII only)"),
        ("tenant-é", "it holds the non-ASCII character U+00E9 (session header values are ASCII only)"),
        (" tenant", "it starts or ends with a space or tab (a server strips them: the router would see another value)"),
        (
            "tenant\t",
            "it starts or ends with a space or tab (a server strips them: the router would see another value)",
        ),
    ],
)
def test_value_problem_messages(value: str, message: str) -> None:
    assert value_problem(value) == message


def test_header_line() -> None:
    assert header_line("X-Tenant-Id", "acme corp\t1") == b"X-Tenant-Id: acme corp\t1\r\n"
    assert header_line("x-user-id", "$(VAR)") == b"x-user-id: $(VAR)\r\n"  # sent as written: no shell here
    with pytest.raises(ValueError) as err:
        header_line("x-tenant-id", "a\r\nb")
    assert str(err.value) == "'a\\r\\nb': it holds the control character U+000D"
    with pytest.raises(ValueError) as err:
        header_line("Host", "a")
    assert str(err.value) == "--session-header Host: the benchmark client writes that header itself"
