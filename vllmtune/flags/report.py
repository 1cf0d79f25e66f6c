"""``vllmtune flags``: what a vLLM version accepts, and what changed between two versions."""

from __future__ import annotations

from typing import Any

from vllmtune.flags.catalog import Entrypoint, Flag, flag_help, flagset


def _row(f: Flag) -> dict[str, Any]:
    row: dict[str, Any] = {"flag": f.name, "kind": f.kind, "dest": f.dest}
    if len(f.group) > 1:
        row["spellings"] = list(f.group)
    if f.choices:
        row["choices"] = [str(c) for c in f.choices]
    if f.deprecated:
        row["deprecated"] = True
    row["help"] = flag_help(f.name)
    return row


def list_flags(version: str, entrypoint: Entrypoint = "serve", grep: str | None = None) -> list[dict[str, Any]]:
    """Every long option of a version (one row per option group)."""
    fs = flagset(version, entrypoint)
    rows = []
    for name, f in sorted(fs.flags.items()):
        if name != f.group[0] or not name.startswith("--"):
            continue
        if grep and grep.lower() not in (name + " " + flag_help(name)).lower():
            continue
        rows.append(_row(f))
    return rows


def diff_flags(old: str, new: str, entrypoint: Entrypoint = "serve") -> dict[str, list[Any]]:
    """Options added, removed and changed (kind, spellings or choices) from old to new."""
    a, b = flagset(old, entrypoint), flagset(new, entrypoint)
    names_a = {n for n in a.flags if n.startswith("--")}
    names_b = {n for n in b.flags if n.startswith("--")}
    changed = []
    for n in sorted(names_a & names_b):
        fa, fb = a.flags[n], b.flags[n]
        what = []
        if fa.kind != fb.kind:
            what.append(f"kind {fa.kind} -> {fb.kind}")
        if fa.group != fb.group:
            what.append(f"spellings {'/'.join(fa.group)} -> {'/'.join(fb.group)}")
        if set(fa.choices or ()) != set(fb.choices or ()):  # the same choices reordered accept the same values
            gone = sorted(map(str, set(fa.choices or ()) - set(fb.choices or ())))
            new_c = sorted(map(str, set(fb.choices or ()) - set(fa.choices or ())))
            if fa.choices and not fb.choices:
                what.append("choices no longer enforced by argparse")
            elif fb.choices and not fa.choices:
                what.append(f"choices now enforced by argparse: {','.join(new_c)}")
            else:
                what.append(
                    "choices" + (f" +{','.join(new_c)}" if new_c else "") + (f" -{','.join(gone)}" if gone else "")
                )
        if what:
            changed.append({"flag": n, "change": "; ".join(what)})
    values = {}
    for vs in ("quantization", "kv_cache_dtype", "speculative_methods"):
        if a.values(vs) is not None and b.values(vs) is None:
            continue  # no list in the new version (any registered value is accepted): nothing was removed
        va, vb = set(a.values(vs) or ()), set(b.values(vs) or ())
        if va != vb:
            values[vs] = {"added": sorted(vb - va), "removed": sorted(va - vb)}
    return {
        "added": sorted(names_b - names_a),
        "removed": sorted(names_a - names_b),
        "changed": changed,
        "values": [{"set": k, **v} for k, v in values.items()],
    }
