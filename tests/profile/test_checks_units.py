"""profile.checks' public names called directly: run_checks on a LoadedProfile, returning
(errors, warnings) located at the offending key, with whole messages; server_gpus on a Profile."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from vllmtune.errors import Problem
from vllmtune.flags import known_versions
from vllmtune.profile.checks import run_checks, server_gpus
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.loader import load_profile
from vllmtune.profile.models import Profile

TEXT = 'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n'


def _load(tmp_path: Path, text: str) -> LoadedProfile:
    (tmp_path / "p.yaml").write_text(text)
    return load_profile(str(tmp_path / "p.yaml"))


def test_run_checks_passes_a_valid_profile(tmp_path: Path) -> None:
    assert run_checks(_load(tmp_path, TEXT)) == ([], [])


def test_run_checks_refuses_an_unpinned_or_unknown_vllm_version(tmp_path: Path) -> None:
    lp = _load(tmp_path, TEXT)
    src = str(tmp_path / "p.yaml")
    versions = known_versions()

    def with_version(v: str) -> LoadedProfile:
        vllm = lp.profile.vllm.model_copy(update={"version": v})
        return dataclasses.replace(lp, profile=lp.profile.model_copy(update={"vllm": vllm}))

    errors, warnings = run_checks(with_version("latest"))
    assert errors == [
        Problem(
            src, 3, "vllm.version", f"'latest' is not reproducible; pin a release, e.g. version: \"{versions[-2]}\""
        )
    ]
    assert warnings == []
    errors, _ = run_checks(with_version("0.1"))
    assert errors == [
        Problem(
            src,
            3,
            "vllm.version",
            f"unknown vLLM version '0.1'; vllmtune knows {versions[0]} .. {versions[-1]} "
            '(quote it in YAML: "0.10" is not 0.1)',
        )
    ]


def test_run_checks_batched_tokens_below_context_without_chunked_prefill(tmp_path: Path) -> None:
    # load_profile refuses what this asks run_checks for: load a passing profile, then lower the value
    text = TEXT + "  max_model_len: 8192\nbatching:\n  chunked_prefill: false\n  max_num_batched_tokens: 8192\n"
    lp = _load(tmp_path, text)
    batching = lp.profile.batching.model_copy(update={"max_num_batched_tokens": 2048})
    errors, _ = run_checks(dataclasses.replace(lp, profile=lp.profile.model_copy(update={"batching": batching})))
    assert errors == [
        Problem(
            str(tmp_path / "p.yaml"),
            9,
            "batching.max_num_batched_tokens",
            "2048 is below model.max_model_len (8192); with chunked_prefill off a whole prompt must fit one "
            "step: raise it to >= 8192 or enable chunked_prefill",
        )
    ]


@pytest.mark.parametrize(
    ("fields", "gpus"),
    [
        ({}, 1),
        # unset resources.gpus: data x tensor_parallel_size x pipeline_parallel_size
        ({"parallelism": {"data": 2}, "resources": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}}, 8),
        ({"resources": {"tensor_parallel_size": 4}}, 4),
        # set: what it says, the CPU build's 0 too
        ({"resources": {"gpus": 0}}, 0),
        ({"parallelism": {"data": 2}, "resources": {"gpus": 2}}, 2),
        # multi-node: resources.gpus is per node (the default 1 here, not 1 x 1 x 2 pipeline stages)
        ({"resources": {"nodes": 2, "pipeline_parallel_size": 2}}, 1),
        ({"resources": {"nodes": 2, "gpus": 8, "tensor_parallel_size": 8, "pipeline_parallel_size": 2}}, 8),
    ],
)
def test_server_gpus_is_resources_gpus_when_set_or_multi_node_else_the_parallel_product(
    fields: dict[str, Any], gpus: int
) -> None:
    base = {"name": "x", "vllm": {"version": "0.32.0"}, "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}
    assert server_gpus(Profile.model_validate({**base, **fields})) == gpus
