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
from vllmtune.cache.config import ServeConfig
from vllmtune.cache.proxy import Proxy, ProxyConfig
from vllmtune.cache.proxy import serve as run_server
from vllmtune.errors import CacheError as CacheError
from vllmtune.errors import VllmtuneError
from vllmtune.util.argspec import add_arguments, from_namespace

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


def _proxy_config(cfg: ServeConfig) -> ProxyConfig:
    """The proxy's behaviour from the command's options."""
    return ProxyConfig(
        upstream=cfg.upstream,
        host=cfg.host,
        port=cfg.port,
        ttl=cfg.ttl,
        max_temperature=cfg.max_temperature,
        skip_pii=cfg.skip_pii,
        missing_temperature_is_deterministic=cfg.missing_temperature_is_deterministic,
        usd_per_1k_tokens=cfg.usd_per_1k_tokens,
        upstream_timeout=cfg.upstream_timeout,
        share_across_tenants=cfg.share_across_tenants,
    )


def serve(cfg: ServeConfig, announce: bool = True) -> None:
    """Run the cache proxy until SIGTERM / Ctrl-C (blocking). Raises :class:`CacheError` for
    what the user can fix (bad upstream URL, port in use, missing redis package); an
    unreachable Redis is only a warning (the proxy fails open and uses it once it is back)."""
    _serve_config(_proxy_config(cfg), cfg.backend, cfg.redis_url, cfg.max_bytes, cfg.redis_l1_bytes, announce=announce)


def _serve_config(
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
    """Arguments of ``python -m vllmtune.cache`` (what the proxy container runs): the options
    of :class:`ServeConfig`, and ``--stats``."""
    ap = argparse.ArgumentParser(prog="python -m vllmtune.cache", description="vllmtune prompt-result cache proxy")
    add_arguments(ap, ServeConfig)
    ap.add_argument("--stats", metavar="URL", help="Print a running proxy's /cache/stats and exit.")
    return ap


def main(argv: list[str] | None = None) -> int:
    """``python -m vllmtune.cache``: 0 ok, 1 a problem the message explains, 130 interrupted."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--stats", metavar="URL")
    early, _ = first.parse_known_args(argv)
    try:
        if early.stats:  # no --upstream needed
            print(json.dumps(stats(early.stats), indent=2))
            return 0
        serve(from_namespace(ServeConfig, parser().parse_args(argv)))
    except VllmtuneError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
