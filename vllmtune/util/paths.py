"""Telling a local path from a Hugging Face id (``org/name``) by its spelling alone."""

from __future__ import annotations

LOCAL_PREFIXES = ("/", "./", "../", "~/")


def looks_local(ident: str) -> bool:
    """Is ``ident`` written as a local path (absolute, ``./``, ``../``, ``~/``, or ``.``/``..``)
    rather than a Hub id? Nothing is looked up on disk."""
    return ident.startswith(LOCAL_PREFIXES) or ident in (".", "..")
