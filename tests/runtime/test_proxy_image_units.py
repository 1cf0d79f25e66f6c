"""runtime.proxy_image called directly: default_tag / default_base (pure), and image_exists,
build_image, ensure_image, push_image against the real Docker engine (DOCKER_HOST) with the
offline base image -- nothing is pulled; the registry a push goes to does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.support.dockerenv import PROXY_BASE_IMAGE, docker_host, proxy_base_image
from vllmtune import __version__
from vllmtune.errors import LaunchError
from vllmtune.runtime.proxy_image import (
    BASE_ENV,
    DEFAULT_BASE,
    build_image,
    default_base,
    default_tag,
    ensure_image,
    image_exists,
    push_image,
)

TAG = "vllmtune-test/direct-proxy:1"
ELSEWHERE = "127.0.0.1:1/vllmtune-test/direct-proxy:2"  # a registry nobody runs


def test_default_tag_and_base(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_tag() == f"vllmtune/cache-proxy:{__version__}"
    monkeypatch.delenv(BASE_ENV, raising=False)
    assert default_base() == DEFAULT_BASE == "python:3.12-slim"
    monkeypatch.setenv(BASE_ENV, "debian-with-python:12")
    assert default_base() == "debian-with-python:12"
    monkeypatch.setenv(BASE_ENV, "")
    assert default_base() == DEFAULT_BASE


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    require(docker_host() is not None, "a Docker engine (DOCKER_HOST)")
    require(proxy_base_image() is not None, "the offline proxy base image (scripts/setup_proxy_base.sh)")
    import docker

    c = docker.from_env()
    yield c
    for tag in (TAG, ELSEWHERE):
        try:
            c.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    c.close()


@pytest.mark.docker
@pytest.mark.slow
def test_build_then_exists_then_ensure_is_silent(client: Any) -> None:
    said: list[str] = []
    image_id = build_image(client, TAG, PROXY_BASE_IMAGE, said.append)
    assert image_id.startswith("sha256:")
    assert said[0].startswith(f"building {TAG} on {PROXY_BASE_IMAGE} from the installed vllmtune {__version__}, h11 ")
    assert said[-1] == f"built {TAG} ({image_id.removeprefix('sha256:')[:12]})"
    assert all(s.startswith(f"building {TAG}: step ") for s in said[1:-1])
    assert image_exists(client, TAG) is True
    assert image_exists(client, "vllmtune-test/never-built:0") is False
    quiet: list[str] = []
    ensure_image(client, TAG, quiet.append)
    assert quiet == []


@pytest.mark.docker
@pytest.mark.slow
def test_ensure_image_builds_what_cannot_be_pulled(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_ENV, PROXY_BASE_IMAGE)
    said: list[str] = []
    ensure_image(client, ELSEWHERE, said.append)
    assert said[0] == f"pulling {ELSEWHERE}"
    assert said[1].startswith(f"pulling {ELSEWHERE} failed (") and said[1].endswith("): building it here")
    assert said[2].startswith(f"building {ELSEWHERE} on {PROXY_BASE_IMAGE} from the installed vllmtune ")
    assert image_exists(client, ELSEWHERE) is True


@pytest.mark.docker
@pytest.mark.slow
def test_push_image_to_an_unreachable_registry(client: Any) -> None:
    if not image_exists(client, ELSEWHERE):
        client.images.get(PROXY_BASE_IMAGE).tag(ELSEWHERE)
    said: list[str] = []
    with pytest.raises(LaunchError) as err:
        push_image(client, ELSEWHERE, said.append)
    assert said[0] == "pushing 127.0.0.1:1/vllmtune-test/direct-proxy:2"
    assert str(err.value) == (
        f'pushing {ELSEWHERE} failed: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused\n'
        "the registry 127.0.0.1:1 does not answer: check the host in the tag (prompt_cache.image)"
    )  # the daemon's words, then the hint (no login helps a registry that does not answer)
