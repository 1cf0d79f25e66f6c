"""Moved to :mod:`vllmtune.modelfacts.sizes` (a package here, so that git follows the rename)."""

from vllmtune.modelfacts.sizes import *  # noqa: F403  # shim: lead removes at merge
