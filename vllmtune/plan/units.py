"""Sizes in docker's and Kubernetes' spellings."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)i?[bB]?$")


def docker_size(text: str) -> str:
    """'16Gi' / '16g' / '16G' -> docker's '16g' (binary units, as docker uses)."""
    m = _SIZE.match(text)
    assert m, text  # the profile pattern already guaranteed it
    return m.group(1) + m.group(2).lower()


def k8s_quantity(docker: str) -> str:
    """docker's '16g' -> Kubernetes' '16Gi'."""
    m = _SIZE.match(docker)
    assert m, docker
    unit = m.group(2).upper()
    return m.group(1) + (unit + "i" if unit else "")


def _gib(docker: str) -> float:
    """docker's '16g' -> 16.0 (GiB)."""
    m = _SIZE.match(docker)
    assert m, docker
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[m.group(2).lower()]
    return float(m.group(1)) * float(1 << (10 * power)) / float(1 << 30)
