"""Load a profile file: read, parse with lines, resolve ``extends``, validate, check.

Everything a user can get wrong in a profile comes out of here as one ProfileError listing
every problem with ``file:line: key.path: message``.
"""

from __future__ import annotations

import json
import os
import stat
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vllmtune.errors import Problem, ProfileError
from vllmtune.profile.base import DURATION_RE, ENV_NAME_RE, NAME_RE, SIZE_RE
from vllmtune.profile.build import build_models
from vllmtune.profile.loaded import LoadedProfile as LoadedProfile
from vllmtune.profile.models import Profile
from vllmtune.profile.yamlio import Located, format_path, load_yaml
from vllmtune.util import pkgdata

PRESET_DIR = "presets"  # inside the package: vllmtune/presets/NAME.yaml
SECRET_FIELDS = ("api_key", "hf_token", "redis_url")
MAX_PROFILE_BYTES = 1024 * 1024


def preset_names() -> list[str]:
    """Built-in presets, by name."""
    return [n[:-5] for n in pkgdata.list_names(PRESET_DIR) if n.endswith(".yaml")]


def preset_text(name: str) -> str:
    """The YAML text of a built-in preset."""
    return pkgdata.read_text(PRESET_DIR, f"{name}.yaml")


def _read(ref: str, base: Path | None, requester: Problem | None) -> tuple[str, str, Path | None]:
    """Resolve a profile reference: the top-level file, or an ``extends`` value (a path
    relative to the including file when it looks like a path, else a preset name).

    Returns (display name, text, directory against which the next ``extends`` resolves).
    """
    is_path = requester is None or (not ref.startswith("preset:") and ("/" in ref or ref.endswith((".yaml", ".yml"))))
    if not is_path:
        name = ref.removeprefix("preset:")  # `extends: preset:NAME`, the CLI's spelling, or just NAME
        if name in preset_names():
            return f"preset:{name}", preset_text(name), None
        raise _missing(ref, f"preset:{name}", requester)
    path = Path(ref) if base is None or Path(ref).is_absolute() else base / ref
    try:
        data = _read_bounded(path, ref, requester)
    except FileNotFoundError:
        raise _missing(ref, str(path), requester) from None
    except IsADirectoryError:
        raise ProfileError([Problem(str(path), None, "", "is a directory, not a profile file")]) from None
    except OSError as exc:
        raise ProfileError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return str(path), _decode(data, str(path)), path.parent


