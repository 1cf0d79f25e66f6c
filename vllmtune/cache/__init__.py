"""Lever 1, the prompt-result cache: a caching proxy in front of any OpenAI-compatible server.

``vllmtune cache serve`` / ``python -m vllmtune.cache`` (see :mod:`vllmtune.cache.command`); its
options: :mod:`vllmtune.cache.config`. Nothing is imported here, so that the plan reading the
options (the sidecar's command line) does not load the proxy.
"""
