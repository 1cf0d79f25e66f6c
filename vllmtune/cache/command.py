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
import urllib.error
import urllib.request
from typing import Any

from vllmtune.cache.backends import Backend, MemoryBackend, RedisBackend, redact
from vllmtune.cache.proxy import Proxy, ProxyConfig
from vllmtune.cache.proxy import serve as run_server
from vllmtune.errors import CacheError as CacheError
from vllmtune.errors import VllmtuneError

log = logging.getLogger("vllmtune.cache")


def make_backend(
    kind: str, redis_url: str | None, max_bytes: int = 256 << 20, redis_l1_bytes: int = 64 << 20
) -> Backend:
    """The storage backend; Redis comes from ``redis_url`` or $VLLMTUNE_REDIS_URL."""
    if kind == "memory":
        return MemoryBackend(max_bytes)
    if kind != "redis":
        raise CacheError(f"--backend {kind!r}", hint="choose memory or redis", sep=": ")
    url = redis_url or os.environ.get("VLLMTUNE_REDIS_URL")
    if not url:
        raise CacheError("--backend redis needs --redis-url (or $VLLMTUNE_REDIS_URL), e.g. redis://HOST:6379/0")
    try:
        return RedisBackend(url, l1_bytes=redis_l1_bytes)
    except (RuntimeError, ValueError) as exc:
        raise CacheError(str(exc)) from None


def serve(
    upstream: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    backend: str = "memory",
    redis_url: str | None = None,
    ttl_seconds: int = 86400,
    max_temperature: float = 0.1,
    skip_pii: bool = True,
    *,
    missing_temperature_is_deterministic: bool = False,
    usd_per_1k_tokens: float = 0.0,
    max_bytes: int = 256 << 20,
    redis_l1_bytes: int = 64 << 20,
    upstream_timeout: float = 600.0,
    share_across_tenants: bool = False,
    announce: bool = True,
) -> None:
    """Run the cache proxy until SIGTERM / Ctrl-C (blocking). Raises :class:`CacheError` for
    what the user can fix (bad upstream URL, port in use, missing redis package); an
    unreachable Redis is only a warning (the proxy fails open and uses it once it is back)."""
    cfg = ProxyConfig(
        upstream=upstream,
        host=host,
        port=port,
        ttl=ttl_seconds,
        max_temperature=max_temperature,
        skip_pii=skip_pii,
        missing_temperature_is_deterministic=missing_temperature_is_deterministic,
        usd_per_1k_tokens=usd_per_1k_tokens,
        upstream_timeout=upstream_timeout,
        share_across_tenants=share_across_tenants,
    )
    serve_config(cfg, backend, redis_url, max_bytes=max_bytes, redis_l1_bytes=redis_l1_bytes, announce=announce)


