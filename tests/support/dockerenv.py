"""Helpers for pytest tests that need a real Docker daemon (no GPU, no registry).

Typical use::

    from tests.support.dockerenv import docker_host, ensure_test_image, free_port

    @pytest.fixture(scope="module", autouse=True)
    def engine() -> None:
        require(docker_host() is not None, "a Docker engine (DOCKER_HOST)")

    def test_run():
        ensure_test_image("vllm/vllm-openai:v0.32.0")   # fake busybox image under the real name
        port = free_port()
        ...

Start the daemon with ``eval "$(scripts/start_dockerd.sh | tail -1)"`` (sets DOCKER_HOST).
The fake image (tests/docker_image/) mimics ``ENTRYPOINT ["vllm","serve"]`` and honours
FAKE_VLLM_STARTUP_DELAY / FAKE_VLLM_CRASH / FAKE_VLLM_NEVER_HEALTHY.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from vllmtune.util.net import free_port as free_port  # re-exported: the tests' one free-port helper

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tests" / "docker_image" / "build.sh"
DEFAULT_TEST_IMAGE = "vllmtune-test/fake-vllm:latest"

_lock = threading.Lock()
_built: set[tuple[str, str]] = set()


def docker_host() -> str | None:
    """Return $DOCKER_HOST if it is set and `docker version` answers there, else None."""
    host = os.environ.get("DOCKER_HOST")
    if not host or shutil.which("docker") is None:
        return None
    try:
        proc = subprocess.run(
            ["docker", "-H", host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return host if proc.returncode == 0 and proc.stdout.strip() else None


def ensure_test_image(tag: str = DEFAULT_TEST_IMAGE) -> None:
    """Build (idempotently) the fake vLLM image and make `tag` point at it.

    Runs tests/docker_image/build.sh against $DOCKER_HOST. Raises RuntimeError on failure.
    """
    key = (os.environ.get("DOCKER_HOST", ""), tag)
    with _lock:
        if key in _built:
            return
        tags = [DEFAULT_TEST_IMAGE] if tag == DEFAULT_TEST_IMAGE else [DEFAULT_TEST_IMAGE, tag]
        try:
            proc = subprocess.run(
                ["bash", str(BUILD_SCRIPT), *tags],
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{BUILD_SCRIPT} timed out: {exc}") from exc
        if proc.returncode != 0:
            raise RuntimeError(
                f"{BUILD_SCRIPT} {' '.join(tags)} failed (rc={proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        _built.add(key)


def wait_for_http(url: str, timeout: float = 30.0, status: int = 200) -> bool:
    """Poll `url` until it answers with `status`; False after `timeout` seconds.

    Note: while a published container is not listening yet, docker-proxy accepts the
    TCP connection and then resets it, so expect ConnectionResetError / RemoteDisconnected
    rather than "connection refused" during start-up.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == status:
                    return True
        except urllib.error.HTTPError as exc:
            if exc.code == status:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


PROXY_BASE_IMAGE = "vllmtune-test/debian-python:bookworm"  # scripts/setup_proxy_base.sh
PROXY_BASE_SCRIPT = REPO_ROOT / "scripts" / "setup_proxy_base.sh"
_proxy_images: set[tuple[str, str]] = set()


def proxy_base_image() -> str | None:
    """The offline base image (Debian bookworm minbase + python3 + redis-server, also tagged as
    the plan's Redis image), imported from the tarball scripts/setup_proxy_base.sh cached under
    ~/.cache/vllmtune/. None when the tarball was never built (or no engine answers).
    Look it up through ``require(proxy_base_image() is not None, ...)``."""
    if docker_host() is None:
        return None
    try:
        proc = subprocess.run(["bash", str(PROXY_BASE_SCRIPT), "--import"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None
    return PROXY_BASE_IMAGE if proc.returncode == 0 else None


def ensure_proxy_image(tag: str, force: bool = False) -> None:
    """Build the cache-proxy image ``tag`` from this checkout on the offline base (once per
    session and tag, or again with ``force``): what ``vllmtune cache build-image --base`` does."""
    import sys

    key = (os.environ.get("DOCKER_HOST", ""), tag)
    with _lock:
        if key in _proxy_images and not force:
            return
        proc = subprocess.run(
            [sys.executable, "-m", "vllmtune.cli", "cache", "build-image", "--tag", tag, "--base", PROXY_BASE_IMAGE],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cache build-image --tag {tag} failed (rc={proc.returncode}):\n{proc.stderr}")
        _proxy_images.add(key)


ROUTER_TEST_IMAGE = "vllmtune/vllm-router:0.1.17"  # the plan's router image name, built here
_router_images: set[tuple[str, str]] = set()


def _closure(name: str) -> list[Any]:
    """The installed distribution ``name`` and every one it requires (markers evaluated, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[str, Any] = {}
    todo = [name]
    while todo:
        key = todo.pop().lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(key)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def ensure_router_image(tag: str = ROUTER_TEST_IMAGE) -> None:
    """The router image the plans name, built offline (once per session and tag): the proxy base
    image (Debian bookworm's python3 3.11, the ABI of this interpreter) plus the installed
    vllm-router wheel and the distributions it requires, copied file by file from their RECORDs --
    the real router binary, not a stand-in. The rendered build hint's image does ``pip install``."""
    import sys

    key = (os.environ.get("DOCKER_HOST", ""), tag)
    with _lock:
        if key in _router_images:
            return
        if sys.version_info[:2] != (3, 11):
            raise RuntimeError("the router test image copies compiled wheels for Debian bookworm's Python 3.11")
        with tempfile.TemporaryDirectory() as tmp:
            site = Path(tmp) / "site"
            for dist in _closure("vllm-router"):
                for f in dist.files or []:
                    if str(f).startswith(".."):  # console scripts: the image has its own
                        continue
                    src = Path(str(dist.locate_file(f)))
                    if src.is_file() and "__pycache__" not in f.parts:
                        dest = site / str(f)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, dest)
            launcher = Path(tmp) / "vllm-router"
            launcher.write_text(
                "#!/usr/bin/python3\nimport sys\nfrom vllm_router.launch_router import main\nsys.exit(main())\n"
            )
            launcher.chmod(0o755)
            (Path(tmp) / "Dockerfile").write_text(
                f"FROM {PROXY_BASE_IMAGE}\nCOPY site /opt/router-site\nCOPY vllm-router /usr/local/bin/vllm-router\n"
                'ENV PYTHONPATH=/opt/router-site\nUSER 10001\nENTRYPOINT ["vllm-router"]\n'
            )
            proc = subprocess.run(
                ["docker", "build", "-q", "-t", tag, tmp], capture_output=True, text=True, timeout=600
            )
        if proc.returncode != 0:
            raise RuntimeError(f"docker build {tag} failed (rc={proc.returncode}):\n{proc.stderr}")
        _router_images.add(key)


def require_engine_and_base() -> None:
    """What a test of a whole Docker stack needs first: an engine, the stand-in vLLM image under
    the plans' name, and the offline Debian base the proxy and router images are built on
    (through ``require``: a missing part is a skip, a failure under VLLMTUNE_REQUIRE_REAL=1)."""
    from tests.support.require_real import require

    require(docker_host() is not None, "a Docker engine (DOCKER_HOST)")
    ensure_test_image("vllm/vllm-openai:v0.32.0")
    require(
        proxy_base_image() is not None, f"the offline proxy base image {PROXY_BASE_IMAGE} (scripts/setup_proxy_base.sh)"
    )
