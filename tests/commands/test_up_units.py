"""commands.up's public names called directly: UpArgs, DownArgs, PsArgs and LogsArgs as their
command lines parse (the declared flags and short flags, types, choices and defaults), UpResult,
server_name (the profile's name, not the file's) and kv_estimate (the figure `vllmtune fit
PROFILE` gives, for the GPU the profile names; None when fit cannot tell)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vllmtune.commands.up import DownArgs, LogsArgs, PsArgs, UpArgs, UpResult, kv_estimate, server_name
from vllmtune.fit import fit_report
from vllmtune.util.argspec import add_arguments, from_namespace

PROFILE = (
    'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n  max_model_len: 8192\n'
)


def parse(cls: type, argv: list[str]) -> Any:
    parser = argparse.ArgumentParser(prog="vllmtune", exit_on_error=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(argv))


def test_up_args_from_the_command_line() -> None:
    assert parse(UpArgs, ["p.yaml"]) == UpArgs(
        profile="p.yaml", runtime="docker", gpus=None, port=None, host=None, detach=False, timeout=1800.0,
        replace=False, keep_on_failure=False, cache_image=None,
    )  # fmt: skip
    argv = ["p.yaml", "-r", "local", "--gpus", "0,1", "--port", "9000", "--host", "0.0.0.0", "-d", "--timeout", "60",
            "--replace", "--keep-on-failure", "--cache-image", "reg.example/cache:1"]  # fmt: skip
    assert parse(UpArgs, argv) == UpArgs(
        profile="p.yaml", runtime="local", gpus="0,1", port=9000, host="0.0.0.0", detach=True, timeout=60.0,
        replace=True, keep_on_failure=True, cache_image="reg.example/cache:1",
    )  # fmt: skip


def test_down_ps_logs_args_from_the_command_line() -> None:
    assert parse(DownArgs, ["my-llm"]) == DownArgs(target="my-llm", runtime=None)
    assert parse(DownArgs, ["p.yaml", "--runtime", "docker"]) == DownArgs(target="p.yaml", runtime="docker")
    assert parse(PsArgs, []) == PsArgs(runtime=None)
    assert parse(PsArgs, ["-r", "local"]) == PsArgs(runtime="local")
    assert parse(LogsArgs, ["my-llm", "-f", "--tail", "50"]) == LogsArgs(name="my-llm", follow=True, tail=50)


def test_up_result_carries_the_runtime_result_and_the_estimate() -> None:
    r = UpResult(result={"name": "my-llm"}, kv_estimate=None)
    assert (r.result, r.kv_estimate) == ({"name": "my-llm"}, None)


def test_server_name_is_the_profile_name(tmp_path: Path) -> None:
    path = tmp_path / "some-file.yaml"
    path.write_text(PROFILE)
    assert server_name(UpArgs(profile=str(path))) == "my-llm"
    assert server_name(UpArgs(profile="preset:cpu-tiny")) == "tiny-cpu"


def test_kv_estimate_plans_for_the_profiles_gpu(tmp_path: Path) -> None:
    # bug fixed: kv_estimate asked fit for no GPU, so a GPU profile never showed fit's estimate
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE + "resources:\n  gpu_type: H100-80GB\n")
    expected = fit_report(str(path), "H100-80GB", False)["per_gpu"]["kv_tokens"]
    assert isinstance(expected, int) and expected > 0
    assert kv_estimate(str(path)) == expected


def test_kv_estimate_none_when_fit_cannot_tell(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)  # one GPU of no known kind
    assert kv_estimate(str(path)) is None
    assert kv_estimate(str(tmp_path / "missing.yaml")) is None
