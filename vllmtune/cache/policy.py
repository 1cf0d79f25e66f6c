"""The cache policy's decisions: what a request body says (cacheable or why not, its key per
tenant, JSON no server should get), who the tenant is and whether its key may get a cached
answer, and the PII gate -- on the request, on the answer to store (assembled, streamed or not)
and on an entry another proxy stored. :class:`vllmtune.cache.proxy.Proxy` runs the flow
(hit, miss, bypass) on these decisions.

No sockets and no HTTP framing here: imports :mod:`vllmtune.cache.sse` (to assemble streamed
answers), keys and pii.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vllmtune.cache.keys import body_digest, entry_key, tenant_of
from vllmtune.cache.pii import find_pii, find_pii_in
from vllmtune.cache.sse import assemble
from vllmtune.cache.wire import ProxyConfig

if TYPE_CHECKING:
    from vllmtune.cache.metrics import Metrics

Entry = dict[str, Any]

MEMO_ENTRIES = 4096  # parsed request bodies remembered (a repeated request skips JSON + canonicalisation)
MEMO_MAX_BODY = 64 << 10
MEMO_MAX_BYTES = 16 << 20  # bound on the bodies held by the memo (x ~3 with the decoded requests)
MAX_JSON_DEPTH = 64
KEYS_PER_BODY = 64  # tenants' entry keys remembered per parsed body
_SKIP_MODEL = frozenset({"model"})


class Parsed:
    """What a request body says about caching (memoised per body bytes; never mutated but ``pii``
    and ``keys``)."""

    __slots__ = ("body", "digest", "error", "keys", "pii", "reason", "req", "stream", "want_usage")

    def __init__(
        self,
        reason: str | None,
        digest: bytes,
        stream: bool,
        want_usage: bool,
        body: bytes,
        req: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        self.error = error  # the body is JSON no server should get: a 400 with this reason
        self.reason = reason  # a bypass reason from the body alone, or None
        self.digest = digest  # keys.body_digest (empty when not cacheable)
        self.stream = stream
        self.want_usage = want_usage
        self.body = body  # what goes upstream (the proxy's "cache" flag removed)
        self.req = req
        self.pii: bool | None = None  # request PII, computed on the first miss
        self.keys: dict[str, str] = {}  # tenant -> entry key

    def key(self, tenant: str) -> str:
        key = self.keys.get(tenant)
        if key is None:
            if len(self.keys) >= KEYS_PER_BODY:
                self.keys.clear()
            key = self.keys[tenant] = entry_key(tenant, self.digest)
        return key


class Policy:
    """The decisions of one proxy (its config; bypasses counted in its metrics)."""

    def __init__(self, cfg: ProxyConfig, metrics: Metrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.memo: OrderedDict[tuple[bytes, bytes], Parsed] = OrderedDict()  # an LRU
        self.memo_bytes = 0
        self._tenants: dict[tuple[bytes, bytes, bytes], str] = {}

    # -- the request ----------------------------------------------------------------------------------

    def ineligible(self, body: dict[str, Any]) -> str | None:
        """None if the request body may be served from / stored in the cache, else the bypass reason."""
        if body.get("cache", True) is False:
            return "body_flag"
        n = body.get("n")
        if n is not None and n != 1:
            return "n_not_1"
        temperature = body.get("temperature")
        if temperature is None:
            if not self.cfg.missing_temperature_is_deterministic:
                return "no_temperature"
        elif isinstance(temperature, bool) or not isinstance(temperature, int | float):
            return "temperature"
        if temperature is not None and temperature > self.cfg.max_temperature:
            return "temperature"
        return None

    def parse(self, route: bytes, body: bytes) -> Parsed:
        """What the body says about caching; memoised by the body's bytes (a repeated request
        skips JSON decoding and canonicalisation)."""
        memo_key = (route, body)
        parsed = self.memo.get(memo_key)
        if parsed is not None:
            self.memo.move_to_end(memo_key)
            return parsed
        error = None
        try:
            req = json.loads(body)
        except RecursionError:
            req, error = None, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        except ValueError:
            req = None
        if req is not None:
            error = _json_problem(req)
        if error is not None:
            parsed = Parsed("bad_json", b"", False, False, body, None, error)
        elif not isinstance(req, dict):
            parsed = Parsed("not_json", b"", False, False, body, None)
        else:
            forward = body
            if "cache" in req:  # the proxy's own flag is not the server's business
                flag = req.pop("cache")
                forward = json.dumps(req, ensure_ascii=False).encode()
                req["cache"] = flag
            reason = self.ineligible(req)
            digest = b"" if reason else body_digest(route.decode(), req)
            opts = req.get("stream_options")
            want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
            parsed = Parsed(reason, digest, req.get("stream") is True, want_usage, forward, req)
        if len(body) <= MEMO_MAX_BODY:
            self.memo[memo_key] = parsed
            self.memo_bytes += len(body)
            while len(self.memo) > MEMO_ENTRIES or self.memo_bytes > MEMO_MAX_BYTES:
                (_, old), _ = self.memo.popitem(last=False)
                self.memo_bytes -= len(old)
        return parsed

    def tenant(self, auth: bytes, api_key: bytes, org: bytes, project: bytes) -> str:
        """The tenant of a request's credential and OpenAI scope headers (see keys.tenant_of)."""
        if self.cfg.share_across_tenants:
            return "shared"
        memo = (auth or api_key, org, project)
        tenant = self._tenants.get(memo)
        if tenant is None:
            if len(self._tenants) >= MEMO_ENTRIES:
                self._tenants.clear()
            tenant = self._tenants[memo] = tenant_of(auth, api_key, org, project)
        return tenant

    def authorized(self, auth: bytes) -> bool:
        """The client's key is the one vLLM checks (when the proxy knows it): a revoked or wrong
        key never gets a cached answer."""
        key = self.cfg.api_key
        if not key:
            return True
        return hmac.compare_digest(auth, b"Bearer " + key.encode())

    def request_pii(self, p: Parsed) -> bool:
        """PII in the request (the model name aside); computed once per parsed body."""
        if p.pii is None:
            p.pii = p.req is not None and bool(find_pii_in(p.req, skip=_SKIP_MODEL))
        return p.pii

    # -- the answer -----------------------------------------------------------------------------------

    def may_serve(self, entry: Entry, p: Parsed) -> bool:
        """An entry stored by a proxy that did not check PII (a shared Redis) is checked now, both
        sides; with the gate off, or an entry checked when stored, True."""
        if not self.cfg.skip_pii or entry.get("pii_checked"):
            return True
        return not (self.request_pii(p) or find_pii_in(entry.get("body")) or _frames_pii(entry.get("frames")))

    def entry_from_body(self, data: bytes) -> Entry | None:
        """The entry to store for a full (non-streamed) 200 answer, or None (not an answer, PII)."""
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict) or "error" in obj or not isinstance(obj.get("choices"), list):
            return None
        if self.cfg.skip_pii and find_pii_in(obj.get("choices")):
            self.metrics.bypassed("pii_response")
            return None
        return self._entry(data.decode("utf-8", "replace"), None, obj.get("usage"))

    def entry_from_frames(self, frames: list[str]) -> Entry | None:
        """The entry to store for a complete streamed answer (its SSE payloads), or None."""
        try:
            objs = [json.loads(f) for f in frames]
        except ValueError:
            return None  # a malformed stream is not an answer to keep
        if any(not isinstance(o, dict) or "error" in o for o in objs):
            return None
        full = _assembled(frames)
        if self.cfg.skip_pii and _streamed_pii(objs, full):
            self.metrics.bypassed("pii_response")
            return None
        usage: Any = (full or {}).get("usage") or next((o["usage"] for o in reversed(objs) if o.get("usage")), {})
        body = json.dumps(full, separators=(",", ":"), ensure_ascii=False) if full else None
        return self._entry(body, frames, usage)

    def _entry(self, body: str | None, frames: list[str] | None, usage: Any) -> Entry:
        return {
            "body": body,
            "frames": frames,
            "created": time.time(),
            "tokens": int(usage.get("total_tokens") or 0) if isinstance(usage, dict) else 0,
            "pii_checked": self.cfg.skip_pii,
        }


