"""Multi-LoRA: the ``lora`` section planned into vLLM args in the pinned version's spelling,
local adapters mounted read-only in every target, and the mistakes a profile can make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vllmtune.errors import ProfileError
from vllmtune.flags import flagset
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import render

# A local adapter (under ~, which the tests pin to /home/tester) and a hub one.
LORA = (
    "lora:\n"
    "  adapters:\n"
    "    - {name: sql, source: ~/adapters/sql}\n"
    "    - {name: chat, source: org/chat-lora}\n"
    "  max_loras: 2\n"
    "  max_lora_rank: 8\n"
    "  max_cpu_loras: 4\n"
)


# the argv of profile() -- the same words for 0.6.4 (api_server) and 0.32.0 (vllm serve)
ARGS = (
    "--model", "org/base", "--served-model-name", "base", "--max-loras", "2", "--max-lora-rank", "8",
    "--max-cpu-loras", "4", "--enable-lora", "--lora-modules", "sql=/adapters/sql", "chat=org/chat-lora",
    "--host", "0.0.0.0", "--port", "8000",
)  # fmt: skip


def profile(version: str, lora: str = LORA) -> str:
    return f'name: lora-test\nvllm:\n  version: "{version}"\nmodel:\n  id: org/base\n  served_name: base\n' + lora


def plan_of(tmp_path: Path, text: str) -> DeploymentPlan:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_plan(str(path))


def errors_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ProfileError) as info:
        plan_of(tmp_path, text)
    return str(info.value).replace(str(tmp_path) + "/", "")


def test_args_for_0_32_0(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, profile("0.32.0"))
    assert plan.entrypoint == ("vllm", "serve")
    assert plan.args == ARGS
    assert plan.served_names == ("base", "sql", "chat")
    # the hub adapter is something a pre-download fetches; the local one is mounted instead
    assert plan.downloads == ("org/base", "org/chat-lora")


def test_args_for_0_6_4_api_server(tmp_path: Path) -> None:
    """Before 0.11.1 the image runs the api_server module and --enable-lora is a bare switch
    (0.32.0: a BooleanOptionalAction); each flag is the catalog's spelling for that version."""
    plan = plan_of(tmp_path, profile("0.6.4"))
    assert plan.entrypoint == ("python3", "-m", "vllm.entrypoints.openai.api_server")
    assert plan.args == ARGS
    old, new = flagset("0.6.4", "api_server"), flagset("0.32.0", "serve")
    for dest in ("enable_lora", "lora_modules", "max_loras", "max_lora_rank", "max_cpu_loras"):
        old_flag, new_flag = old.by_dest(dest), new.by_dest(dest)
        assert old_flag is not None and new_flag is not None
        assert old_flag.name in plan.args
    enable_old, enable_new = old.by_dest("enable_lora"), new.by_dest("enable_lora")
    assert enable_old is not None and enable_new is not None
    assert (enable_old.kind, enable_new.kind) == ("switch", "bool")


def test_rank_outside_the_versions_choices(tmp_path: Path) -> None:
    """0.32.0 only takes listed ranks (a Literal in its LoRAConfig); 0.6.4 takes any int."""
    lora = LORA.replace("max_lora_rank: 8", "max_lora_rank: 24")
    assert errors_of(tmp_path, profile("0.32.0", lora)) == (
        "p.yaml:12: lora.max_lora_rank: '24' is not accepted by vLLM 0.32.0; "
        "choose one of: 1, 8, 16, 32, 64, 128, 256, 320, 512"
    )
    old = plan_of(tmp_path, profile("0.6.4", lora))
    assert old.args[old.args.index("--max-lora-rank") + 1] == "24"


def test_duplicate_adapter_names(tmp_path: Path) -> None:
    lora = (
        "lora:\n"
        "  adapters:\n"
        "    - {name: sql, source: org/a}\n"
        "    - name: chat\n"
        "      source: org/b\n"
        "    - name: sql\n"
        "      source: org/c\n"
    )
    assert errors_of(tmp_path, profile("0.32.0", lora)) == (
        "p.yaml:12: lora.adapters[2].name: 'sql' is already adapter 0; names must be unique"
    )


def test_adapter_named_like_the_base_model(tmp_path: Path) -> None:
    lora = "lora:\n  adapters:\n    - {name: chat, source: org/a}\n    - {name: base, source: org/b}\n"
    assert errors_of(tmp_path, profile("0.32.0", lora)) == (
        "p.yaml:10: lora.adapters[1].name: 'base' is the base model's served name; pick another"
    )


def test_local_adapter_mounted_read_only_by_docker(tmp_path: Path, golden: Any) -> None:
    plan = plan_of(tmp_path, profile("0.32.0"))
    script = render(plan, "docker")
    assert "  --volume /home/tester/adapters/sql:/adapters/sql:ro \\\n" in script.splitlines(keepends=True)
    assert "  --lora-modules sql=/adapters/sql chat=org/chat-lora \\\n" in script.splitlines(keepends=True)
    golden("lora.sh", script)
    compose = yaml.safe_load(render(plan, "compose"))
    assert compose["services"]["vllm"]["volumes"] == [
        "hf-cache:/root/.cache/huggingface",
        "/home/tester/adapters/sql:/adapters/sql:ro",
    ]


def test_local_adapter_mounted_read_only_by_kubernetes(tmp_path: Path, golden: Any) -> None:
    plan = plan_of(tmp_path, profile("0.32.0"))
    text = render(plan, "kubernetes")
    golden("lora.k8s.yaml", text)
    [deployment] = [d for d in yaml.safe_load_all(text) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/adapters/sql"]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume == {"name": mount["name"], "hostPath": {"path": "/home/tester/adapters/sql", "type": "Directory"}}
    args = container["args"]
    assert args[args.index("--lora-modules") :][:3] == ["--lora-modules", "sql=/adapters/sql", "chat=org/chat-lora"]


def test_local_runtime_reads_the_adapter_where_it_is(tmp_path: Path) -> None:
    """No container: ``vllm serve`` gets the host directory, not the mount point."""
    argv = plan_of(tmp_path, profile("0.32.0")).serve_argv()
    modules = argv[argv.index("--lora-modules") + 1 :][:2]
    assert modules == ["sql=/home/tester/adapters/sql", "chat=org/chat-lora"]


def test_source_vllm_cannot_read(tmp_path: Path) -> None:
    text = profile("0.32.0", "lora:\n  adapters:\n    - {name: a, source: 'org/x,y'}\n")
    assert errors_of(tmp_path, text) == (
        "p.yaml:9: lora.adapters[0].source: 'org/x,y': vLLM reads --lora-modules as name=path "
        "(a ',' makes it JSON): no '=', ',' or whitespace in the source"
    )
