"""Whole messages of the scale-out checks not covered elsewhere: the quantization recipe,
LoRA limits, shared model caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.errors import ProfileError
from vllmtune.plan import load_plan

BASE = 'name: q\nvllm: {version: "0.32.0"}\nmodel: {id: meta-llama/Llama-3.1-8B-Instruct}\n'


def run(tmp_path: Path, text: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) with the temp directory stripped from the file names."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    strip = str(tmp_path) + "/"
    try:
        plan = load_plan(str(path))
    except ProfileError as exc:
        return [str(p).replace(strip, "") for p in exc.problems], []
    return [], [w.replace(strip, "") for w in plan.warnings]


def test_recipe_mistakes_all_at_once(tmp_path: Path) -> None:
    text = BASE + "quantization:\n  method: awq\n  recipe: {scheme: FP8, algorithm: gptq}\n"
    errors, _ = run(tmp_path, text)
    assert errors == [
        "p.yaml:6: quantization.recipe: the job needs somewhere to write: set quantization.checkpoint to a "
        "Hugging Face repo to push to (e.g. my-org/Llama-3.1-8B-Instruct-W4A16) or a local directory",
        "p.yaml:5: quantization.method: 'awq' cannot load what the recipe produces: llm-compressor writes a "
        "compressed-tensors checkpoint; remove quantization.method (vLLM reads it from the checkpoint)",
        "p.yaml:6: quantization.recipe.algorithm: gptq calibrates integer weights; FP8 needs algorithm: rtn",
    ]


def test_hub_push_needs_a_token_and_fp8_dynamic_needs_rtn(tmp_path: Path) -> None:
    text = BASE + "quantization:\n  checkpoint: me/q-fp8\n  recipe: {scheme: FP8_DYNAMIC, algorithm: awq}\n"
    errors, _ = run(tmp_path, text)
    assert errors == [
        "p.yaml:6: quantization.recipe.algorithm: awq calibrates integer weights; FP8_DYNAMIC needs algorithm: rtn",
        "p.yaml:6: quantization.recipe.algorithm: FP8_DYNAMIC needs no calibration: use algorithm: rtn",
        "p.yaml:5: quantization.checkpoint: the job pushes the result to the Hub repo 'me/q-fp8': set "
        "server.hf_token (a token with write access, by reference)",
    ]


@pytest.mark.parametrize(
    ("gpus", "warning"),
    [
        (
            0,
            "p.yaml:6: quantization.recipe.gpus: llm-compressor's AWQ needs a GPU (it pins its activation cache: "
            "'Cannot access accelerator device' on CPU); set recipe.gpus: 1, or use algorithm: gptq on CPU",
        ),
        (
            4,
            "p.yaml:6: quantization.recipe.gpus: 4 GPUs: llm-compressor calibrates on one GPU unless started "
            "with torchrun, and onloads one layer at a time; 1 GPU is enough for most models",
        ),
    ],
)
def test_recipe_gpu_warnings(tmp_path: Path, gpus: int, warning: str) -> None:
    text = BASE + f"quantization:\n  checkpoint: ./out\n  recipe: {{algorithm: awq, gpus: {gpus}}}\n"
    assert run(tmp_path, text) == ([], [warning])


def test_max_cpu_loras_below_max_loras(tmp_path: Path) -> None:
    text = BASE + "lora:\n  adapters: [{name: a, source: org/a}]\n  max_loras: 4\n  max_cpu_loras: 2\n"
    assert run(tmp_path, text)[0] == ["p.yaml:7: lora.max_cpu_loras: 2 is below max_loras (4)"]


def test_shared_cache_warning_and_autoscaler_without_metrics(tmp_path: Path) -> None:
    text = BASE + "deploy:\n  kubernetes:\n    autoscaling: {max_replicas: 3, cooldown: 90m}\n"
    assert run(tmp_path, text)[0] == [
        "p.yaml:6: deploy.kubernetes.autoscaling.cooldown: 90m is above 1h, the longest scale-down window "
        "Kubernetes accepts"
    ]
    text = BASE + "deploy:\n  kubernetes:\n    autoscaling: {max_replicas: 3}\n    monitoring: {scrape: none}\n"
    assert run(tmp_path, text) == (
        [],
        [
            "p.yaml:7: deploy.kubernetes.monitoring.scrape: none: nothing collects the metrics the autoscaler "
            "reads; use annotations, podmonitor or servicemonitor",
            "p.yaml:6: deploy.kubernetes.autoscaling.max_replicas: up to 3 replicas share a ReadWriteOnce model "
            "cache: pods on other nodes cannot mount it; set deploy.kubernetes.pvc.access_mode: ReadWriteMany",
        ],
    )


def test_scale_to_zero_needs_something_to_wake_it(tmp_path: Path) -> None:
    text = BASE + "deploy:\n  kubernetes:\n    autoscaling: {min_replicas: 0, max_replicas: 1}\n"
    assert run(tmp_path, text)[0] == [
        "p.yaml:6: deploy.kubernetes.autoscaling.min_replicas: 0 replicas can never wake up: with no pods there "
        "are no vLLM metrics to trigger on; enable prompt_cache (its proxy stays up and its request rate wakes "
        "the server) or set min_replicas: 1"
    ]
