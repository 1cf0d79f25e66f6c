"""The search space of ``vllmtune tune``: knobs (profile fields that are one vLLM argument of the
pinned version), their values, and the configurations pruned before any server starts.

``--space PATH=VALUES``:

- ``a..b``: integers. A narrow range (at most 16 values) is every integer; a wider one is the
  powers of two between a and b, and a and b themselves (token budgets and sequence counts act on
  a log scale: 2048, 4096, 8192, 16384). ``a..b:STEP`` is every STEP from a (and b).
- ``a|b|c``: these values (numbers, words, true/false); ``true|false`` (or ``bool``) for a switch.
- ``speculative.num_tokens`` 0 means speculative decoding off (the section is removed).

The input profile's own value of each knob is always one of its values, so the input
configuration is in the space (it is measured first). A knob must exist in the pinned vLLM
version (:mod:`vllmtune.flags`); an unknown path is an error listing the valid knobs.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vllmtune.errors import ProfileError, TuneError
from vllmtune.profile.fieldmeta import vllm_dests
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import deep_merge, validate_document
from vllmtune.profile.models import Profile
from vllmtune.profile.yamlio import Located

# where knobs live: the levers' sections and the memory share (the model, the server, LoRA and the
# parallelism, which changes the GPUs a server takes, are not tuned)
TUNABLE_PREFIXES = (
    "batching",
    "speculative",
    "quantization.kv_cache_dtype",
    "prefix_caching",
    "resources.gpu_memory_utilization",
)
NARROW = 16  # an integer range with at most this many values is every integer
MAX_CONFIGS = 4096  # the space is enumerated to prune it before any server starts
SPACE_HINT = "write PATH=a..b, PATH=a..b:STEP or PATH=a|b|c, e.g. --space batching.max_num_seqs=64..512"


@dataclass(frozen=True)
class KnobKind:
    """A field the tuner may set: its path, its value type and, for a word, the allowed words."""

    path: tuple[str, ...]
    kind: type  # int, float, bool or str
    allowed: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Knob:
    """One dimension of the space: its values in order (ordered: a numeric range, searched as one)."""

    kind: KnobKind
    values: tuple[Any, ...]
    ordered: bool

    @property
    def name(self) -> str:
        return self.kind.name


Config = tuple[Any, ...]  # one value per knob, in the knobs' order


def _field_type(path: tuple[str, ...]) -> Any:
    model: Any = Profile
    ann: Any = None
    for part in path:
        ann = model.model_fields[part].annotation
        model = _unwrap(ann)
    return _unwrap(ann)


def _unwrap(ann: Any) -> Any:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(ann) if a is not type(None)]
        return _unwrap(rest[0]) if len(rest) == 1 else ann
    return ann


def _tunable(lp: LoadedProfile) -> dict[str, KnobKind]:
    """The knobs this profile's pinned vLLM version has, by dotted path."""
    from vllmtune.flags.catalog import flagset

    flags = flagset(lp.profile.vllm.version.lstrip("v"))
    out: dict[str, KnobKind] = {}
    for path, dest in vllm_dests(Profile).items():
        name = ".".join(path)
        # speculative knobs are keys of --speculative-config where the version has it (plan/server.py)
        spelt = flags.by_dest(dest) or (path[0] == "speculative" and flags.by_dest("speculative_config"))
        if not name.startswith(TUNABLE_PREFIXES) or not spelt:
            continue
        tp = _field_type(path)
        if typing.get_origin(tp) is typing.Literal:
            out[name] = KnobKind(path, str, tuple(str(a) for a in typing.get_args(tp)))
        elif tp in (int, float, bool):
            out[name] = KnobKind(path, tp)
        elif tp is str and dest == "kv_cache_dtype":
            words = flags.values("kv_cache_dtype")
            out[name] = KnobKind(path, str, tuple(words) if words else None)
    return out


def current(lp: LoadedProfile, path: tuple[str, ...]) -> Any:
    """The input profile's value at ``path`` (None when unset; speculative.num_tokens 0 when off)."""
    value: Any = lp.profile
    for part in path:
        if value is None:
            return 0 if path == ("speculative", "num_tokens") else None
        value = getattr(value, part)
    return value


