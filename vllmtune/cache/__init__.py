"""Lever 1, the prompt-result cache: a caching proxy in front of any OpenAI-compatible server.

``vllmtune cache serve`` / ``python -m vllmtune.cache`` (see :mod:`vllmtune.cache.command`).
"""

from vllmtune.cache.command import serve, stats
from vllmtune.errors import CacheError

__all__ = ["CacheError", "serve", "stats"]
