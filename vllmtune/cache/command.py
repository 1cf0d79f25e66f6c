"""``vllmtune cache serve`` / ``vllmtune cache stats`` and ``python -m vllmtune.cache``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from typing import Any

from vllmtune.cache.backends import Backend, MemoryBackend, RedisBackend
from vllmtune.cache.proxy import Proxy, ProxyConfig
from vllmtune.cache.proxy import serve as run_server
from vllmtune.errors import VllmtuneError


class CacheError(VllmtuneError):
    """The proxy cannot start (bad upstream URL, port in use, missing redis package)."""


def make_backend(kind: str, redis_url: str | None, max_bytes: int) -> Backend:
    """The storage backend; Redis comes from --redis-url or $VLLMTUNE_REDIS_URL."""
    if kind == "memory":
        return MemoryBackend(max_bytes)
    url = redis_url or os.environ.get("VLLMTUNE_REDIS_URL")
    if not url:
        raise CacheError("backend redis needs --redis-url or $VLLMTUNE_REDIS_URL (redis://HOST:6379/0)")
    try:
        return RedisBackend(url)
    except RuntimeError as exc:
        raise CacheError(str(exc)) from None


def serve(
    cfg: ProxyConfig,
    backend: str = "memory",
    redis_url: str | None = None,
    max_bytes: int = 256 << 20,
    announce: bool = True,
) -> None:
    """Run the proxy until SIGTERM / Ctrl-C (blocking)."""
    logging.basicConfig(level=logging.WARNING, format="vllmtune cache: %(message)s")
    try:
        proxy = Proxy(cfg, make_backend(backend, redis_url, max_bytes))
    except ValueError as exc:
        raise CacheError(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)

        def ready(port: int) -> None:
            if announce:
                sys.stderr.write(
                    f"vllmtune cache: http://{cfg.host}:{port} -> {cfg.upstream} ({backend}, ttl "
                    f"{cfg.ttl}s, temperature <= {cfg.max_temperature})\n"
                )
                sys.stderr.flush()

        try:
            await run_server(proxy, stop, ready)
        except OSError as exc:
            raise CacheError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from None

    asyncio.run(main())


def stats(url: str) -> dict[str, Any]:
    """The proxy's /cache/stats."""
    from vllmtune.bench.http import get

    status, body = asyncio.run(get(url.rstrip("/") + "/cache/stats"))
    if status != 200:
        raise CacheError(f"no vllmtune cache proxy answers at {url} (GET /cache/stats -> {status or 'no answer'})")
    data: dict[str, Any] = json.loads(body)
    return data


def parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m vllmtune.cache`` (what the proxy container runs)."""
    ap = argparse.ArgumentParser(prog="python -m vllmtune.cache", description="vllmtune prompt-result cache proxy")
    ap.add_argument("--upstream", required=True, help="the OpenAI-compatible server, http://HOST:PORT")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--backend", choices=("memory", "redis"), default="memory")
    ap.add_argument("--redis-url", default=None, help="default: $VLLMTUNE_REDIS_URL")
    ap.add_argument("--ttl", type=int, default=86400, help="seconds an answer stays cached")
    ap.add_argument("--max-temperature", type=float, default=0.1)
    ap.add_argument("--no-skip-pii", action="store_true", help="cache answers even when they look like PII")
    ap.add_argument("--missing-temperature-is-deterministic", action="store_true")
    ap.add_argument("--max-bytes", type=int, default=256 << 20, help="memory backend size bound")
    ap.add_argument("--usd-per-1k-tokens", type=float, default=0.0, help="for the cost-saved metric")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    cfg = ProxyConfig(
        upstream=a.upstream,
        host=a.host,
        port=a.port,
        ttl=a.ttl,
        max_temperature=a.max_temperature,
        skip_pii=not a.no_skip_pii,
        missing_temperature_is_deterministic=a.missing_temperature_is_deterministic,
        usd_per_1k_tokens=a.usd_per_1k_tokens,
    )
    try:
        serve(cfg, a.backend, a.redis_url, a.max_bytes)
    except VllmtuneError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
