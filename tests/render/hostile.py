"""Hostile profiles for the render matrix: every string slot of the profile schema (walked
from the pydantic models, so a new field is covered without editing a list), the hostile
values, and the oracles that read each target's output the way its consumer does.

The oracles never call the renderers' helpers: the docker script runs under real bash with a
recording ``docker`` on PATH, compose is interpolated by the compose-spec rules and validated
by the compose-spec JSON schema check-jsonschema ships, and Kubernetes containers get
Kubernetes' own ``$(VAR)`` expansion (tests/render/k8s_expand.py)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tests.render.k8s_expand import FROM_SECRET, as_run
from vllmtune.profile import models
from vllmtune.profile.models import Profile

Path_ = tuple[str | int, ...]

# A profile with every optional part switched on that one-node targets can render together:
# sidecars (cache proxy + Redis), LoRA, a quantize recipe, both secrets, autoscaling, the dashboard.
BASE: dict[str, Any] = {
    "name": "hostile",
    "description": "m0q",
    "vllm": {"version": "0.32.0"},
    "model": {"id": "org/base-model", "served_name": "srvname"},
    "prompt_cache": {"enabled": True, "backend": "redis"},
    "routing": {"policy": "round_robin"},
    "lora": {"adapters": [{"name": "a1", "source": "org/lora-a1"}]},
    "quantization": {"checkpoint": "org/ckpt-w4a16", "recipe": {}},
    "server": {
        "hf_token": {"env": "HF_TOKEN"},
        "api_key": {"env": "VLLM_API_KEY"},
        "env": {"FOO": "bar"},
        "extra_args": ["--chat-template=tpl"],
    },
    "deploy": {
        "kubernetes": {
            "autoscaling": {"max_replicas": 2},
            "monitoring": {"dashboard": True},
            "labels": {"team": "ml"},
            "node_selector": {"pool": "gpu"},
            "network_policy": {"enabled": True, "allow_from": [{"app": "gw"}]},
        }
    },
}

# The least a model must hold when the walk reaches it and the base profile does not have it.
COMPANIONS: dict[type[BaseModel], dict[str, Any]] = {
    models.SpeculativeSection: {"method": "ngram"},
    models.SecretRef: {"env": "SOME_SECRET_VAR"},
    models.SecretKeyRef: {"name": "s1", "key": "k1"},
}

# Slots whose checks need a meaningful value (a version, a method vLLM knows, an existing
# file): the benign value the hostile ones are built from. Every other slot gets a marker.
MEANINGFUL: dict[str, str] = {
    "vllm.version": "0.32.0",
    "quantization.method": "compressed-tensors",
    "quantization.kv_cache_dtype": "fp8",
    "speculative.method": "ngram",
    "resources.gpu_type": "H100-80GB",
    "extends": "preset-that-is-not-there",
    "model.id": "org/base-model",
    "quantization.checkpoint": "org/ckpt-w4a16",
    "server.extra_args[0]": "--chat-template=m0q",
    "resources.shm_size": "4g",
    "deploy.kubernetes.resources.cpu": "4",
    "deploy.kubernetes.resources.memory": "32Gi",
    "deploy.kubernetes.probes.startup_timeout": "20m",
}


@dataclass(frozen=True)
class Slot:
    """One place a profile holds a string: a field value, a list item or a mapping key."""

    path: Path_  # in the profile document; a key slot's last part is the key itself
    key: bool
    pattern: str | None
    literal: tuple[str, ...]  # a Literal's choices (empty: free text)
    base: str  # a valid value the hostile ones are made from

    @property
    def name(self) -> str:
        return dotted(self.path[:-1]) + ".<key>" if self.key else dotted(self.path)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """(type, metadata) without Optional and Annotated."""
    meta: list[Any] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp, *extra = typing.get_args(tp)
            meta += extra
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                raise AssertionError(f"the walk does not know the union {tp}: teach tests/render/hostile.py")
            tp = args[0]
        else:
            return tp, meta


def _pattern(meta: list[Any]) -> str | None:
    for m in meta:
        if isinstance(m, FieldInfo):
            for inner in m.metadata:
                if getattr(inner, "pattern", None):
                    return str(inner.pattern)
        if getattr(m, "pattern", None):
            return str(m.pattern)
    return None


def string_slots() -> list[Slot]:
    """Every string slot of the profile schema, from the pydantic models."""
    found: list[Slot] = []
    counter = iter(range(1, 10_000))

    def base_for(path: Path_, pattern: str | None, choices: tuple[str, ...], default: Any) -> str:
        if choices:
            return choices[0]
        if dotted(path) in MEANINGFUL:
            return MEANINGFUL[dotted(path)]
        marker = f"m{next(counter)}q"  # unique, so that replacing it replaces this slot only
        if pattern is None or re.search(pattern, marker):
            return marker
        in_base = _get(BASE, path)
        if isinstance(in_base, str):
            return in_base
        if isinstance(default, str):
            return default
        raise AssertionError(f"{dotted(path)}: no valid value for pattern {pattern}: add one to MEANINGFUL")

    def walk(tp: Any, meta: list[Any], path: Path_, default: Any) -> None:
        tp, more = _unwrap(tp)
        meta = meta + more
        origin = typing.get_origin(tp)
        if tp is str:
            pattern = _pattern(meta)
            found.append(Slot(path, False, pattern, (), base_for(path, pattern, (), default)))
        elif origin is Literal:
            choices = tuple(a for a in typing.get_args(tp) if isinstance(a, str))
            in_base = _get(BASE, path)
            if choices:
                found.append(Slot(path, False, None, choices, in_base if in_base in choices else choices[0]))
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, info in tp.model_fields.items():
                walk(info.annotation, list(info.metadata), (*path, name), info.default)
        elif origin is list:
            (item,) = typing.get_args(tp)
            walk(item, [], (*path, 0), None)
        elif origin is dict:
            k, v = typing.get_args(tp)
            if _unwrap(k)[0] is str:
                kpat = _pattern(_unwrap(k)[1])
                found.append(Slot((*path, "KEYMARK"), True, kpat, (), "keymark"))
            walk(v, [], (*path, "k0q"), None)
        # numbers and booleans hold no strings

    walk(Profile, [], (), None)
    return found


def _get(doc: Any, path: Path_) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _model_at(path: Path_) -> type[BaseModel] | None:
    tp: Any = Profile
    for part in path:
        tp, _ = _unwrap(tp)
        if isinstance(part, int) or typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            tp = tp.model_fields[part].annotation
    tp, _ = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def with_value(slot: Slot, value: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The base profile with ``value`` in ``slot`` (parents created as the schema needs)."""
    doc = copy.deepcopy(BASE if base is None else base)
    node: Any = doc
    parents, last = slot.path[:-1], slot.path[-1]
    for i, part in enumerate(parents):
        nxt = slot.path[i + 1]
        if isinstance(part, int):
            while len(node) <= part:
                node.append({})
            node = node[part]
            continue
        if part not in node or node[part] is None:
            if isinstance(nxt, int):
                node[part] = []
            else:
                node[part] = copy.deepcopy(COMPANIONS.get(_model_at(slot.path[: i + 1]), {}))  # type: ignore[arg-type]
        node = node[part]
    if slot.key:
        node[value] = "v"
    elif isinstance(last, int):
        if len(node) <= last:
            node.append(value)
        else:
            node[last] = value
    else:
        node[last] = value
    return doc