def serve_config(
    cfg: ProxyConfig,
    backend: str = "memory",
    redis_url: str | None = None,
    max_bytes: int = 256 << 20,
    redis_l1_bytes: int = 64 << 20,
    announce: bool = True,
) -> None:
    """:func:`serve` for a ready :class:`ProxyConfig`."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="vllmtune cache: %(message)s")
    if not 0 <= cfg.port <= 65535:
        raise CacheError(f"--port {cfg.port}: expected 1-65535")
    if cfg.ttl <= 0:
        raise CacheError(f"--ttl {cfg.ttl}: expected a positive number of seconds")
    if not cfg.upstream_timeout > 0:
        raise CacheError(f"--upstream-timeout {cfg.upstream_timeout:g}: expected a positive number of seconds")
    if backend == "memory" and max_bytes <= 0:
        raise CacheError(f"--max-bytes {max_bytes}: expected a positive number of bytes")
    store = make_backend(backend, redis_url, max_bytes, redis_l1_bytes)
    try:
        proxy = Proxy(cfg, store)
    except ValueError as exc:
        raise CacheError(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if isinstance(store, RedisBackend):
            why = await store.ping()
            if why is not None:
                log.warning("redis at %s does not answer (%s): serving without the cache until it does", store.url, why)
        up = proxy.upstream
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(up.host, up.port), 2.0)
            w.close()
        except (OSError, asyncio.TimeoutError):
            log.warning("the upstream %s does not answer yet; requests get 502 until it does", redact(cfg.upstream))

        def ready(bound: int) -> None:
            if announce:
                up_shown = redact(cfg.upstream)
                sys.stderr.write(
                    f"vllmtune cache: http://{cfg.host}:{bound} -> {up_shown} ({store.name}, ttl {cfg.ttl} s, "
                    f"temperature <= {cfg.max_temperature:g}, pii {'skipped' if cfg.skip_pii else 'cached'})\n"
                )
                sys.stderr.flush()

        try:
            await run_server(proxy, stop, ready)
        except OSError as exc:
            await store.close()
            why = exc.strerror or ("address already in use" if "in use" in str(exc) else str(exc))
            raise CacheError(f"cannot listen on {cfg.host}:{cfg.port}: {why}") from None

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        pass


def stats(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The JSON of a running proxy's ``/cache/stats`` (``url``: http://HOST:PORT)."""
    base = url if "://" in url else f"http://{url}"
    target = base.rstrip("/") + "/cache/stats"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:  # URLError, timeouts: OSError
        reason = getattr(exc, "reason", None) or exc
        raise CacheError(f"no vllmtune cache proxy answers at {url} (GET /cache/stats: {reason})") from None
    if not isinstance(data, dict) or "hits" not in data:
        raise CacheError(f"{url} answered /cache/stats, but not as a vllmtune cache proxy")
    return data


def parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m vllmtune.cache`` (what the proxy container runs)."""
    ap = argparse.ArgumentParser(prog="python -m vllmtune.cache", description="vllmtune prompt-result cache proxy")
    ap.add_argument("--upstream", help="the OpenAI-compatible server, http://HOST:PORT")
    ap.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--backend", choices=("memory", "redis"), default="memory")
    ap.add_argument("--redis-url", default=None, help="redis://HOST:6379/0 (default: $VLLMTUNE_REDIS_URL)")
    ap.add_argument("--ttl", type=int, default=86400, help="seconds an answer stays cached (default 24 h)")
    ap.add_argument("--max-temperature", type=float, default=0.1, help="cache only at or below this temperature")
    ap.add_argument("--no-skip-pii", action="store_true", help="cache answers even when they look like PII")
    ap.add_argument(
        "--missing-temperature-is-deterministic",
        action="store_true",
        help="treat a request without temperature as deterministic (the server default may not be 0)",
    )
    ap.add_argument("--share-across-tenants", action="store_true", help="one cache for every API key")
    ap.add_argument("--max-bytes", type=int, default=256 << 20, help="memory backend size bound (bytes)")
    ap.add_argument(
        "--redis-l1-bytes",
        type=int,
        default=64 << 20,
        help="backend redis: in-process copy of hot entries, bytes (0: every hit asks Redis)",
    )
    ap.add_argument("--upstream-timeout", type=float, default=600.0, help="seconds of upstream silence before 504")
    ap.add_argument("--usd-per-1k-tokens", type=float, default=0.0, help="for the cost-saved metric")
    ap.add_argument("--stats", metavar="URL", help="print a running proxy's /cache/stats and exit")
    return ap


def main(argv: list[str] | None = None) -> int:
    """``python -m vllmtune.cache``: 0 ok, 1 a problem the message explains, 130 interrupted."""
    ap = parser()
    a = ap.parse_args(argv)
    if not a.stats and not a.upstream:
        ap.error("--upstream is required (the OpenAI-compatible server, http://HOST:PORT)")
    try:
        if a.stats:
            print(json.dumps(stats(a.stats), indent=2))
            return 0
        serve(
            a.upstream,
            a.host,
            a.port,
            a.backend,
            a.redis_url,
            a.ttl,
            a.max_temperature,
            not a.no_skip_pii,
            missing_temperature_is_deterministic=a.missing_temperature_is_deterministic,
            usd_per_1k_tokens=a.usd_per_1k_tokens,
            max_bytes=a.max_bytes,
            redis_l1_bytes=a.redis_l1_bytes,
            upstream_timeout=a.upstream_timeout,
            share_across_tenants=a.share_across_tenants,
        )
    except VllmtuneError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
