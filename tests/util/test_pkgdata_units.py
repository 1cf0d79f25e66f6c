"""util.pkgdata's public names called directly: data_path (inside the package directory) and
list_names (the sorted file names of a package data directory: the built-in presets)."""

from __future__ import annotations

import os

import vllmtune
from vllmtune.util.pkgdata import data_path, list_names, read_text


def test_data_path_is_inside_the_package_directory() -> None:
    pkg = os.path.dirname(os.path.abspath(vllmtune.__file__))
    assert data_path("flags", "catalog.json") == os.path.join(pkg, "flags", "catalog.json")
    assert data_path() == pkg


def test_list_names_lists_the_presets_sorted() -> None:
    yaml_names = [n for n in list_names("presets") if n.endswith(".yaml")]
    assert yaml_names == [
        "all-levers.yaml", "awq.yaml", "baseline.yaml", "cpu-tiny.yaml", "prefix-cache.yaml", "speculative.yaml",
    ]  # fmt: skip
    assert "__init__.py" in list_names("presets")
    assert read_text("presets", "baseline.yaml").splitlines()[2] == "name: llama-8b-baseline"
