"""Every preset and example, rendered for every target, byte for byte (golden files)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GOLDEN, ROOT, require
from tests.support import crds
from tests.support.crds import kubernetes_validate
from vllmtune.flags import version_key
from vllmtune.plan import SERVE_ENTRYPOINT_SINCE, load_plan
from vllmtune.profile.loader import preset_names
from vllmtune.render import render, targets_for
from vllmtune.render.registry import BY_NAME

EXAMPLES = sorted((ROOT / "profiles" / "examples").glob("*.yaml"))
SOURCES = [f"preset:{n}" for n in preset_names()] + [str(p.relative_to(ROOT)) for p in EXAMPLES]


def golden_name(source: str, target: str) -> str:
    stem = source.removeprefix("preset:") if source.startswith("preset:") else Path(source).stem
    return f"{stem}.{BY_NAME[target].suffix}"  # the registry names every golden file


def _pairs() -> list[tuple[str, str]]:
    # A multi-node profile renders for Kubernetes only (test_scaling checks the refusals).
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        return [(s, t) for s in SOURCES for t in targets_for(load_plan(s))]
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(("source", "target"), _pairs())
def test_render_matches_golden(source: str, target: str, golden, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    text = render(load_plan(source), target)
    assert text.endswith("\n")
    golden(golden_name(source, target), text)


@pytest.mark.parametrize("source", SOURCES)
def test_render_is_deterministic(source: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    for target in targets_for(load_plan(source)):
        assert render(load_plan(source), target) == render(load_plan(source), target)


def test_presets_are_the_documented_ones() -> None:
    assert preset_names() == ["all-levers", "awq", "baseline", "cpu-tiny", "prefix-cache", "speculative"]


# ------------------------------------------------------------------ every golden file, checked as a file
# The comparisons above only say "the output did not change"; these say the committed files are
# right, with checkers that owe nothing to the renderer: bash, the vLLM parser facts of the pinned
# version, the compose-spec schema, Kubernetes' schemas and the CRDs, promtool.

FILES = sorted(p for p in GOLDEN.iterdir() if p.is_file())
FLAG_DUMPS = ROOT.parent / "shared" / "vllm-flags"
RECORDING_DOCKER = """#!/bin/sh
printf '%s\\0' "$@" >> "$ARGV_OUT"; printf '\\n\\0' >> "$ARGV_OUT"
"""


def golden_files(suffix: str) -> list[Path]:
    return [p for p in FILES if p.name.endswith(suffix)]


def test_every_golden_file_is_produced_by_a_test() -> None:
    # A golden no test writes is never compared: it would rot unseen.
    produced = {golden_name(s, t) for s, t in _pairs()} | {
        "all-levers.grafana.json",
        "lora.sh",
        "lora.k8s.yaml",
        "quantize-w4a16.quantize-job.yaml",
        "quantize-w4a16.quantize-script.sh",
    }
    assert {p.name for p in FILES} == produced


@pytest.mark.parametrize("path", golden_files(".sh"), ids=lambda p: p.name)
def test_golden_script_is_valid_bash(path: Path) -> None:
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")


def vllm_argv_of_script(path: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """Run a golden docker script under real bash with a recording `docker`: (the vLLM image,
    the argv its container gets)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(RECORDING_DOCKER)
    (bindir / "docker").chmod(0o755)
    text = path.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))  # the secrets it insists on
    out = tmp_path / "argv"
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "ARGV_OUT": str(out), "HOME": str(tmp_path), "HF_CACHE": str(tmp_path)}
    r = subprocess.run(["bash", str(path)], env={**env, **dict.fromkeys(required, "x")}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = [c.split("\0")[:-1] for c in out.read_text().split("\n\0") if c]
    runs = [c for c in calls if c[:1] == ["run"] and any(w.startswith("vllm/vllm-openai:") for w in c)]
    images = [next(i for i, w in enumerate(run) if w.startswith("vllm/vllm-openai:")) for run in runs]
    # one server, or replicas behind a router: each container gets the same image and argv
    servers = {(run[i], tuple(run[i + 1 :])) for run, i in zip(runs, images, strict=True)}
    assert runs and len(servers) == 1, servers
    [(image, argv)] = servers
    return image, list(argv)


def check_against_dump(argv: list[str], dump: list[dict[str, Any]]) -> list[str]:
    """Problems of an argv by the parser facts of one vLLM version: every option exists, takes a
    value or not as that version's argparse action does, and a value is one of its choices."""
    actions = {o: a for a in dump for o in a["opts"]}
    problems: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("--"):
            problems.append(f"stray value {word!r}")
            continue
        name, eq, inline = word.partition("=")
        action = actions.get(name)
        if action is None:
            problems.append(f"unknown option {name}")
            continue
        if action["nargs"] == 0 or action["action"] in ("_StoreTrueAction", "_StoreFalseAction", "_StoreConstAction"):
            if eq:
                problems.append(f"{name} takes no value")
            continue
        values = [inline] if eq else []
        if not eq:
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
                if action["nargs"] not in ("+", "*"):
                    break
        if not values:
            problems.append(f"{name} needs a value")
        for v in values:
            if action["choices"] is not None and v not in [str(c) for c in action["choices"]]:
                problems.append(f"{name} {v!r} is not one of {action['choices']}")
    return problems


@pytest.fixture(scope="module")
def flag_dumps() -> Path:
    require(FLAG_DUMPS.is_dir(), f"the vLLM flag dumps ({FLAG_DUMPS}, beside the checkout)")
    return FLAG_DUMPS


DOCKER_GOLDENS = [p for p in golden_files(".sh") if not p.name.endswith(".quantize-script.sh")]


@pytest.mark.parametrize("path", DOCKER_GOLDENS, ids=lambda p: p.name)
def test_golden_script_argv_parses_for_its_pinned_version(path: Path, tmp_path: Path, flag_dumps: Path) -> None:
    image, argv = vllm_argv_of_script(path, tmp_path)
    version = image.split(":v", 1)[1]
    entrypoint = "serve" if version_key(version) >= SERVE_ENTRYPOINT_SINCE else "api_server"
    dump = json.loads((flag_dumps / entrypoint / f"{version}.json").read_text(encoding="utf-8"))
    assert argv[:1] == ["--model"]
    if entrypoint == "serve":
        # `vllm serve` takes --model outside its argparse table (not in the dumps): from 0.8.3,
        # except 0.9.0 (../shared/vllm-flags/README.md, "Breakpoints")
        assert version_key(version) >= (0, 8, 3) and version != "0.9.0", version
        argv = argv[2:]
    assert check_against_dump(argv, dump) == []


def test_the_dump_check_is_not_a_rubber_stamp(flag_dumps: Path) -> None:
    dump = json.loads((flag_dumps / "api_server" / "0.6.4.json").read_text(encoding="utf-8"))
    assert check_against_dump(
        ["--model", "m", "--no-enable-prefix-caching", "--enable-prefix-caching=1", "--kv-cache-dtype", "fp9", "x"],
        dump,
    ) == [
        "unknown option --no-enable-prefix-caching",
        "--enable-prefix-caching takes no value",
        "--kv-cache-dtype 'fp9' is not one of ['auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3']",
        "stray value 'x'",
    ]


def test_golden_compose_files_match_the_compose_spec() -> None:
    files = golden_files(".compose.yaml")
    exe = shutil.which("check-jsonschema")
    require(exe is not None, "check-jsonschema (pip install -e '.[test]')")
    assert exe is not None and len(files) >= 10
    r = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert (r.returncode, r.stdout.strip()) == (0, "ok -- validation done"), r.stdout + r.stderr


@pytest.mark.parametrize("path", golden_files(".k8s.yaml") + golden_files(".quantize-job.yaml"), ids=lambda p: p.name)
def test_golden_kubernetes_files_validate(path: Path) -> None:
    kv = kubernetes_validate()
    require(crds.available(), "CRD validators (node + scripts/setup_crd_validators.sh)")
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    core = [d for d in docs if not crds.is_custom(d)]
    custom = [d for d in docs if d not in core]
    for d in core:
        kv.validate(d, crds.K8S_VERSION, strict=True)
    if custom:
        crds.validate_many(custom)
    assert core


def test_golden_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    require(shutil.which("promtool") is not None, "promtool (Debian package prometheus)")
    from tests.render.test_grafana import promtool_check, substitute, targets

    [path] = golden_files(".grafana.json")
    exprs = [substitute(e, "x-.*") for _, _, e in targets(json.loads(path.read_text(encoding="utf-8")))]
    proc = promtool_check(exprs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout
