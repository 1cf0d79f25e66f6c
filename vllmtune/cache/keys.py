"""Cache keys: a hash of the canonical JSON of everything that shapes the answer.

Canonical means sorted keys, no whitespace, and numbers normalised (``0 == 0.0``,
``1 == 1.0``), so two requests that mean the same thing share one entry. Transport-only
fields (``stream``, ``stream_options``, ``user``) and the proxy's own ``cache`` flag are
left out; the tenant (a hash of the API key) is always part of the key, so one tenant can
never receive or probe another's entries.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

TRANSPORT_FIELDS = frozenset({"stream", "stream_options", "user", "cache"})


def _normal(value: Any) -> Any:
    """Numbers that are equal compare equal (``1 == 1.0``); containers recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return str(value)


def canonical(body: dict[str, Any]) -> bytes:
    """Canonical JSON of the output-shaping part of a request body."""
    shaped = {k: v for k, v in body.items() if k not in TRANSPORT_FIELDS}
    return json.dumps(_normal(shaped), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b(v: str | bytes | None) -> bytes:
    return b"" if not v else v if isinstance(v, bytes) else v.encode()


def tenant_of(
    authorization: str | bytes | None,
    api_key: str | bytes | None = None,
    organization: str | bytes | None = None,
    project: str | bytes | None = None,
) -> str:
    """A tenant id: a hash of the Authorization header (or an ``api-key`` header), and of the
    ``OpenAI-Organization`` / ``OpenAI-Project`` headers when sent; the credential itself is
    never stored. Requests without any of them share the "anonymous" tenant."""
    raw = _b(authorization or api_key).strip()
    scope = b""
    if organization or project:
        scope = b"\0org=" + _b(organization).strip() + b"\0project=" + _b(project).strip()
    if not raw and not scope:
        return "anonymous"
    return hashlib.sha256(b"vllmtune-tenant\0" + raw + scope).hexdigest()[:32]


def body_digest(path: str, body: dict[str, Any]) -> bytes:
    """The tenant-independent part of a key: endpoint + canonical body."""
    return hashlib.sha256(path.encode() + b"\0" + canonical(body)).digest()


def entry_key(tenant: str, digest: bytes) -> str:
    """The entry key of a tenant for a :func:`body_digest`."""
    return "vllmtune:pc:" + hashlib.sha256(tenant.encode() + b"\0" + digest).hexdigest()


def cache_key(path: str, body: dict[str, Any], tenant: str) -> str:
    """The entry key: tenant + endpoint + canonical body."""
    return entry_key(tenant, body_digest(path, body))
