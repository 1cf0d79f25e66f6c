"""Every rendered compose file is accepted by a real Compose: ``docker-compose config`` (v1,
1.29 is what Debian 12 ships, installed by scripts/setup_system.sh) and, where the machine has
it, ``docker compose config`` (v2). Both parse and validate without a daemon."""

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


def composes() -> list[list[str]]:
    found = []
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            found.append(["docker", "compose"])
    return found


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=[p.name for p in COMPOSE_FILES])
def test_compose_accepts_the_rendered_file(path: Path, tmp_path: Path) -> None:
    tools = composes()
    require(bool(tools), "Compose (docker-compose, apt docker-compose)")
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
