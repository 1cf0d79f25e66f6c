"""vllmtune.plan.units: docker's and Kubernetes' spellings of one size."""

from __future__ import annotations

import pytest

from vllmtune.plan.units import docker_size, k8s_quantity


@pytest.mark.parametrize(
    ("profile", "docker"),
    [
        ("16Gi", "16g"),
        ("16g", "16g"),
        ("16G", "16g"),
        ("16GB", "16g"),
        ("512Mi", "512m"),
        ("1.5Ti", "1.5t"),
        ("64", "64"),
    ],
)
def test_docker_size_is_docker_s_lowercase_binary_unit(profile: str, docker: str) -> None:
    assert docker_size(profile) == docker


@pytest.mark.parametrize(
    ("docker", "quantity"), [("16g", "16Gi"), ("512m", "512Mi"), ("2k", "2Ki"), ("1.5t", "1.5Ti"), ("64", "64")]
)
def test_k8s_quantity_is_the_binary_suffix(docker: str, quantity: str) -> None:
    assert k8s_quantity(docker) == quantity


def test_the_two_spellings_round_trip() -> None:
    assert docker_size(k8s_quantity("24g")) == "24g"
