"""Oracles that do not come from the code under test, on profiles holding a hostile value in
every slot that accepts it at once:

- the real Compose (``docker-compose config``) resolves the file, and the resolved commands
  and environments are the plan's;
- the compose-spec schema, through the ``check-jsonschema --builtin-schema vendor.compose-spec``
  command, accepts every file;
- bash runs the docker script with a recording ``docker``: each container's argv is the plan's;
- Kubernetes' ``$(VAR)`` expansion leaves every container's args/command/env as the plan says;
- output is byte-identical across processes with different ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.render.hostile import HOSTILE, SECRET_VALUE, profile_text, string_slots, with_value
from tests.render.test_hostile_matrix import (
    check_compose_against_plan,
    check_docker_against_plan,
    check_k8s_against_plan,
)
from vllmtune.errors import ProfileError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import EXTRA_TARGETS, TARGETS, render

ROOT = Path(__file__).resolve().parents[2]
# The values that break quoting, YAML or a consumer's expansion (every slot at once).
COMBINED = [
    "$(HF_TOKEN)",
    "${VAR}",
    "$VAR",
    "$$",
    "U+0085",
    "U+2028",
    "U+2029",
    "C0 controls",
    "C1 controls",
    "CR",
    "LF then a command",
    "quotes",
    "backslashes",
    "command substitution",
]


@cache
def combined_doc(hostile: str, tmp: Path) -> tuple[dict[str, Any], int]:
    """The base profile with the hostile value in every slot that accepts it alone."""
    doc: dict[str, Any] | None = None
    accepted = 0
    for i, slot in enumerate(string_slots()):
        if slot.literal:
            continue
        candidate = with_value(slot, HOSTILE[hostile](slot.base), doc)
        path = tmp / f"slot{i}.yaml"
        path.write_text(profile_text(candidate), encoding="utf-8")
        try:
            load_plan(str(path))
        except ProfileError:
            continue
        doc, accepted = candidate, accepted + 1
    assert doc is not None
    return doc, accepted


def plan_for(hostile: str, tmp: Path) -> DeploymentPlan:
    doc, accepted = combined_doc(hostile, tmp)
    assert accepted >= 10, f"only {accepted} slots take {hostile!r}"
    path = tmp / "combined.yaml"
    path.write_text(profile_text(doc), encoding="utf-8")
    return load_plan(str(path))


def secrets_of(plan: DeploymentPlan) -> list[str]:
    return sorted({s.source_env for s in [*plan.secret_env, *(e for sc in plan.sidecars for e in sc.secret_env)]})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oracles")


# docker-compose (v1, Python) loads, validates and interpolates a file: its services as JSON.
COMPOSE_LOAD = """
import json, sys
from compose.config import config
from compose.config.environment import Environment
environment = Environment.from_env_file(".")
print(json.dumps(config.load(config.find(".", [sys.argv[1]], environment)).services))
"""


@pytest.mark.parametrize("hostile", COMBINED)
def test_real_compose_resolves_the_plans_values(hostile: str, workdir: Path) -> None:
    require(shutil.which("docker-compose") is not None, "Compose v1 (docker-compose, apt docker-compose)")
    plan = plan_for(hostile, workdir)
    path = workdir / f"compose-{COMBINED.index(hostile)}.yaml"
    path.write_text(render(plan, "compose"), encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), **dict.fromkeys(secrets_of(plan), SECRET_VALUE)}
    r = subprocess.run(
        ["docker-compose", "-p", plan.name, "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # `config` prints a compose file again, through a YAML dumper that writes U+0085/U+2028/U+2029
    # raw (read back as spaces): the values are compared as Compose's own loader returns them.
    exe = Path(shutil.which("docker-compose") or "").read_text().split("\n", 1)[0].removeprefix("#!").split()
    r = subprocess.run(
        [*exe, "-c", COMPOSE_LOAD, str(path)], capture_output=True, text=True, env=env, cwd=workdir, timeout=120
    )
    assert r.returncode == 0, r.stderr
    resolved = {"services": {s.pop("name"): s for s in json.loads(r.stdout)}}
    check_compose_against_plan(plan, resolved)


def test_compose_spec_schema_accepts_every_hostile_file(workdir: Path) -> None:
    exe = shutil.which("check-jsonschema")
    require(exe is not None, "check-jsonschema (pip, the test extra)")
    assert exe is not None
    files = []
    for i, hostile in enumerate(COMBINED):
        path = workdir / f"schema-{i}.yaml"
        path.write_text(render(plan_for(hostile, workdir), "compose"), encoding="utf-8")
        files.append(str(path))
    r = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", *files], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("hostile", COMBINED)
def test_bash_and_kubernetes_hand_over_the_plans_argv(hostile: str, workdir: Path) -> None:
    from tests.render.hostile import k8s_as_run, run_script

    plan = plan_for(hostile, workdir)
    run_dir = workdir / f"bash-{COMBINED.index(hostile)}"
    run_dir.mkdir(exist_ok=True)
    calls = run_script(render(plan, "docker"), run_dir, secrets_of(plan))
    check_docker_against_plan(plan, calls)
    assert not [c for c in calls if c[:1] == ["pwned"]]
    docs = [k8s_as_run(d) for d in yaml.safe_load_all(render(plan, "kubernetes")) if d]
    check_k8s_against_plan(plan, docs)


RENDER_ALL = """
import sys
from vllmtune.plan import load_plan
from vllmtune.render import render
for path in sys.argv[2:]:
    plan = load_plan(path)
    for target in sys.argv[1].split(","):
        try:
            text = render(plan, target)
        except Exception as exc:  # a target this profile does not render: the same in every process
            text = f"{type(exc).__name__}: {exc}"
        sys.stdout.write(f"== {path} {target}\\n{text}")
"""


def test_output_is_the_same_in_processes_with_different_hash_seeds(workdir: Path) -> None:
    profiles = sorted(str(p) for p in (ROOT / "profiles" / "examples").glob("*.yaml"))
    for hostile in ("$(HF_TOKEN)", "U+0085", "C1 controls"):
        path = workdir / f"seed-{COMBINED.index(hostile)}.yaml"
        path.write_text(profile_text(combined_doc(hostile, workdir)[0]), encoding="utf-8")
        profiles.append(str(path))
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        r = subprocess.run(
            [sys.executable, "-c", RENDER_ALL, ",".join(TARGETS + EXTRA_TARGETS), *profiles],
            capture_output=True,
            env=env,
            cwd=workdir,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr.decode()
        outputs.add(r.stdout)
    assert len(outputs) == 1
    assert b"apiVersion" in outputs.pop()
