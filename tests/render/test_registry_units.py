"""render.registry called directly: a Target's loaders and mode, and target_help built from the table."""

from __future__ import annotations

from vllmtune.render.docker import render_docker
from vllmtune.render.k8s import render_kubernetes, render_kubernetes_files
from vllmtune.render.registry import BY_NAME, Target, target_help


def test_target_loads_its_functions_and_mode() -> None:
    t = Target("x", "deployment", "k8s:render_kubernetes", "x.yaml", per_object="k8s:render_kubernetes_files")
    assert t.load() is render_kubernetes
    assert t.load_per_object() is render_kubernetes_files
    assert t.mode is None
    script = Target("y", "companion", "docker:render_docker", "sh", executable=True)
    assert (script.load(), script.load_per_object(), script.mode) == (render_docker, None, 0o755)


def test_registry_docker_is_an_executable_script() -> None:
    assert BY_NAME["docker"].mode == 0o755
    assert BY_NAME["compose"].mode is None


def test_target_help_lists_every_target_with_aliases() -> None:
    assert target_help() == (
        "docker (docker-run): a bash script with one docker run per container; "
        "compose: a compose-spec file; "
        "kubernetes (k8s, kube): manifests (one file per object with -o DIR/); "
        "quantize-job: the llm-compressor Kubernetes Job writing quantization.checkpoint; "
        "quantize-script: the same job as one docker run; "
        "grafana (dashboard): the Grafana dashboard; "
        "vllm-config: the file for vllm serve --config; "
        "production-stack: Helm values for production-stack's vllm-stack; "
        "kserve: a KServe LLMInferenceService; "
        "llm-d: Helm values for llm-d's modelservice chart."
    )
