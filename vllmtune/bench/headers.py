"""The per-request session header (``vllmtune bench --session-header NAME``): its name and each
value checked against RFC 9110 before anything is sent, and the header line the client writes.

- A name is a ``token`` (RFC 9110 5.1 field-name = token; 5.6.2 tchar = ``!#$%&'*+-.^_`|~``,
  digits, letters), and not one the benchmark client writes itself (:data:`CLIENT_HEADERS`).
- A value is a ``field-value`` (RFC 9110 5.5): visible characters, with spaces and tabs inside
  but not at either end, no control character (CR, LF, NUL, DEL, ...). RFC 9110 also allows
  obs-text (octets 0x80-0xFF) but only as opaque bytes that recipients read as Latin-1 (h11 and
  the ASGI servers on it hand them over as bytes, Starlette decodes them as Latin-1; aiohttp's
  client writes UTF-8): a UTF-8 ``tenant-é`` would arrive as ``tenant-Ã©``, another tenant than
  the request's JSON ``user``. So values are ASCII only here, and a non-ASCII one is refused.
  An empty value is refused too (it names no session).

Standard library only (the workload reader uses it).
"""

from __future__ import annotations

import re

# Headers the client writes on every request (vllmtune.bench.http, vllmtune.bench.runner): a
# second one of these would contradict the client's own (RFC 9110 5.3: not a list-valued field).
CLIENT_HEADERS = (
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "connection",
    "authorization",
    "accept",
)
_TCHAR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the session header (a whole sentence for ``--session-header``), or None."""
    if not name:
        return "--session-header is empty: give a header name"
    for i, ch in enumerate(name):
        if not (ch.isascii() and _TCHAR.fullmatch(ch)):
            return (
                f"--session-header {name!r} is not an HTTP header name: {ch!r} (character {i + 1}) cannot be in "
                "one (RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)"
            )
    if name.lower() in CLIENT_HEADERS:
        return f"--session-header {name}: the benchmark client writes that header itself"
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as a header value (the end of a sentence: ``it ...``), or None."""
    if not value:
        return "it is empty (an empty value names no session)"
    for ch in value:
        if not ch.isascii():
            return f"it holds the non-ASCII character U+{ord(ch):04X} (session header values are ASCII only)"
        if (ch < " " and ch != "\t") or ch == "\x7f":
            return f"it holds the control character U+{ord(ch):04X}"
    if value[0] in " \t" or value[-1] in " \t":
        return "it starts or ends with a space or tab (a server strips them: the router would see another value)"
    return None


def header_line(name: str, value: str) -> bytes:
    """``name: value`` and CRLF, as the client writes it; ValueError when either is not sendable
    (the callers check the user's input first, with :func:`name_problem` and :func:`value_problem`)."""
    problem = name_problem(name) or (f"{value!r}: {why}" if (why := value_problem(value)) else None)
    if problem:
        raise ValueError(problem)
    return f"{name}: {value}\r\n".encode("ascii")
