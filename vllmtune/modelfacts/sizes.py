"""Memory sizes as users write them (``24GiB``, ``80 GB``, ``24576MiB``): parsed exactly.

Imported by the profile schema (``resources.gpu_memory``) and ``fit --gpu-memory``: it must
stay free of heavy imports.
"""

from __future__ import annotations

import re

UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
SIZE_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]+)\s*$")
MIN_GPU_BYTES = 2**30  # 1 GiB: smaller is a typo (a unit missing or wrong)
MAX_GPU_BYTES = 4 * 2**40  # 4 TiB: no accelerator is larger
HINT = "write the memory torch reports (nvidia-smi's total is slightly larger), e.g. 23.58GiB, 80GB, 24576MiB"


def parse_size(text: str) -> int:
    """Bytes of ``text``; ValueError with the whole message when it is not a GPU memory size."""
    m = SIZE_RE.match(str(text))
    unit = m["unit"].lower() if m else ""
    if m is None or unit not in UNITS:
        raise ValueError(f"{text!r} is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB); {HINT}")
    value = int(float(m["num"]) * UNITS[unit])
    if value < MIN_GPU_BYTES:
        raise ValueError(f"{text!r} is less than 1 GiB: not the memory of a GPU (a unit missing?); {HINT}")
    if value > MAX_GPU_BYTES:
        raise ValueError(f"{text!r} is more than 4 TiB: not the memory of one GPU; {HINT}")
    return value
