"""Lever 1, the prompt-result cache: a caching proxy in front of any OpenAI-compatible server."""
