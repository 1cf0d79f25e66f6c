"""``vllmtune diff`` and ``vllmtune render-check``: what changes between two profiles, and
whether committed rendered files still match their profiles."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from vllmtune.argdiff import describe, flag_key
from vllmtune.errors import DiffError
from vllmtune.levers import BY_LABEL
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import TARGETS, render, resolve_target
from vllmtune.render import target as target_record

RENDER_MAP = ".vllmtune-render.yaml"


def _lever_changes(a: DeploymentPlan, b: DeploymentPlan) -> list[str]:
    """Changes in words: levers first, then what else moved."""
    out = []
    for (label, sa, _), (_, sb, _) in zip(a.levers, b.levers, strict=True):
        if sa != sb:
            out.append(f"{BY_LABEL[label].name}: {sa} -> {sb}")
    for label, va, vb in (
        ("vLLM", a.vllm_version, b.vllm_version),
        ("image", a.image, b.image),
        ("model", a.model, b.model),
        ("served name", a.served_name, b.served_name),
        ("GPUs", a.gpus, b.gpus),
        ("port", a.port, b.port),
        ("replicas", a.k8s_replicas, b.k8s_replicas),
    ):
        if va != vb:
            out.append(f"{label}: {va} -> {vb}")
    # every other flag in words; the flags of a lever switched on/off are its line above
    switched = frozenset(
        flag_key(f) for (_, sa, fa), (_, sb, fb) in zip(a.levers, b.levers, strict=True) if sa != sb for f in fa + fb
    )
    # said above as model / served name / port
    endpoint = frozenset(
        ("args", *(f for v in (a.vllm, b.vllm) for d in ("model", "served_model_name", "port") if (f := v.flag(d))))
    )
    out += describe(a.args, b.args, skip=switched | endpoint)
    if dict(a.env) != dict(b.env) or [s.name for s in a.secret_env] != [s.name for s in b.secret_env]:
        out.append("environment changed")
    return out


def unified(a_text: str, b_text: str, a_name: str, b_name: str) -> str:
    """A unified diff ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            a_text.splitlines(keepends=True), b_text.splitlines(keepends=True), fromfile=a_name, tofile=b_name
        )
    )


def diff_profiles(a: str, b: str, target: str) -> dict[str, Any]:
    """Lever changes in words and the unified diff of the rendered target."""
    target = resolve_target(target)
    pa, pb = load_plan(a), load_plan(b)
    text = unified(render(pa, target), render(pb, target), f"{a} ({target})", f"{b} ({target})")
    return {"changes": _lever_changes(pa, pb), "target": target, "diff": text}


def _guess_target(path: Path) -> str:
    """Which target a hand-edited file or directory is."""
    if path.is_dir():
        return "kubernetes"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiffError(f"{path}: cannot read: {exc.strerror}") from None
    if text.startswith("#!") or "docker run" in text:
        return "docker"
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError:
        raise DiffError(f"{path}: neither a shell script nor YAML; give --target") from None
    if len(docs) == 1 and isinstance(docs[0], dict) and "services" in docs[0]:
        return "compose"
    if docs and all(isinstance(d, dict) and "kind" in d for d in docs):
        return "kubernetes"
    raise DiffError(f"{path}: cannot tell whether it is docker, compose or kubernetes output; give --target")


def _compare_rendered(plan: DeploymentPlan, target: str, output: str) -> list[tuple[Path, str | None, str]]:
    """The one comparison behind ``diff --against`` and ``render-check``: each file that
    ``render -o OUTPUT`` writes (one per object for a Kubernetes directory) against the file on
    disk. Returns those that differ as (path, text on disk or None when missing, rendered text)."""
    from vllmtune.render import render_files

    stale: list[tuple[Path, str | None, str]] = []
    for path, text in render_files(plan, target, output).items():
        try:
            current: str | None = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            stale.append((path, current, text))
    return stale


def diff_against(profile: str, against: str, target: str | None) -> dict[str, Any]:
    """The profile's rendering vs a committed / hand-edited file or directory."""
    path = Path(against)
    if not path.exists():
        raise DiffError(f"{against}: no such file or directory")
    target = resolve_target(target) if target else _guess_target(path)
    plan = load_plan(profile)
    text = "".join(
        unified(
            current or "",
            rendered,
            f"{file} ({'on disk' if current is not None else 'missing'})",
            f"{file} (rendered from {profile})",
        )
        for file, current, rendered in _compare_rendered(plan, target, against)
    )
    return {"changes": [], "target": target, "diff": text}


def render_check(map_file: str, fix: bool) -> list[dict[str, Any]]:
    """Check (or with fix, rewrite) every output listed in the render map.

    The map is a YAML list of {profile, target, output}; paths are relative to the map file.
    """
    base = Path(map_file).parent
    try:
        entries = yaml.safe_load(Path(map_file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DiffError(
            f"{map_file}: cannot read: {exc.strerror} (list {{profile, target, output}} entries there)"
        ) from None
    except yaml.YAMLError as exc:
        raise DiffError(f"{map_file}: invalid YAML: {exc}") from None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and {"profile", "target", "output"} <= set(e) for e in entries
    ):
        raise DiffError(f"{map_file}: expected a list of {{profile, target, output}} entries")
    from vllmtune.render import write_files

    results = []
    for e in entries:
        profile, output = str(base / e["profile"]), str(base / e["output"])
        target = resolve_target(str(e["target"]))
        if target not in TARGETS:
            raise DiffError(f"{map_file}: unknown target {e['target']!r}")
        differ = _compare_rendered(load_plan(profile), target, output)
        stale = [str(path) for path, _, _ in differ]
        if stale and fix:
            write_files({path: text for path, _, text in differ}, mode=target_record(target).mode)
        results.append(
            {
                "profile": e["profile"],
                "target": target,
                "output": e["output"],
                "stale": stale,
                "fixed": bool(stale and fix),
            }
        )
    return results
