"""Moved to :mod:`vllmtune.modelfacts.models` (a package here, so that git follows the rename)."""

from vllmtune.modelfacts.models import *  # noqa: F403  # shim: lead removes at merge
