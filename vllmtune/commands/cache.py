"""``vllmtune cache serve``, ``stats`` and ``build-image`` (the options of ``serve`` are
:class:`vllmtune.cache.config.ServeConfig`, shared with ``python -m vllmtune.cache``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vllmtune.cache.config import ServeConfig
from vllmtune.util.argspec import opt


def serve(cfg: ServeConfig) -> None:
    """Run the proxy until SIGTERM / Ctrl-C."""
    from vllmtune.cache.command import serve as do_serve

    do_serve(cfg)


@dataclass(frozen=True)
class StatsArgs:
    url: str = opt("--url", default="http://127.0.0.1:8080", help="The proxy, e.g. http://localhost:8080.")


def stats(args: StatsArgs) -> dict[str, Any]:
    from vllmtune.cache.command import stats as do_stats

    return do_stats(args.url)


@dataclass(frozen=True)
class BuildImageArgs:
    tag: str | None = opt("--tag", default=None, help="Image name:tag (default vllmtune/cache-proxy:VERSION).")
    base: str | None = opt("--base", default=None, help="Base image with python3 >= 3.10 (default python:3.12-slim).")
    push: bool = opt("--push", default=False, help="Push the image to its registry afterwards.")


def build_image(args: BuildImageArgs, say: Callable[[str], None]) -> str:
    """Build (and push) the image; its name."""
    from vllmtune.runtime.docker_backend import DockerBackend
    from vllmtune.runtime.proxy_image import build_image as build
    from vllmtune.runtime.proxy_image import default_base, default_tag, push_image

    client = DockerBackend().client
    image = args.tag or default_tag()
    build(client, image, args.base or default_base(), say)
    if args.push:
        push_image(client, image, say)
    return image
