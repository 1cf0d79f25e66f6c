"""The reviewed golden manifests of a source, by (kind, name): the whole value a direct call of
one object builder must equal."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import GOLDEN


def golden_objects(stem: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all((GOLDEN / f"{stem}.k8s.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}
