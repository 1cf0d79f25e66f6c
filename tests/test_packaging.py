"""What ``pip install .`` brings: every library a core command needs (issue 14, bug 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def _core_dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {r.name.lower(): r for r in map(Requirement, project["dependencies"])}


def test_docker_sdk_is_a_core_dependency() -> None:
    # `vllmtune up` (docker is its default runtime), `ps`, `down` and `drift` use the Docker SDK.
    deps = _core_dependencies()
    assert "docker" in deps, "docker must be in [project].dependencies, not only an extra"
    assert deps["docker"].specifier.contains("7.0")


def test_render_does_not_import_the_docker_sdk() -> None:
    # The dependency is core, the import stays lazy: `render` never pays for it.
    code = (
        "import sys\n"
        "from vllmtune.cli import main\n"
        "rc = main(['render', 'preset:baseline', '-t', 'compose'])\n"
        "assert rc == 0, rc\n"
        "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "VLLMTUNE_NO_CACHE": "1"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[]"


def test_the_proxy_dockerfile_ships_in_the_package(tmp_path: Path) -> None:
    # `vllmtune cache build-image` (and `up`) read the Dockerfile from the installed package.
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "vllmtune", src / "vllmtune", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        capture_output=True,
        text=True,
        cwd=src,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    built = tmp_path / "lib" / "vllmtune" / "cache" / "Dockerfile"
    assert built.read_text() == (ROOT / "vllmtune" / "cache" / "Dockerfile").read_text()
    # The programs the rendered Kubernetes pods run (vllmtune.render.k8s reads them as package files).
    shipped = ROOT / "vllmtune" / "render" / "scripts"
    names = sorted(p.name for p in shipped.iterdir())
    assert names == ["download_weights.py", "ray_leader.sh", "ray_worker.sh", "wait_for_model.py"]
    for name in names:
        assert (tmp_path / "lib" / "vllmtune" / "render" / "scripts" / name).read_text() == (shipped / name).read_text()
