"""Lever 1, the prompt-result cache: a caching proxy in front of any OpenAI-compatible server.

``vllmtune cache serve`` / ``python -m vllmtune.cache`` (see :mod:`vllmtune.cache.command`).
"""

from vllmtune.cache.command import CacheError, serve, stats

__all__ = ["CacheError", "serve", "stats"]
