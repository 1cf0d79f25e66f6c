"""cache.policy.Policy and Parsed called directly (no sockets): eligibility, body parsing and
its memo, tenants, the API-key gate, the PII gate on requests and on the answers to store."""

from __future__ import annotations

import json

from vllmtune.cache.keys import body_digest, entry_key, tenant_of
from vllmtune.cache.metrics import Metrics
from vllmtune.cache.policy import Parsed, Policy
from vllmtune.cache.proxy import ProxyConfig


def _policy(**cfg: object) -> Policy:
    return Policy(ProxyConfig(upstream="http://127.0.0.1:1", **{"api_key": None, **cfg}), Metrics())  # type: ignore[arg-type]


def test_ineligible_reasons() -> None:
    p = _policy()
    assert p.ineligible({"temperature": 0}) is None
    assert p.ineligible({"temperature": 0.1, "n": 1}) is None
    assert p.ineligible({"temperature": 0, "cache": False}) == "body_flag"
    assert p.ineligible({"temperature": 0, "n": 2}) == "n_not_1"
    assert p.ineligible({}) == "no_temperature"
    assert p.ineligible({"temperature": True}) == "temperature"
    assert p.ineligible({"temperature": "0"}) == "temperature"
    assert p.ineligible({"temperature": 0.2}) == "temperature"
    assert _policy(missing_temperature_is_deterministic=True).ineligible({}) is None
    assert _policy(max_temperature=1.0).ineligible({"temperature": 0.7}) is None


def test_parse_cacheable_body_strips_the_cache_flag_and_memoises() -> None:
    p = _policy()
    body = b'{"model":"m","prompt":"hi","temperature":0,"cache":true,"stream":true,"stream_options":{"include_usage":true}}'
    parsed = p.parse(b"/v1/completions", body)
    req = json.loads(body)
    assert (parsed.reason, parsed.error, parsed.stream, parsed.want_usage) == (None, None, True, True)
    assert parsed.digest == body_digest("/v1/completions", req)
    assert json.loads(parsed.body) == {k: v for k, v in req.items() if k != "cache"}
    assert parsed.req == req  # the flag kept for the policy's own decisions
    assert p.parse(b"/v1/completions", body) is parsed
    assert p.memo_bytes == len(body)
    assert parsed.key("t1") == entry_key("t1", parsed.digest)
    assert parsed.keys == {"t1": entry_key("t1", parsed.digest)}


def test_parse_refusals() -> None:
    p = _policy()
    bad = p.parse(b"/v1/completions", b'{"prompt":"\\ud800","temperature":0}')
    assert (bad.reason, bad.error, bad.digest, bad.req) == (
        "bad_json",
        "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)",
        b"",
        None,
    )
    deep = p.parse(b"/v1/completions", b"[" * 70 + b"]" * 70)
    assert (deep.reason, deep.error) == ("bad_json", "the JSON body is nested deeper than 64 levels")
    for text in (b"not json", b"[1]", b'"s"'):
        refused = p.parse(b"/v1/completions", text)
        assert (refused.reason, refused.error, refused.body) == ("not_json", None, text)
    hot = p.parse(b"/v1/completions", b'{"prompt":"x","temperature":1}')
    assert (hot.reason, hot.digest, hot.stream, hot.want_usage) == ("temperature", b"", False, False)


def test_tenant_and_authorized() -> None:
    p = _policy()
    assert p.tenant(b"Bearer k", b"", b"", b"") == tenant_of(b"Bearer k")
    assert p.tenant(b"", b"k2", b"org", b"") == tenant_of(None, b"k2", b"org")
    assert p.tenant(b"", b"", b"", b"") == "anonymous"
    assert _policy(share_across_tenants=True).tenant(b"Bearer k", b"", b"", b"") == "shared"
    assert p.authorized(b"anything") is True  # no key known: vLLM decides
    keyed = _policy(api_key="sk")
    assert keyed.authorized(b"Bearer sk") is True
    assert keyed.authorized(b"Bearer wrong") is False
    assert keyed.authorized(b"sk") is False


