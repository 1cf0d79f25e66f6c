"""vllmtune.plan: every user-facing message the planner raises, asserted whole (file:line: key
path: message), the plan's public helpers, and `vllmtune fit` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from vllmtune.errors import ProfileError
from vllmtune.flags import flagset
from vllmtune.plan import DeploymentPlan, build_plan, entrypoint_for, load_plan
from vllmtune.plan import base as plan_base
from vllmtune.profile.loader import validate_document
from vllmtune.profile.yamlio import load_yaml


def plan_of(text: str) -> DeploymentPlan:
    return build_plan(validate_document(load_yaml(text, "p.yaml"), "p.yaml"))


def refusal(text: str) -> list[str]:
    with pytest.raises(ProfileError) as e:
        plan_of(text)
    return [str(p) for p in e.value.problems]


def head(version: str) -> str:
    return f"name: p\nvllm: {{version: '{version}'}}\nmodel: {{id: org/m}}\n"


def choices(version: str, values: str) -> str:
    return ", ".join(
        flagset(version, "serve" if entrypoint_for(version)[0] == "vllm" else "api_server").values(values) or []
    )


Q32 = choices("0.32.0", "quantization")
Q33 = choices("0.33.0", "quantization")
S32 = choices("0.32.0", "speculative_methods")

MESSAGES = {
    "value with a close match": (
        head("0.32.0") + "quantization: {method: awqq}\n",
        f"p.yaml:4: quantization.method: 'awqq' is not accepted by vLLM 0.32.0; did you mean 'awq'? choose one of: {Q32}",
    ),
    "value of other versions": (
        head("0.33.0") + "quantization: {method: gguf}\n",
        f"p.yaml:4: quantization.method: 'gguf' is not accepted by vLLM 0.33.0 (gguf is accepted by 0.6.0 .. "
        f"0.23.0); choose one of: {Q33}",
    ),
    "value without a hint": (
        head("0.32.0") + "quantization: {method: zzzzzzzz}\n",
        f"p.yaml:4: quantization.method: 'zzzzzzzz' is not accepted by vLLM 0.32.0; choose one of: {Q32}",
    ),
    "kv cache dtype": (
        head("0.6.4") + "quantization: {kv_cache_dtype: fp8_e5m3x}\n",
        "p.yaml:4: quantization.kv_cache_dtype: 'fp8_e5m3x' is not accepted by vLLM 0.6.4; did you mean "
        "'fp8_e5m2'? choose one of: auto, fp8, fp8_e5m2, fp8_e4m3",
    ),
    "speculative method with a close match": (
        head("0.32.0") + "speculative: {method: draft_modle, model: org/d}\n",
        "p.yaml:4: speculative.method: 'draft_modle' is not a speculative method of vLLM 0.32.0; did you mean "
        f"'draft_model'? choose one of: {S32}",
    ),
    "speculative method of later versions": (
        head("0.8.5") + "speculative: {method: eagle3, model: org/d}\n",
        "p.yaml:4: speculative.method: 'eagle3' is not a speculative method of vLLM 0.8.5; it is available in "
        "0.9.1 .. 0.33.0; choose one of: ngram, eagle, medusa, mlp_speculator, draft_model",
    ),
    "speculative method without a hint": (
        head("0.32.0") + "speculative: {method: zzzzzz, model: org/d}\n",
        f"p.yaml:4: speculative.method: 'zzzzzz' is not a speculative method of vLLM 0.32.0; choose one of: {S32}",
    ),
    "speculative method before speculative_config": (
        head("0.6.4") + "speculative: {method: eagle, model: org/d}\n",
        "p.yaml:4: speculative.method: vLLM 0.6.4 cannot express method eagle; available in 0.8.2 .. 0.33.0",
    ),
    "unknown extra flag with a close match": (
        head("0.32.0") + "server: {extra_args: [--max-model-lenn, '5']}\n",
        "p.yaml:4: server.extra_args[0]: unknown flag --max-model-lenn for vLLM 0.32.0; did you mean --max-model-len?",
    ),
    "unknown extra flag": (
        head("0.32.0") + "server: {extra_args: [--zzzzzzzzzzzz]}\n",
        "p.yaml:4: server.extra_args[0]: unknown flag --zzzzzzzzzzzz for vLLM 0.32.0",
    ),
    "extra flag the profile sets": (
        head("0.32.0").replace("{id: org/m}", "{id: org/m, max_model_len: 5}")
        + "server: {extra_args: ['--max-model-len', '6']}\n",
        "p.yaml:4: server.extra_args[0]: --max-model-len is already set by the profile; set the profile field "
        "instead of repeating it in extra_args",
    ),
    "extra --model (the plan sets the model)": (
        head("0.6.4") + "server: {extra_args: ['--model=x']}\n",
        "p.yaml:4: server.extra_args[0]: --model is already set by the profile; set the profile field "
        "instead of repeating it in extra_args",
    ),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_planner_message(case: str) -> None:
    text, message = MESSAGES[case]
    assert refusal(text) == [message]


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        head("0.32.0")
        + "quantization: {method: zzzzzzzz}\n"
        + "server: {extra_args: [--zzzzzzzzzzzz]}\n"
        + "speculative: {method: zzzzzz, model: org/d}\n"
    )
    assert [m.split(": ", 2)[:2] for m in refusal(text)] == [
        ["p.yaml:4", "quantization.method"],
        ["p.yaml:5", "server.extra_args[0]"],
        ["p.yaml:6", "speculative.method"],
    ]


class _Without:
    """A flag set without one dest: what a vLLM version lacking that flag looks like."""

    def __init__(self, inner: Any, dest: str) -> None:
        self._inner, self._dest = inner, dest

    def by_dest(self, dest: str) -> Any:
        return None if dest == self._dest else self._inner.by_dest(dest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    ("dest", "extra", "message"),
    [
        (
            "distributed_executor_backend",
            "resources: {gpus: 1, nodes: 2, pipeline_parallel_size: 2}\n"
            "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n",
            "p.yaml:4: resources.nodes: vLLM 0.32.0 cannot express resources.nodes (no flag for "
            "distributed_executor_backend); available in 0.6.0 .. 0.33.0",
        ),
        (
            "lora_modules",
            "lora: {adapters: [{name: a, source: org/a}]}\n",
            "p.yaml:4: lora.adapters: vLLM 0.32.0 cannot express LoRA adapters; available in 0.6.0 .. 0.33.0",
        ),
        (
            "speculative_config",
            "speculative: {method: ngram}\n",
            "p.yaml:4: speculative.method: vLLM 0.32.0 cannot express speculative decoding; available in "
            "0.8.2 .. 0.33.0",
        ),
    ],
)
def test_a_version_without_the_flag_is_refused(
    dest: str, extra: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every catalogued version has these flags (the catalog is checked against vLLM's parsers in
    # tests/flags): the refusal is proven with a flag set that lacks one.
    real = plan_base.flagset
    monkeypatch.setattr(plan_base, "flagset", lambda *a: _Without(real(*a), dest))
    if dest == "speculative_config":  # and the pre-0.8.2 spelling, so that nothing expresses it
        monkeypatch.setattr(plan_base, "flagset", lambda *a: _Without(_Without(real(*a), dest), "speculative_model"))
        inner = plan_base.flagset("0.32.0")
        assert inner.by_dest("speculative_model") is None
    assert refusal(head("0.32.0") + extra) == [message]


def test_deprecated_quantization_is_a_warning_with_the_allow_flag() -> None:
    plan = plan_of(head("0.14.0") + "quantization: {method: deepspeedfp}\n")
    assert plan.warnings == (
        "p.yaml:4: quantization.method: deepspeedfp is deprecated in vLLM 0.14.0 and will be removed; "
        "prefer awq, gptq or fp8",
    )
    i = plan.args.index("--quantization")
    assert plan.args[i + 1] == "deepspeedfp" and "--allow-deprecated-quantization" in plan.args


def test_single_node_only_names_the_line() -> None:
    multi = plan_of(
        head("0.32.0") + "resources: {gpus: 2, nodes: 2, tensor_parallel_size: 2, pipeline_parallel_size: 2}\n"
        "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n"
    )
    assert multi.single_node_only("docker run") == (
        "p.yaml:4: resources.nodes: docker run runs on one machine, but this profile spans 2 nodes; render it "
        "for Kubernetes (-t kubernetes: a LeaderWorkerSet), or set nodes: 1"
    )
    assert plan_of(head("0.32.0")).single_node_only("docker run") is None


def test_with_endpoint_changes_only_host_and_port() -> None:
    plan = plan_of(head("0.32.0"))
    moved = plan.with_endpoint(host="127.0.0.1", port=8011)
    assert moved.host == "127.0.0.1" and moved.port == 8011
    assert moved.args[moved.args.index("--port") + 1] == "8011"
    assert [a for a in moved.args if a not in ("127.0.0.1", "8011")] == [
        a for a in plan.args if a not in (plan.host, str(plan.port))
    ]
    assert plan.with_endpoint() == plan


def test_serve_argv_reads_local_adapters_where_they_are(tmp_path: Path) -> None:
    (tmp_path / "adapter").mkdir()
    profile = tmp_path / "p.yaml"
    profile.write_text(head("0.32.0") + "lora: {adapters: [{name: a, source: ./adapter}, {name: b, source: org/b}]}\n")
    plan = load_plan(str(profile))
    argv = plan.serve_argv()
    assert argv[:3] == ["vllm", "serve", "org/m"]
    i = argv.index("--lora-modules")
    assert argv[i + 1 : i + 3] == [f"a={tmp_path / 'adapter'}", "b=org/b"]
    assert "--model" not in argv  # positional, as every version takes it


def test_entrypoint_for_each_version() -> None:
    assert entrypoint_for("0.6.4") == ("python3", "-m", "vllm.entrypoints.openai.api_server")
    assert entrypoint_for("0.32.0") == ("vllm", "serve")


# ------------------------------------------------------------------ vllmtune fit, through the CLI


vt = Cli(timeout=60, env={"COLUMNS": "100"})


def test_fit_json_is_the_arithmetic_of_the_model() -> None:
    r = vt("fit", "preset:baseline", "--gpu", "L4", "--output", "json")
    assert (r.returncode, r.stderr) == (0, "")
    d = json.loads(r.stdout)
    # Llama-3.1-8B: 32 layers, 8 KV heads of 128, 8,030,261,248 parameters (its config.json)
    assert d["weights"] == {"method": "none", "bits_per_weight": 16, "total_bytes": 8_030_261_248 * 2}
    g = d["per_gpu"]
    assert g["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2  # K and V, per layer, per KV head, fp16
    assert g["usable_bytes"] == int(d["gpu_memory_bytes"] * d["gpu_memory_utilization"])
    assert g["kv_budget_bytes"] == g["usable_bytes"] - g["weights_bytes"] - g["reserve_bytes"]
    assert g["num_blocks"] == g["kv_budget_bytes"] // (g["kv_bytes_per_token"] * g["block_size"])
    assert g["kv_tokens"] == g["num_blocks"] * g["block_size"]
    assert g["max_concurrency"] == round(g["kv_tokens"] / g["max_model_len"], 2)
    concurrent = g["kv_tokens"] // g["max_model_len"]
    assert d["fits"] is True
    assert d["verdict"].startswith(f"fits: {concurrent} concurrent sequences at max_model_len 8,192 (")
    assert d["verdict"].endswith(" within the error band)")
    assert d["notes"] == [
        f"max_num_seqs 256 > {concurrent} full-length sequences: vLLM will preempt (recompute) requests when "
        "long contexts fill the KV cache"
    ]


def test_fit_text_is_the_same_figures() -> None:
    d = json.loads(vt("fit", "preset:baseline", "--gpu", "L4", "--output", "json").stdout)
    r = vt("fit", "preset:baseline", "--gpu", "L4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].strip() == "llama-8b-baseline: meta-llama/Llama-3.1-8B-Instruct on L4"
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in r.stdout.splitlines() if "│" in line}
    g = d["per_gpu"]
    assert rows["KV per token"] == f"{g['kv_bytes_per_token']:,} B"
    # the row goes on with the error band (wrapped by the table)
    assert rows["KV tokens"].startswith(f"{g['kv_tokens']:,} ({g['num_blocks']:,} blocks of {g['block_size']}), ")
    assert d["verdict"].startswith(rows["verdict"])


GPUS = (
    "H100-80GB, H100-PCIe, H100-94GB, H200, B200, A100-80GB, A100-40GB, L40S, L4, A10G, A10, RTX-3090, "
    "RTX-4090, RTX-5090, RTX-PRO-6000, RTX-4060, T4, V100-16GB, V100-32GB, MI300X"
)


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ("preset:baseline",),
            f"error: name the GPU to plan for: --gpu NAME, one of {GPUS}; or give its memory as torch reports it: "
            "--gpu-memory 24GiB (or resources.gpu_memory)\n",
        ),
        (("preset:baseline", "--gpu", "L5"), f"error: unknown GPU 'L5'; did you mean L4? choose one of: {GPUS}\n"),
    ],
)
def test_fit_errors_are_whole_and_exit_1(args: tuple[str, ...], stderr: str) -> None:
    r = vt("fit", *args)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", stderr)


def test_typed_settings_beside_the_argv() -> None:
    from vllmtune.plan import VLLM_DEFAULT, LoraAdapterSettings, LoraSettings, SpeculativeSettings, VllmSettings

    plan = plan_of(
        "name: p\nvllm: {version: '0.32.0'}\nmodel: {id: org/m, max_model_len: 8192, served_name: m}\n"
        + "prefix_caching: false\nbatching: {max_num_seqs: 64}\nquantization: {kv_cache_dtype: fp8}\n"
        + "speculative: {method: ngram, num_tokens: 4, prompt_lookup_max: 3}\n"
        + "lora: {adapters: [{name: a, source: org/a}], max_loras: 2}\n"
        + "compilation: {enforce_eager: true}\n"
        + "server: {extra_args: [--block-size, '32', --kv-cache-memory-bytes=1000]}\n"
    )
    assert plan.vllm == VllmSettings(
        model="org/m",
        served_names=("m", "a"),
        host="0.0.0.0",
        port=8000,
        revision=VLLM_DEFAULT,
        tokenizer=VLLM_DEFAULT,
        max_model_len=8192,
        dtype=VLLM_DEFAULT,
        trust_remote_code=VLLM_DEFAULT,
        tensor_parallel_size=1,
        pipeline_parallel_size=1,
        distributed_executor_backend=VLLM_DEFAULT,
        gpu_memory_utilization=VLLM_DEFAULT,
        max_num_seqs=64,
        max_num_batched_tokens=VLLM_DEFAULT,
        enable_chunked_prefill=VLLM_DEFAULT,
        enable_prefix_caching=False,
        quantization=VLLM_DEFAULT,
        kv_cache_dtype="fp8",
        block_size=32,
        kv_cache_memory_bytes=1000,
        enforce_eager=True,
        data_parallel_size=1,
        enable_expert_parallel=VLLM_DEFAULT,
        enable_eplb=VLLM_DEFAULT,
        async_scheduling=VLLM_DEFAULT,
        long_prefill_token_threshold=VLLM_DEFAULT,
        scheduling_policy=VLLM_DEFAULT,
        cudagraph_capture_sizes=VLLM_DEFAULT,
        performance_mode=VLLM_DEFAULT,
        enable_sleep_mode=VLLM_DEFAULT,
        kv_offloading_backend=VLLM_DEFAULT,
        kv_offloading_bytes=VLLM_DEFAULT,
        speculative=SpeculativeSettings("ngram", VLLM_DEFAULT, 4, 3, VLLM_DEFAULT, VLLM_DEFAULT),
        lora=LoraSettings((LoraAdapterSettings("a", "org/a"),), 2, VLLM_DEFAULT, VLLM_DEFAULT, False),
        extra=(("block_size", "32"), ("kv_cache_memory_bytes", "1000")),
        flags=tuple(
            sorted(
                {
                    "model": "--model",
                    "served_model_name": "--served-model-name",
                    "max_model_len": "--max-model-len",
                    "enable_prefix_caching": "--no-enable-prefix-caching",
                    "max_num_seqs": "--max-num-seqs",
                    "kv_cache_dtype": "--kv-cache-dtype",
                    "max_loras": "--max-loras",
                    "speculative_config": "--speculative-config",
                    "enable_lora": "--enable-lora",
                    "lora_modules": "--lora-modules",
                    "host": "--host",
                    "port": "--port",
                    "block_size": "--block-size",
                    "enforce_eager": "--enforce-eager",
                    "kv_cache_memory_bytes": "--kv-cache-memory-bytes",
                }.items()
            )
        ),
    )


def test_serve_argv_finds_the_model_wherever_it_stands() -> None:
    from dataclasses import replace

    plan = plan_of(head("0.32.0"))
    moved = replace(plan, args=(*plan.args[2:], "--model", "org/m"))
    assert moved.serve_argv() == ["vllm", "serve", "org/m", "--host", "0.0.0.0", "--port", "8000"]
