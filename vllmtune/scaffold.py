"""``vllmtune init``: a new profile written out in full from a preset."""

from __future__ import annotations

from vllmtune.errors import Problem, ProfileError
from vllmtune.profile.base import NAME_RE
from vllmtune.profile.loader import _resolve, preset_names
from vllmtune.profile.yamlio import dump_yaml

MODELINE = "# yaml-language-server: $schema=./profile.schema.json   (vllmtune schema > profile.schema.json)\n"


def new_profile(name: str, preset: str) -> str:
    """The YAML text of a profile called ``name`` with every setting of ``preset``."""
    if not NAME_RE.match(name):
        raise ProfileError(
            [
                Problem(
                    "<init>",
                    None,
                    "name",
                    f"{name!r} is not valid: lowercase letters, digits and '-', at most 63, e.g. llama-8b",
                )
            ]
        )
    if preset not in preset_names():
        raise ProfileError(
            [
                Problem(
                    "<init>", None, "preset", f"unknown preset {preset!r}; choose one of: {', '.join(preset_names())}"
                )
            ]
        )
    doc, _ = _resolve(preset, None, [], Problem(f"preset:{preset}", None, "", ""))
    data = {"name": name, **{k: v for k, v in doc.value.items() if k not in ("name", "extends")}}
    header = (
        f"# vllmtune profile, from the {preset} preset. Check it: vllmtune validate FILE;"
        " see what each lever does: vllmtune explain FILE\n"
    )
    return MODELINE + header + dump_yaml(data)
