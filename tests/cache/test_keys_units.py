"""keys.body_digest and keys.entry_key called directly: the two halves cache_key joins."""

from __future__ import annotations

import hashlib

from vllmtune.cache.keys import body_digest, cache_key, canonical, entry_key


def test_body_digest_is_sha256_of_path_nul_canonical_body() -> None:
    body = {"model": "m", "prompt": "hi", "max_tokens": 4.0, "stream": True, "user": "u"}
    want = hashlib.sha256(b'/v1/completions\0{"max_tokens":4,"model":"m","prompt":"hi"}').digest()
    assert canonical(body) == b'{"max_tokens":4,"model":"m","prompt":"hi"}'
    assert body_digest("/v1/completions", body) == want
    # transport fields and number spelling do not change it; the endpoint does
    assert body_digest("/v1/completions", {"prompt": "hi", "model": "m", "max_tokens": 4}) == want
    assert body_digest("/v1/chat/completions", body) != want


def test_entry_key_is_prefixed_sha256_of_tenant_nul_digest() -> None:
    digest = bytes(range(32))
    want = "vllmtune:pc:" + hashlib.sha256(b"anonymous\0" + digest).hexdigest()
    assert entry_key("anonymous", digest) == want
    assert entry_key("t2", digest) != want
    body = {"model": "m", "prompt": "x"}
    assert cache_key("/v1/completions", body, "t") == entry_key("t", body_digest("/v1/completions", body))