def _int(text: str, whole: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise TuneError(f"--space {whole!r}: {text.strip()!r} is not an integer", hint=SPACE_HINT) from None


def _word(text: str, kind: KnobKind, whole: str) -> Any:
    word = text.strip()
    if kind.kind is bool:
        if word.lower() not in ("true", "false"):
            raise TuneError(f"--space {whole!r}: {kind.name} is true or false, not {word!r}")
        return word.lower() == "true"
    if kind.kind is int:
        return _int(word, whole)
    if kind.kind is float:
        try:
            return float(word)
        except ValueError:
            raise TuneError(f"--space {whole!r}: {word!r} is not a number", hint=SPACE_HINT) from None
    if kind.allowed is not None and word not in kind.allowed:
        raise TuneError(f"--space {whole!r}: {word!r} is not one of {', '.join(kind.allowed)}")
    return word


def int_range(lo: int, hi: int, step: int | None) -> tuple[int, ...]:
    """The values of ``lo..hi`` (``:step``), as the module docstring says."""
    if step is not None:
        return tuple(sorted({*range(lo, hi + 1, step), hi}))
    if hi - lo + 1 <= NARROW:
        return tuple(range(lo, hi + 1))
    powers = {1 << k for k in range(max(hi, 1).bit_length() + 1) if lo <= 1 << k <= hi}
    return tuple(sorted(powers | {lo, hi}))


def parse_knob(text: str, lp: LoadedProfile) -> Knob:
    """One ``--space PATH=VALUES``; a TuneError naming the bad part otherwise."""
    path, eq, spec = text.partition("=")
    path, spec = path.strip(), spec.strip()
    if not eq or not path or not spec:
        raise TuneError(f"--space {text!r}: not PATH=VALUES", hint=SPACE_HINT)
    knobs = _tunable(lp)
    kind = knobs.get(path)
    if kind is None:
        shown = [k for k, v in knobs.items() if v.path[0] != "speculative" or lp.profile.speculative is not None]
        raise TuneError(
            f"--space {text!r}: {path} is not a knob vllmtune tune can set for vLLM {lp.profile.vllm.version}",
            hint=f"valid knobs: {', '.join(shown)}",
        )
    if kind.path[0] == "speculative" and lp.profile.speculative is None:
        raise TuneError(
            f"--space {text!r}: the profile has no speculative section",
            hint="add one (method and, for draft_model, model) to tune its knobs",
        )
    values: tuple[Any, ...]
    if ".." in spec:
        if kind.kind is not int:
            raise TuneError(f"--space {text!r}: a..b is for integers; {path} takes a|b|c")
        lo_text, _, rest = spec.partition("..")
        hi_text, colon, step_text = rest.partition(":")
        lo, hi = _int(lo_text, text), _int(hi_text, text)
        step = _int(step_text, text) if colon else None
        if lo > hi or lo < 0 or (step is not None and step < 1):
            raise TuneError(f"--space {text!r}: the range must go from a low to a high value, with a step >= 1")
        values, ordered = int_range(lo, hi, step), True
    elif spec.lower() == "bool" and kind.kind is bool:
        values, ordered = (False, True), False
    else:
        values = tuple(dict.fromkeys(_word(w, kind, text) for w in spec.split("|")))
        ordered = kind.kind in (int, float)
    if path == "speculative.num_tokens" and any(v > 64 for v in values):
        raise TuneError(f"--space {text!r}: speculative.num_tokens is at most 64")
    return _with_current(Knob(kind, values, ordered), lp)


def _with_current(knob: Knob, lp: LoadedProfile) -> Knob:
    now = current(lp, knob.kind.path)
    if now is None or now in knob.values:
        return knob
    values = (*knob.values, now)
    return Knob(knob.kind, tuple(sorted(values)) if knob.ordered else values, knob.ordered)


def default_space(lp: LoadedProfile) -> list[Knob]:
    """The space when no --space is given: the batching knobs (token budget and sequences as powers
    of two), chunked prefill, and speculative.num_tokens 0..6 when the profile has the section;
    only those the pinned version has."""
    knobs = _tunable(lp)
    wanted = {
        "batching.max_num_batched_tokens": "1024..16384",
        "batching.max_num_seqs": "16..512",
        "batching.chunked_prefill": "true|false",
    }
    if lp.profile.speculative is not None:
        wanted["speculative.num_tokens"] = "0..6"
    return [parse_knob(f"{path}={spec}", lp) for path, spec in wanted.items() if path in knobs]


def parse_space(texts: list[str], lp: LoadedProfile) -> list[Knob]:
    """Every --space, or the default space; a knob given twice is an error."""
    if not texts:
        return default_space(lp)
    knobs = [parse_knob(t, lp) for t in texts]
    seen: set[str] = set()
    for k in knobs:
        if k.name in seen:
            raise TuneError(f"--space {k.name} is given twice", hint="give each knob once, with all its values")
        seen.add(k.name)
    return knobs


def size(knobs: list[Knob]) -> int:
    n = 1
    for k in knobs:
        n *= len(k.values)
    return n


def _configs(knobs: list[Knob]) -> Iterator[Config]:
    return itertools.product(*(k.values for k in knobs))


def input_config(knobs: list[Knob], lp: LoadedProfile) -> Config:
    return tuple(current(lp, k.kind.path) for k in knobs)


def changes(knobs: list[Knob], config: Config, lp: LoadedProfile) -> dict[str, Any]:
    """The fields ``config`` changes from the input, nested as a profile writes them."""
    out: dict[str, Any] = {}
    for knob, value in zip(knobs, config, strict=True):
        path = knob.kind.path
        if value == current(lp, path):
            continue
        if path == ("speculative", "num_tokens") and value == 0:
            out["speculative"] = None
            continue
        if out.get(path[0], {}) is None:  # speculative is off: its other knobs do not apply
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def describe(knobs: list[Knob], config: Config) -> str:
    """``max_num_seqs=64 num_tokens=0``: a configuration in a line (the knobs' last names)."""
    return " ".join(f"{k.kind.path[-1]}={_show(v)}" for k, v in zip(knobs, config, strict=True))


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Pruned:
    config: Config
    reason: str


def check(knobs: list[Knob], config: Config, lp: LoadedProfile) -> str | None:
    """Why ``config`` cannot run (the profile checks, then ``fit``), or None."""
    from vllmtune.fit import fit_problems
    from vllmtune.plan.planner import build_plan

    doc = deep_merge(lp.located.value, changes(knobs, config, lp))
    try:
        trial = validate_document(Located(doc, dict(lp.located.lines)), lp.source, lp.chain)
    except ProfileError as exc:
        return "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems)
    problems = fit_problems(trial, build_plan(trial), trial.profile.resources.gpu_type)
    if problems:
        return "fit: " + "; ".join(p.split(": ", 2)[-1] for p in problems)
    return None


def prune(knobs: list[Knob], lp: LoadedProfile) -> tuple[list[Config], list[Pruned]]:
    """Every configuration of the space: those that can run, and the pruned ones with their reason."""
    n = size(knobs)
    if n > MAX_CONFIGS:
        raise TuneError(
            f"the space has {n:,} configurations; vllmtune tune enumerates at most {MAX_CONFIGS:,} to prune them "
            "before any server starts",
            hint="narrow a range, give a :STEP, or tune fewer knobs",
        )
    valid: list[Config] = []
    pruned: list[Pruned] = []
    seen: dict[str, Config] = {}
    for config in _configs(knobs):
        key = repr(sorted(changes(knobs, config, lp).items()))
        if key in seen:  # the same profile as another config (a knob of a section switched off)
            pruned.append(Pruned(config, f"the same profile as {describe(knobs, seen[key])}"))
            continue
        seen[key] = config
        reason = check(knobs, config, lp)
        if reason is None:
            valid.append(config)
        else:
            pruned.append(Pruned(config, reason))
    return valid, pruned