# name -> how it turns a valid value into a hostile one
HOSTILE: dict[str, Any] = {
    "NUL": lambda b: b + "\x00x",
    "CR": lambda b: b + "\rx",
    "bare LF": lambda b: b + "\nx",
    "LF then a command": lambda b: b + "\ndocker pwned\n",
    "U+0085": lambda b: b + "\x85x",
    "U+2028": lambda b: b + "\u2028x",
    "U+2029": lambda b: b + "\u2029x",
    "C0 controls": lambda b: b + "".join(chr(c) for c in range(1, 32) if c not in (10, 13)),
    "C1 controls": lambda b: b + "".join(chr(c) for c in range(0x80, 0xA0) if c != 0x85),
    "DEL": lambda b: b + "\x7f",
    "lone surrogate": lambda b: b + "\ud800",
    "$(HF_TOKEN)": lambda b: b + "$(HF_TOKEN)",
    "${VAR}": lambda b: b + "${HF_TOKEN}",
    "$VAR": lambda b: b + "$HF_TOKEN",
    "$$": lambda b: b + "$$",
    "command substitution": lambda b: b + "`docker pwned`$(docker pwned)",
    "leading -": lambda b: "-" + b,
    "leading --": lambda b: "--" + b,
    "quotes": lambda b: b + "'\"",
    "backslashes": lambda b: b + "\\\\n\\",
    "YAML indicators": lambda b: b + ": #&a *a !x {[|>%@",
    "very long": lambda b: b + "x" * 5000,
}


