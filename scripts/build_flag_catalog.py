#!/usr/bin/env python3
"""Build vllmtune/flags/catalog.json from vLLM's real argument-parser dumps.

Input: a directory laid out like ``shared/vllm-flags`` (``serve/<v>.json``,
``api_server/<v>.json``: every argparse action of that release's parser, and ``catalog.json``:
curated facts argparse does not enforce, such as the accepted quantization methods after
v0.9.2 and the speculative-decoding methods).

Output: a compact catalog. Each option string maps to runs ``[first, last, attr]`` over the
sorted version list, where ``attr`` indexes a de-duplicated table of what the option is in
that run (kind, dest, the whole option group, nargs, choices). Value lists that change by
version (quantization, kv-cache dtypes, speculative methods) are stored the same way.

Usage: python scripts/build_flag_catalog.py [SOURCE_DIR] [-o vllmtune/flags/catalog.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "vllm-flags"
DEFAULT_OUT = ROOT / "vllmtune" / "flags" / "catalog.json"

# argparse action class -> our kind. "bool" has a positive and a negative spelling
# (BooleanOptionalAction: --x/--no-x; EnableDisableAction in 0.33.0: --enable-x/--disable-x).
KINDS = {
    "_StoreTrueAction": "switch",
    "BooleanOptionalAction": "bool",
    "EnableDisableAction": "bool",
    "StoreBoolean": "optbool",  # takes an optional True/False value (old chunked prefill)
    "_StoreAction": "value",
    "_AppendAction": "append",
    "LoRAParserAction": "value",
    "PromptAdapterParserAction": "value",
    "DeprecatedLogConfigFileAction": "value",
}


def vkey(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.lstrip("v").split("."))


def first_line(text: str | None) -> str:
    if not text:
        return ""
    para = text.strip().split("\n\n")[0]
    return " ".join(para.split())


def action_attr(a: dict[str, Any]) -> dict[str, Any] | None:
    kind = KINDS.get(a["action"])
    if kind is None or not a["opts"]:
        return None
    if kind == "value" and a["nargs"] in ("+", "*"):
        kind = "multi"
    elif kind == "value" and a["nargs"] == "?":
        kind = "optvalue"
    attr: dict[str, Any] = {"kind": kind, "dest": a["dest"], "group": list(a["opts"])}
    if a.get("choices"):
        attr["choices"] = [c for c in a["choices"] if c is not None]
    if a.get("deprecated"):
        attr["deprecated"] = True
    return attr


def runs(per_version: list[Any], table: list[Any], index: dict[str, int]) -> list[list[int]]:
    """Compress a per-version list of values (None = absent) into [first, last, id] runs."""
    out: list[list[int]] = []
    for i, value in enumerate(per_version):
        if value is None:
            continue
        key = json.dumps(value, sort_keys=True)
        if key not in index:
            index[key] = len(table)
            table.append(value)
        vid = index[key]
        if out and out[-1][1] == i - 1 and out[-1][2] == vid:
            out[-1][1] = i
        else:
            out.append([i, i, vid])
    return out


def step_values(by_version: dict[str, Any], versions: list[str]) -> list[Any]:
    """Expand a change-point map {"v0.6.0": x, "v0.6.3": y} to one value per version."""
    points = sorted(((vkey(k), v) for k, v in by_version.items()), key=lambda kv: kv[0])
    out: list[Any] = []
    for v in versions:
        cur = None
        for k, val in points:
            if k <= vkey(v):
                cur = val
        out.append(cur)
    return out


def build(source: Path) -> dict[str, Any]:
    versions = sorted((p.stem for p in (source / "serve").glob("*.json")), key=vkey)
    curated = json.loads((source / "catalog.json").read_text())
    table: list[Any] = []
    index: dict[str, int] = {}
    entrypoints: dict[str, Any] = {}
    helps: dict[str, str] = {}
    for ep in ("serve", "api_server"):
        per_opt: dict[str, list[Any]] = {}
        positional: list[Any] = []
        for i, v in enumerate(versions):
            path = source / ep / f"{v}.json"
            actions = json.loads(path.read_text()) if path.exists() else []
            has_pos = False
            for a in actions:
                if not a["opts"] and a["dest"] == "model_tag":
                    has_pos = True
                    continue
                attr = action_attr(a)
                if attr is None:
                    continue
                for opt in a["opts"]:
                    per_opt.setdefault(opt, [None] * len(versions))[i] = attr
                    if a.get("help") and ep == "serve":
                        helps[opt] = first_line(a["help"])
            positional.append(bool(actions) and has_pos)
        entrypoints[ep] = {
            "present": runs([True if (source / ep / f"{v}.json").exists() else None for v in versions], table, index),
            "positional_model": runs([p or None for p in positional], table, index),
            "flags": {opt: runs(vals, table, index) for opt, vals in sorted(per_opt.items())},
        }
    quant = curated["flags"]["--quantization"]
    kv = curated["flags"]["--kv-cache-dtype"]
    spec = curated["speculative_config"]
    deprecated_quant = step_values(quant["deprecated_methods_requiring_allow_flag_by_version"], versions)
    methods = step_values(
        {k: [m for m in v if not m.startswith("(")] if v else None for k, v in spec["methods_by_version"].items()},
        versions,
    )
    keys = step_values(spec["keys_by_version"], versions)
    value_sets = {
        "quantization": runs(step_values(quant["accepted_values_by_version"], versions), table, index),
        "quantization_deprecated": runs(deprecated_quant, table, index),
        "kv_cache_dtype": runs(
            [
                [c for c in cs if c is not None] if cs else None
                for cs in step_values(kv["choices_by_version"], versions)
            ],
            table,
            index,
        ),
        "speculative_methods": runs(methods, table, index),
        "speculative_keys": runs(keys, table, index),
    }
    return {
        "generated_by": "scripts/build_flag_catalog.py",
        "source": "vLLM argparse dumps (shared/vllm-flags) " + versions[0] + ".." + versions[-1],
        "versions": versions,
        "table": table,
        "entrypoints": entrypoints,
        "value_sets": value_sets,
        "help": dict(sorted(helps.items())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed catalog differs from a fresh build")
    args = ap.parse_args(argv)
    text = json.dumps(build(args.source), separators=(",", ":"), sort_keys=True) + "\n"
    if args.check:
        same = args.output.exists() and args.output.read_text() == text
        print("catalog up to date" if same else f"{args.output} is stale: rebuild it")
        return 0 if same else 1
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
