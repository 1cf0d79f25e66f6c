"""The cache proxy's options, declared once.

:class:`ServeConfig` is the only declaration of ``vllmtune cache serve`` / ``python -m
vllmtune.cache``: the typer command, the container's argparse and the command line the plan (the
sidecar) and the ladder give the proxy are all generated from it. Standard library only (the
proxy image runs ``python -m vllmtune.cache`` with stdlib + h11 + redis).
"""

from __future__ import annotations

from dataclasses import dataclass

from vllmtune.util.argspec import opt, to_argv

# what the plan and the ladder always spell out, even at the default (the launch reads complete)
SIDECAR_ALWAYS = ("upstream", "host", "port", "backend", "ttl", "max_temperature")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``vllmtune cache serve`` takes."""

    upstream: str = opt("--upstream", help="The OpenAI-compatible server, e.g. http://localhost:8000.")
    host: str = opt("--host", default="127.0.0.1", help="Bind address (0.0.0.0 to expose it, as in a container).")
    port: int = opt("--port", default=8080, help="Port clients use instead of the server's.")
    backend: str = opt(
        "--backend", default="memory", choices=("memory", "redis"), help="memory (in-process LRU) or redis."
    )
    ttl: int = opt("--ttl", default=86400, help="Seconds an answer stays cached.")
    max_temperature: float = opt(
        "--max-temperature", default=0.1, help="Only cache requests at or below this temperature."
    )
    skip_pii: bool = opt("--skip-pii", default=True, negative="--no-skip-pii", help="Never cache what looks like PII.")
    redis_url: str | None = opt("--redis-url", default=None, help="redis://HOST:6379/0 (default: $VLLMTUNE_REDIS_URL).")
    missing_temperature_is_deterministic: bool = opt(
        "--missing-temperature-is-deterministic",
        default=False,
        help="Treat a request without temperature as deterministic (the server default may not be 0).",
    )
    share_across_tenants: bool = opt(
        "--share-across-tenants", default=False, help="One cache for every API key (default: one per key)."
    )
    max_bytes: int = opt("--max-bytes", default=256 << 20, help="Memory backend size bound, bytes.")
    redis_l1_bytes: int = opt(
        "--redis-l1-bytes",
        default=64 << 20,
        help="Backend redis: in-process copy of hot entries, bytes (0: every hit asks Redis).",
    )
    upstream_timeout: float = opt(
        "--upstream-timeout", default=600.0, help="Seconds to connect, and of silence within an answer (then 504)."
    )
    usd_per_1k_tokens: float = opt("--usd-per-1k-tokens", default=0.0, help="For the cost-saved metric.")


def sidecar_argv(cfg: ServeConfig) -> list[str]:
    """The proxy's command line (after ``python -m vllmtune.cache``) for ``cfg``."""
    return to_argv(cfg, SIDECAR_ALWAYS)