def test_request_pii_is_computed_once_and_skips_the_model() -> None:
    p = _policy()
    parsed = p.parse(b"/v1/completions", b'{"model":"a@b.example","prompt":"hi","temperature":0}')
    assert p.request_pii(parsed) is False  # an e-mail-looking model name is not PII
    assert parsed.pii is False
    mail = p.parse(b"/v1/completions", b'{"prompt":"write to ann@corp.example","temperature":0}')
    assert p.request_pii(mail) is True
    assert p.request_pii(Parsed("not_json", b"", False, False, b"x", None)) is False


def test_entry_from_body() -> None:
    p = _policy()
    answer = b'{"id":"c","choices":[{"text":"ok"}],"usage":{"total_tokens":12}}'
    entry = p.entry_from_body(answer)
    assert entry is not None
    assert {k: v for k, v in entry.items() if k != "created"} == {
        "body": answer.decode(),
        "frames": None,
        "tokens": 12,
        "pii_checked": True,
    }
    for refused in (b"nope", b"[]", b'{"error":{"message":"x"}}', b'{"choices":"x"}'):
        assert p.entry_from_body(refused) is None
    assert p.metrics.bypass == {}
    assert p.entry_from_body(b'{"choices":[{"text":"mail ann@corp.example"}]}') is None
    assert p.metrics.bypass == {"pii_response": 1}
    unchecked = _policy(skip_pii=False).entry_from_body(b'{"choices":[{"text":"mail ann@corp.example"}]}')
    assert unchecked is not None and unchecked["pii_checked"] is False and unchecked["tokens"] == 0


def test_entry_from_frames_assembles_and_gates_split_pii() -> None:
    p = _policy()
    frames = [
        '{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"a"}]}',
        '{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"b","finish_reason":"stop"}]}',
        '{"id":"c","choices":[],"usage":{"total_tokens":3}}',
    ]
    entry = p.entry_from_frames(frames)
    assert entry is not None
    assert json.loads(entry["body"]) == {
        "id": "c",
        "created": 1,
        "model": "m",
        "object": "text_completion",
        "choices": [{"index": 0, "text": "ab", "logprobs": None, "finish_reason": "stop"}],
        "usage": {"total_tokens": 3},
    }
    assert (entry["frames"], entry["tokens"], entry["pii_checked"]) == (frames, 3, True)
    split = ['{"choices":[{"index":0,"text":"ann@co"}]}', '{"choices":[{"index":0,"text":"rp.example"}]}']
    assert p.entry_from_frames(split) is None  # the e-mail only exists assembled
    assert p.metrics.bypass == {"pii_response": 1}
    assert p.entry_from_frames(["{bad"]) is None
    assert p.entry_from_frames(['{"error":{"message":"x"}}']) is None
    assert p.entry_from_frames(["[1]"]) is None
    logprobs = ['{"choices":[{"index":0,"text":"a","logprobs":{}}],"usage":{"total_tokens":2}}']
    kept = p.entry_from_frames(logprobs)  # not rebuildable: frames only, tokens from the usage frame
    assert kept is not None and (kept["body"], kept["frames"], kept["tokens"]) == (None, logprobs, 2)


def test_may_serve_checks_unchecked_entries_both_sides() -> None:
    p = _policy()
    clean = p.parse(b"/v1/completions", b'{"prompt":"hi","temperature":0}')
    mail = p.parse(b"/v1/completions", b'{"prompt":"ann@corp.example","temperature":0}')
    assert p.may_serve({"body": '{"choices":[{"text":"ann@corp.example"}]}', "pii_checked": True}, clean) is True
    assert p.may_serve({"body": '{"choices":[{"text":"ok"}]}'}, clean) is True
    assert p.may_serve({"body": '{"choices":[{"text":"ok"}]}'}, mail) is False
    assert p.may_serve({"body": '{"choices":[{"text":"ann@corp.example"}]}'}, clean) is False
    assert p.may_serve({"frames": ['{"choices":[{"index":0,"text":"ann@corp.example"}]}']}, clean) is False
    assert p.may_serve({"frames": ["{not json"]}, clean) is False  # what cannot be checked is not served
    assert p.may_serve({"frames": ["[1]"]}, clean) is False
    assert _policy(skip_pii=False).may_serve({"body": '{"x":"ann@corp.example"}'}, mail) is True