def profile_text(doc: dict[str, Any]) -> str:
    """The document as YAML that reads back exactly (escapes for every control character)."""
    text = yaml.safe_dump(doc, allow_unicode=False, sort_keys=False, width=1_000_000)
    assert yaml.safe_load(text) == doc
    return text


# ---------------------------------------------------------------- the oracles

RECORDER = r"""#!/usr/bin/env bash
# A recording docker: appends argc and each argument, NUL-terminated, to $DOCKER_LOG
# (no argument can hold a NUL, so the record is exact). Prints nothing, succeeds.
{ printf '%d\0' "$#"; printf '%s\0' "$@"; } >>"$DOCKER_LOG"
"""


def recorder_dir(tmp: Path) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "docker"
    exe.write_text(RECORDER)
    exe.chmod(0o755)
    return bin_dir


SECRET_VALUE = FROM_SECRET  # what a variable set from a Secret holds in every oracle


def run_script(script: str, tmp: Path, secrets: list[str]) -> list[list[str]]:
    """Run a rendered docker script under real bash; every ``docker`` call's argv."""
    path = tmp / "run.sh"
    path.write_bytes(script.encode("utf-8"))
    log = tmp / "docker.log"
    log.write_bytes(b"")
    env = {
        "PATH": f"{recorder_dir(tmp)}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp),
        "DOCKER_LOG": str(log),
        "HF_CACHE": "hf-cache",  # relative to the run directory: the same text in every run
        **{name: SECRET_VALUE for name in secrets},
    }
    proc = subprocess.run(["bash", str(path)], capture_output=True, env=env, timeout=60, cwd=tmp)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    parts = log.read_bytes().split(b"\0")[:-1]
    calls, i = [], 0
    while i < len(parts):
        n = int(parts[i])
        calls.append([p.decode("utf-8", "surrogateescape") for p in parts[i + 1 : i + 1 + n]])
        i += 1 + n
    return calls


def json_lines(calls: list[list[str]]) -> str:
    """The recorded calls as JSON lines (what a failure shows)."""
    return "".join(json.dumps(c) + "\n" for c in calls)


_COMPOSE_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def compose_interpolate(text: str, env: dict[str, str]) -> str:
    """The compose-spec interpolation (compose-spec/spec.md, "Interpolation"): ``$$`` is a
    literal ``$``; ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$VAR`` substitute;
    a ``$`` that starts none of these is an error for Compose."""
    out, pos = [], 0
    for m in _COMPOSE_VAR.finditer(text):
        out.append(text[pos : m.start()])
        if "$" in text[pos : m.start()]:
            raise AssertionError(f"compose rejects an unescaped '$' in {text!r}")
        name = m.group(1) or m.group(4)
        if m.group(0) == "$$":
            out.append("$")
        elif name in env:
            out.append(env[name])
        elif m.group(2) in (":?", "?"):
            raise AssertionError(f"compose stops: {name} is unset ({m.group(3)})")
        elif m.group(2) in (":-", "-"):
            out.append(m.group(3))
        pos = m.end()
    out.append(text[pos:])
    if "$" in text[pos:]:
        raise AssertionError(f"compose rejects an unescaped '$' in {text!r}")
    return "".join(out)


def compose_as_run(doc: Any, env: dict[str, str]) -> Any:
    """Every string of a compose document as Compose hands it on (interpolated)."""
    if isinstance(doc, str):
        return compose_interpolate(doc, env)
    if isinstance(doc, dict):
        return {compose_as_run(k, env): compose_as_run(v, env) for k, v in doc.items()}
    if isinstance(doc, list):
        return [compose_as_run(v, env) for v in doc]
    return doc


def compose_schema() -> dict[str, Any]:
    """The compose-spec JSON schema as check-jsonschema vendors it (``--builtin-schema
    vendor.compose-spec``)."""
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return dict(json.loads(path.read_text()))


def k8s_containers(obj: Any) -> list[dict[str, Any]]:
    """Every container (and init container) in a Kubernetes object tree."""
    if isinstance(obj, dict):
        here = [obj] if "image" in obj and "name" in obj and isinstance(obj.get("image"), str) else []
        return here + [c for v in obj.values() for c in k8s_containers(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in k8s_containers(v)]
    return []


def k8s_as_run(obj: Any) -> Any:
    """The object tree with each container's command/args/env as the kubelet hands them over."""
    if isinstance(obj, dict):
        if "image" in obj and "name" in obj and isinstance(obj.get("image"), str):
            obj = as_run(obj)
        return {k: k8s_as_run(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [k8s_as_run(v) for v in obj]
    return obj
