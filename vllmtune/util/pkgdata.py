"""vllmtune's own data files (presets, the flag catalog), read from the package directory.

``importlib.resources`` would do the same for a package on disk, but importing it costs more
than a cold ``render`` spends on everything but pydantic (it pulls in tempfile, shutil, zipfile
and more: benchmarks/render_startup.py). vllmtune is always installed as files, never imported
from a zip, so the package directory is the truth.
"""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_path(*parts: str) -> str:
    """The path of a file inside the installed package: ``data_path("flags", "catalog.json")``."""
    return os.path.join(PACKAGE_DIR, *parts)


def read_text(*parts: str) -> str:
    """The UTF-8 text of a package data file."""
    with open(data_path(*parts), encoding="utf-8") as f:
        return f.read()


def list_names(*parts: str) -> list[str]:
    """The file names in a package directory, sorted."""
    return sorted(os.listdir(data_path(*parts)))
