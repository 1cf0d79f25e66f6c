"""vllmtune.ladder.rungs.prompt_cache_proxy: the prompt-result cache proxy a rung runs behind,
configured from the profile's prompt_cache (ttl, max_temperature), in front of a real uvicorn
upstream, and gone when the rung ends."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.support.upstream import chat, content_of, uvicorn_upstream
from vllmtune.errors import LadderError
from vllmtune.ladder.rungs import prompt_cache_proxy
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import validate_document
from vllmtune.profile.yamlio import load_yaml
from vllmtune.runtime.health import http_get

PROFILE = (
    "name: p\nvllm: {version: '0.32.0'}\nmodel: {id: org/m}\n"
    "prompt_cache: {enabled: true, ttl: 10m, max_temperature: 0.2, skip_pii: false}\n"
)


def lp_of(text: str) -> LoadedProfile:
    return validate_document(load_yaml(text, "p.yaml"), "p.yaml")


def post(url: str, body: dict[str, Any]) -> bytes:
    req = urllib.request.Request(
        url + "/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: bytes = resp.read()
        return data


def test_the_proxy_caches_within_max_temperature_and_stops_with_the_rung() -> None:
    with uvicorn_upstream("h11") as (port, seen), prompt_cache_proxy(f"http://127.0.0.1:{port}", lp_of(PROFILE)) as url:
        assert url.startswith("http://127.0.0.1:")
        first = post(url, chat("hello"))
        assert content_of(first) == "re: hello"
        assert content_of(post(url, chat("hello"))) == "re: hello"  # answered from the cache
        assert content_of(post(url, {**chat("hello"), "temperature": 0.5})) == "re: hello"  # above 0.2: bypassed
        assert seen == ["hello", "hello"]
        status, body = http_get(url + "/cache/stats", timeout=5.0)
        stats = json.loads(body)
        assert (status, stats["hits"], stats["misses"], stats["bypasses"], stats["backend"]) == (
            200, 1, 1, 1, "memory"
        )  # fmt: skip
    assert http_get(url + "/cache/stats", timeout=1.0) == (0, b"")  # the proxy is gone


def test_a_proxy_that_exits_is_reported_with_its_own_error() -> None:
    # the proxy refuses a non-http upstream and exits: reported at once (it used to wait out 30 s)
    with pytest.raises(LadderError) as e, prompt_cache_proxy("ftp://127.0.0.1:9", lp_of(PROFILE)):
        pass
    assert str(e.value) == (
        "the prompt-cache proxy did not start: error: upstream 'ftp://127.0.0.1:9': expected http://HOST:PORT "
        "(https: put TLS in front of the proxy)"
    )
