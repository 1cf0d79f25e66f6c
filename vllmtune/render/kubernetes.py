"""Moved to :mod:`vllmtune.render.k8s` (one module per object family)."""

from vllmtune.render.k8s import *  # noqa: F403  # shim: lead removes at merge