def _read_bounded(path: Path, ref: str, requester: Problem | None) -> bytes:
    """At most MAX_PROFILE_BYTES; an ``extends`` must name a regular file (not /dev/zero, a FIFO...)."""
    # O_NONBLOCK for an extends: opening a FIFO must not wait for a writer (it is refused below).
    flags = os.O_RDONLY | (os.O_NONBLOCK if requester is not None else 0)
    with os.fdopen(os.open(path, flags), "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(str(path))
        if requester is not None and not stat.S_ISREG(st.st_mode):
            raise ProfileError(
                [
                    Problem(
                        requester.file,
                        requester.line,
                        "extends",
                        f"{ref!r} is not a regular file; extend a profile file or a preset",
                    )
                ]
            )
        data = f.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        shown = Problem(requester.file, requester.line, "extends", f"{ref!r} ") if requester else None
        limit = f"is larger than {MAX_PROFILE_BYTES // 1024} KiB; a profile is a few KiB of YAML"
        if shown is None:
            raise ProfileError([Problem(str(path), None, "", limit)])
        raise ProfileError([Problem(shown.file, shown.line, "extends", shown.message + limit)])
    return data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        load_yaml(data, name)  # raises ProfileError naming the offending byte and line
        raise  # pragma: no cover


def _missing(ref: str, shown: str, requester: Problem | None) -> ProfileError:
    import difflib

    presets = preset_names()
    close = difflib.get_close_matches(ref.removeprefix("preset:"), presets, n=1)
    hint = (
        f"; did you mean the preset {close[0]!r}?"
        if close
        else (f"; give a path relative to the file or a preset ({', '.join(presets)})")
    )
    if requester is None:
        return ProfileError([Problem(shown, None, "", "no such file")])
    return ProfileError([Problem(requester.file, requester.line, "extends", f"{ref!r} not found ({shown}){hint}")])


def deep_merge(parent: Any, child: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by the child."""
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for k, v in child.items():
            out[k] = deep_merge(parent[k], v) if k in parent else v
        return out
    return child


def _resolve(ref: str, base: Path | None, chain: list[str], requester: Problem | None) -> tuple[Located, list[str]]:
    name, text, next_base = _read(ref, base, requester)
    key = name if name.startswith("preset:") else str(Path(name).resolve())
    keys = [c if c.startswith("preset:") else str(Path(c).resolve()) for c in chain]
    if key in keys:
        loop = " -> ".join([*chain, name])
        assert requester is not None  # the top-level file cannot be its own parent
        raise ProfileError(
            [Problem(requester.file, requester.line, "extends", f"cycle: {loop}; remove one of these extends")]
        )
    doc = load_yaml(text, name)
    if doc.value is None:
        raise ProfileError([Problem(name, 1, "", "empty file: a profile needs at least name, vllm and model")])
    if not isinstance(doc.value, dict):
        kind = type(doc.value).__name__
        raise ProfileError([Problem(name, 1, "", f"a profile must be a mapping of keys, got a {kind}")])
    chain = [*chain, name]
    parent_ref = doc.value.get("extends")
    if parent_ref is None:
        return doc, chain
    file, line = doc.where(("extends",))
    if not isinstance(parent_ref, str) or not parent_ref:
        raise ProfileError([Problem(file, line, "extends", "must be a file path or a preset name")])
    parent, chain = _resolve(parent_ref, next_base, chain, Problem(file, line, "extends", ""))
    merged = Located(deep_merge(parent.value, {k: v for k, v in doc.value.items() if k != "extends"}))
    merged.lines = dict(parent.lines)
    for path, where in doc.lines.items():  # the child's lines win where the child sets a key
        merged.lines[path] = where
    merged.value["extends"] = parent_ref
    return merged, chain


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (for did-you-mean)."""
    model: Any = Profile
    for part in loc:
        if isinstance(part, int):  # an item of a list: _unwrap already stepped into the item's model
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _unwrap(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(ann):
            if arg is not type(None):
                return _unwrap(arg)
    if origin is list:
        return _unwrap(typing.get_args(ann)[0])
    return ann


_TYPE_WORDS = {
    "string_type": "a string (quote it)",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping of keys",
    "list_type": "a list",
    "model_type": "a mapping of keys",
}


def _message(err: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {json.dumps(value, default=str)}"
    if kind == "literal_error":
        return f"{json.dumps(value, default=str)} is not allowed; {err['msg'][0].lower()}{err['msg'][1:]}"
    if kind == "string_pattern_mismatch":
        return f"{json.dumps(value, default=str)} is not valid ({_pattern_words(err)})"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{err['msg']} (got {json.dumps(value, default=str)})"


_PATTERN_WORDS = {
    NAME_RE.pattern: "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63",
    ENV_NAME_RE.pattern: "an environment variable name: letters, digits, '_'",
    DURATION_RE.pattern: "a duration like 30s, 15m, 24h or 7d",
    SIZE_RE.pattern: "a size like 16g, 2Gi or 512m",
}


def _pattern_words(err: Any) -> str:
    # by the pattern, not the field's name: LoraAdapter.name is no Kubernetes name
    pattern = err["ctx"]["pattern"]
    return _PATTERN_WORDS.get(pattern, f"must match {pattern}")


def _validation_problems(exc: ValidationError, doc: Located, source: str) -> list[Problem]:
    """Turn pydantic errors into located problems, with did-you-mean for unknown keys."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        file, line = doc.where(loc)
        if loc and loc[-1] in SECRET_FIELDS and err["type"] == "model_type":
            msg = (
                "a literal secret is not allowed in a profile; reference it instead: "
                "{env: NAME} (docker, compose) and/or {secret: {name: S, key: K}} (kubernetes)"
            )
        elif err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            allowed = sorted(model.model_fields) if model else []
            import difflib

            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
            msg = f"unknown key; {hint}"
        else:
            msg = _message(err)
        problems.append(Problem(file or source, line, format_path(loc), msg))
    problems.sort(key=lambda p: (p.file, p.line or 0, p.path))
    return problems


def load_profile(path: str | Path) -> LoadedProfile:
    """Read and validate a profile file (or ``preset:NAME``); raise ProfileError."""
    ref = str(path)
    if ref.startswith("preset:"):
        doc, chain = _resolve(ref.removeprefix("preset:"), None, [], Problem(ref, None, "", ""))
    else:
        doc, chain = _resolve(ref, None, [], None)
    return validate_document(doc, chain[0], chain)


def validate_document(doc: Located, source: str, chain: list[str] | None = None) -> LoadedProfile:
    """Validate an already parsed document and run the cross-field checks."""
    try:
        build_models(Profile)
        profile = Profile.model_validate(doc.value)
    except ValidationError as exc:
        raise ProfileError(_validation_problems(exc, doc, source)) from None
    loaded = LoadedProfile(profile=profile, source=source, located=doc, chain=chain or [source])
    from vllmtune.profile.checks import run_checks

    errors, warnings = run_checks(loaded)
    if errors:
        raise ProfileError(errors)
    loaded.warnings = warnings
    return loaded
