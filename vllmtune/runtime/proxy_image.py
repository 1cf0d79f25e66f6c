"""The cache-proxy image (``vllmtune/cache-proxy:<version>``), built from the installed package.

No registry has the image: ``vllmtune cache build-image`` and ``vllmtune up`` (when the image is
missing) assemble a build context from what is installed here -- the vllmtune package and the
pure-Python libraries the proxy imports -- and COPY it onto a base image with python3 >= 3.10.
Nothing is downloaded during the build (no pip), so it works offline once the base image is
on the machine. The Dockerfile ships in the wheel (vllmtune/cache/Dockerfile).
Imports the Docker SDK only through the client the caller passes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import vllmtune
from vllmtune import __version__
from vllmtune.errors import LaunchError

DEFAULT_REPO = "vllmtune/cache-proxy"  # the profile's prompt_cache.image default
DEFAULT_BASE = "python:3.12-slim"
BASE_ENV = "VLLMTUNE_CACHE_PROXY_BASE"  # the base image `up` builds on (default DEFAULT_BASE)
# The distributions the proxy imports (python -X importtime -m vllmtune.cache): h11 always;
# redis for the redis backend; async-timeout, which redis-py needs on Python < 3.11.3, where installed.
REQUIRED_DISTS = ("h11",)
OPTIONAL_DISTS = ("redis", "async-timeout")


def default_tag() -> str:
    return f"{DEFAULT_REPO}:{__version__}"


def default_base() -> str:
    import os

    return os.environ.get(BASE_ENV) or DEFAULT_BASE


def build_context(dest: Path) -> list[str]:
    """Write the build context into ``dest``: the Dockerfile and site/ (what PYTHONPATH sees
    in the image). Returns what went into site/, as "name version"."""
    dockerfile = resources.files("vllmtune.cache").joinpath("Dockerfile")
    (dest / "Dockerfile").write_text(dockerfile.read_text(encoding="utf-8"), encoding="utf-8")
    site = dest / "site"
    site.mkdir()
    shutil.copytree(
        Path(vllmtune.__file__).parent, site / "vllmtune", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    included = [f"vllmtune {__version__}"]
    for name in (*REQUIRED_DISTS, *OPTIONAL_DISTS):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in REQUIRED_DISTS:
                raise LaunchError(
                    f"the proxy needs the python package {name}, which is not installed here",
                    hint=f"pip install {name}",
                    sep=": ",
                ) from None
            continue
        for f in dist.files or ():
            parts = Path(str(f)).parts
            if not parts or parts[0] == ".." or "__pycache__" in parts or str(f).endswith(".pyc"):
                continue  # scripts outside site-packages, caches
            src = Path(str(dist.locate_file(f)))
            if src.is_file():
                target = site.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
        included.append(f"{name} {dist.version}")
    return included


def image_exists(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_image(client: Any, tag: str, base: str, say: Callable[[str], None]) -> str:
    """Build ``tag`` on ``base`` from the installed package; ``say`` gets progress lines.
    Returns the image id."""
    import docker

    with tempfile.TemporaryDirectory(prefix="vllmtune-proxy-image-") as tmp:
        included = build_context(Path(tmp))
        say(f"building {tag} on {base} from the installed {', '.join(included)}")
        image_id = ""
        try:
            stream = client.api.build(
                path=tmp,
                tag=tag,
                buildargs={"BASE": base},
                labels={"vllmtune.io/version": __version__, "app.kubernetes.io/managed-by": "vllmtune"},
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise LaunchError(_build_failure(tag, base, str(chunk["error"])))
                text = str(chunk.get("stream", "")).strip()
                step = re.match(r"Step (\d+/\d+) : (.*)", text)
                if step:
                    say(f"building {tag}: step {step.group(1)}: {step.group(2)[:70]}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.APIError as exc:
            raise LaunchError(_build_failure(tag, base, str(exc.explanation or exc))) from None
        if not image_id:
            image_id = str(client.images.get(tag).id)
    say(f"built {tag} ({image_id.removeprefix('sha256:')[:12]})")
    return image_id


def _build_failure(tag: str, base: str, text: str) -> str:
    text = " ".join(text.split())[:500]
    hint = ""
    if '"python3": executable file not found' in text:
        hint = f"\nthe base image {base} has no python3: build on one with python3 >= 3.10 (--base IMAGE)"
    elif "AssertionError" in text or "ModuleNotFoundError" in text or "import vllmtune.cache.command" in text:
        hint = f"\nthe base image {base} cannot run the proxy: use one with python3 >= 3.10 (--base IMAGE)"
    elif any(s in text for s in ("pull access denied", "manifest unknown", "dial tcp", "no such host", "not found")):
        hint = (
            f"\nthe base image {base} is not on this machine and could not be pulled: docker pull {base}, "
            f"or build on an image you have with python3 >= 3.10 (vllmtune cache build-image --base IMAGE; "
            f"for vllmtune up: {BASE_ENV}=IMAGE)"
        )
    return f"building the cache-proxy image {tag} failed: {text}{hint}"


def push_image(client: Any, tag: str, say: Callable[[str], None]) -> None:
    """Push ``tag`` to its registry, saying each layer's final status."""
    import docker

    repo, _, version = tag.rpartition(":")
    if not repo or "/" in version:
        repo, version = tag, "latest"
    say(f"pushing {repo}:{version}")
    try:
        for chunk in client.images.push(repo, tag=version, stream=True, decode=True):
            if "error" in chunk:
                raise LaunchError(
                    f"pushing {tag} failed: {chunk['error']}", hint=_push_hint(tag, str(chunk["error"])), sep="\n"
                )
            status = str(chunk.get("status", ""))
            if status in ("Pushed", "Layer already exists") or status.startswith(version + ": digest"):
                say(f"pushing {tag}: {chunk.get('id', '')} {status}".replace("  ", " "))
    except docker.errors.APIError as exc:
        raise LaunchError(f"pushing {tag} failed: {exc.explanation or exc}") from None


def _push_hint(tag: str, error: str) -> str:
    """What to do about a failed push: a registry that does not answer needs no login."""
    if any(s in error for s in ("dial tcp", "no such host", "connection refused", "i/o timeout")):
        registry = tag.split("/", 1)[0] if "/" in tag else "docker.io"
        return f"the registry {registry} does not answer: check the host in the tag (prompt_cache.image)"
    return "log in first: docker login REGISTRY"


def ensure_image(client: Any, tag: str, say: Callable[[str], None]) -> None:
    """The proxy image for ``up``: there already, pulled from a registry of the user's, or built
    here from the installed package (the default repository is on no registry)."""
    import docker

    if image_exists(client, tag):
        return
    repo = tag.rpartition(":")[0] or tag
    if repo != DEFAULT_REPO:
        say(f"pulling {tag}")
        try:
            client.images.pull(repo, tag=tag.rpartition(":")[2])
            return
        except docker.errors.DockerException as exc:
            say(f"pulling {tag} failed ({' '.join(str(exc).split())[:120]}): building it here")
    else:
        say(f"{tag} is not on this machine (no registry has it): building it from the installed package")
    build_image(client, tag, default_base(), say)