def _json_problem(value: Any) -> str | None:
    """Why a decoded request body must not go anywhere (a 400), else None: nesting deeper than
    MAX_JSON_DEPTH, or a lone surrogate (\\ud800 ...: no UTF-8 for it, nothing downstream can use it)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
        elif isinstance(v, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str) and _SURROGATE.search(k):
                    return "the JSON body has a lone surrogate (an invalid \\uD800-\\uDFFF escape)"
                stack.append((x, depth + 1))
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _assembled(frames: list[str]) -> dict[str, Any] | None:
    try:
        return assemble(frames)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _streamed_pii(objs: list[Any], full: dict[str, Any] | None) -> bool:
    """PII in a streamed answer, checked on the assembled text (a name or an e-mail split over
    frames is found), and frame by frame (what assembly cannot rebuild is still checked)."""
    if find_pii_in([o.get("choices") for o in objs]):
        return True
    if full is not None:
        return bool(find_pii_in(full.get("choices")))
    # not rebuildable: every string field of the choices, concatenated across frames, per field
    joined: dict[str, list[str]] = {}
    for o in objs:
        for c in o.get("choices") or ():
            if not isinstance(c, dict):
                continue
            src = c.get("delta") if isinstance(c.get("delta"), dict) else c
            for k, v in _flat(src):
                joined.setdefault(k, []).append(v)
    return any(find_pii("".join(parts)) for parts in joined.values())


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, string) for every string in a JSON value, list indices included in the path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(v, f"{path}[{i}]")


def _frames_pii(frames: Any) -> bool:
    """PII in stored frames (what cannot be checked counts as PII: it is not served)."""
    if not isinstance(frames, list) or not frames:
        return False
    try:
        objs = [json.loads(f) for f in frames]
    except (ValueError, TypeError):
        return True
    if not all(isinstance(o, dict) for o in objs):
        return True
    return _streamed_pii(objs, _assembled(frames))
