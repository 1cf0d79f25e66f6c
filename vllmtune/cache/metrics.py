"""The proxy's counters: ``/metrics`` (Prometheus text format 0.0.4) and ``/cache/stats`` (JSON).

Everything is a plain attribute bumped on the event loop (one thread): no locks, no
allocation on the hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Upstream latency histogram buckets (seconds): from a stub's sub-millisecond to a long generation.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass
class Metrics:
    """Counters behind /metrics and /cache/stats."""

    usd_per_1k_tokens: float = 0.0
    hits: int = 0
    misses: int = 0
    collapsed: int = 0  # hits answered by sharing an identical in-flight miss (single flight)
    bypass: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    upstream_errors: int = 0
    tokens_saved: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0
    started: float = field(default_factory=time.time)

    def bypassed(self, reason: str) -> None:
        self.bypass[reason] = self.bypass.get(reason, 0) + 1

    def observe(self, seconds: float) -> None:
        """One upstream call took ``seconds`` (status line to last byte)."""
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1
                return

    def stats(self, backend: str, backend_errors: int, entries: int | None = None) -> dict[str, Any]:
        """The /cache/stats document."""
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "bypasses": sum(self.bypass.values()),
            "bypass": dict(sorted(self.bypass.items())),
            "hit_ratio": self.hits / lookups if lookups else 0.0,
            "collapsed": self.collapsed,
            "stored": self.stored,
            "tokens_saved": self.tokens_saved,
            "usd_saved": self.tokens_saved / 1000 * self.usd_per_1k_tokens,
            "usd_per_1k_tokens": self.usd_per_1k_tokens,
            "upstream_errors": self.upstream_errors,
            "upstream_latency": {
                "count": self.latency_count,
                "sum_s": self.latency_sum,
                "mean_s": self.latency_sum / self.latency_count if self.latency_count else 0.0,
                "buckets": {str(b): n for b, n in zip(BUCKETS, self._cumulative(), strict=True)},
            },
            "backend": backend,
            "backend_errors": backend_errors,
            "redis_errors": backend_errors if backend == "redis" else 0,
            "entries": entries,
            "uptime_s": time.time() - self.started,
        }

    def _cumulative(self) -> list[int]:
        out, acc = [], 0
        for n in self.latency_buckets:
            acc += n
            out.append(acc)
        return out

    def prometheus(self, backend: str, backend_errors: int, entries: int | None = None) -> str:
        """The /metrics page."""
        s = self.stats(backend, backend_errors, entries)
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float | int]]) -> None:
            out.append(f"# HELP vllmtune_cache_{name} {help_}")
            out.append(f"# TYPE vllmtune_cache_{name} {kind}")
            for labels, value in samples:
                v = f"{value:.6f}" if isinstance(value, float) else str(value)
                out.append(f"vllmtune_cache_{name}{labels} {v}")

        metric("hits_total", "counter", "Requests answered from the cache.", [("", s["hits"])])
        metric("misses_total", "counter", "Cacheable requests sent to the upstream.", [("", s["misses"])])
        metric(
            "bypass_total",
            "counter",
            "Requests not eligible for the cache, by reason.",
            [(f'{{reason="{r}"}}', n) for r, n in s["bypass"].items()],
        )
        metric(
            "collapsed_total", "counter", "Misses answered by an identical in-flight request.", [("", s["collapsed"])]
        )
        metric("stored_total", "counter", "Answers written to the cache.", [("", s["stored"])])
        metric("hit_ratio", "gauge", "hits / (hits + misses) since start.", [("", float(s["hit_ratio"]))])
        metric(
            "tokens_saved_total",
            "counter",
            "Tokens (usage.total_tokens) served from the cache.",
            [("", s["tokens_saved"])],
        )
        metric(
            "cost_saved_usd_total",
            "counter",
            "Estimated cost saved (--usd-per-1k-tokens).",
            [("", float(s["usd_saved"]))],
        )
        metric(
            "upstream_errors_total",
            "counter",
            "Upstream 4xx/5xx, timeouts and disconnects.",
            [("", s["upstream_errors"])],
        )
        metric(
            "backend_errors_total",
            "counter",
            "Cache backend failures (served without the cache).",
            [(f'{{backend="{backend}"}}', backend_errors)],
        )
        metric("redis_errors_total", "counter", "Redis failures (served without the cache).", [("", s["redis_errors"])])
        if entries is not None:
            metric("entries", "gauge", "Entries in the memory backend.", [("", entries)])
        out.append("# HELP vllmtune_cache_upstream_seconds Upstream latency (request sent to last byte).")
        out.append("# TYPE vllmtune_cache_upstream_seconds histogram")
        for bound, n in zip(BUCKETS, self._cumulative(), strict=True):
            out.append(f'vllmtune_cache_upstream_seconds_bucket{{le="{bound}"}} {n}')
        out.append(f'vllmtune_cache_upstream_seconds_bucket{{le="+Inf"}} {self.latency_count}')
        out.append(f"vllmtune_cache_upstream_seconds_sum {self.latency_sum:.6f}")
        out.append(f"vllmtune_cache_upstream_seconds_count {self.latency_count}")
        return "\n".join(out) + "\n"
