"""The engine levers as profile fields (parallelism, scheduling, compilation, sleep_mode,
lora.runtime_updates): the whole argv in an old and a new pin's spelling, the GPUs the targets
request derived from data x tensor x pipeline parallelism, and every message their checks give."""

from __future__ import annotations

import pytest

from tests.test_plan import head, plan_of, refusal
from vllmtune.plan import VLLM_DEFAULT
from vllmtune.render import render

LEVERS = (
    "sleep_mode: true\n"
    "parallelism: {data: 2, expert: true, eplb: true}\n"
    "scheduling: {async: true, long_prefill_token_threshold: 1024, priority: true}\n"
    "compilation: {enforce_eager: false, cudagraph_capture_sizes: [1, 2, 4, 8]}\n"
    "lora: {runtime_updates: true}\n"
    "resources: {tensor_parallel_size: 2}\n"
)
TAIL = ("--enable-lora", "--host", "0.0.0.0", "--port", "8000")


def test_the_levers_in_0_32_0s_spelling() -> None:
    plan = plan_of(head("0.32.0") + LEVERS.replace("enforce_eager: false", "performance_mode: throughput"))
    assert plan.args == (
        "--model", "org/m", "--tensor-parallel-size", "2", "--enable-sleep-mode", "--data-parallel-size", "2",
        "--enable-expert-parallel", "--enable-eplb", "--async-scheduling", "--long-prefill-token-threshold", "1024",
        "--performance-mode", "throughput", "--scheduling-policy", "priority",
        "--cudagraph-capture-sizes", "1", "2", "4", "8", *TAIL,
    )  # fmt: skip


def test_the_levers_in_0_10_0s_spelling() -> None:
    # --cuda-graph-sizes before 0.11.1; enforce_eager false is spelt --no-enforce-eager
    plan = plan_of(head("0.10.0") + LEVERS)
    assert plan.args == (
        "--model", "org/m", "--tensor-parallel-size", "2", "--enable-sleep-mode", "--data-parallel-size", "2",
        "--enable-expert-parallel", "--enable-eplb", "--async-scheduling", "--long-prefill-token-threshold", "1024",
        "--no-enforce-eager", "--scheduling-policy", "priority", "--cuda-graph-sizes", "1", "2", "4", "8", *TAIL,
    )  # fmt: skip


def test_0_11_1_has_both_spellings_and_gets_the_new_one() -> None:
    plan = plan_of(head("0.11.1") + "compilation: {cudagraph_capture_sizes: [4]}\n")
    assert plan.args[2:4] == ("--cudagraph-capture-sizes", "4")
    assert plan.vllm.flag("cudagraph_capture_sizes") == "--cudagraph-capture-sizes"


def test_the_settings_hold_the_levers() -> None:
    v = plan_of(head("0.32.0") + LEVERS.replace("priority: true", "priority: false")).vllm
    assert (v.data_parallel_size, v.enable_expert_parallel, v.enable_eplb) == (2, True, True)
    assert (v.async_scheduling, v.long_prefill_token_threshold, v.scheduling_policy) == (True, 1024, "fcfs")
    assert (v.enforce_eager, v.cudagraph_capture_sizes, v.performance_mode) == (False, (1, 2, 4, 8), VLLM_DEFAULT)
    assert v.enable_sleep_mode is True
    assert v.lora is not VLLM_DEFAULT and v.lora.runtime_updates and v.lora.adapters == ()


def test_runtime_lora_updates_set_the_env() -> None:
    plan = plan_of(head("0.32.0") + "lora: {runtime_updates: true}\nserver: {env: {A: b}}\n")
    assert plan.env == (("A", "b"), ("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True"))
    assert "--lora-modules" not in plan.args


def test_the_gpu_requests_are_derived_from_the_parallel_sizes() -> None:
    plan = plan_of(head("0.32.0") + "parallelism: {data: 2}\nresources: {tensor_parallel_size: 2}\n")
    assert plan.gpus == 4
    assert plan.shm.ipc_host  # several processes share tensors through /dev/shm
    assert "  --gpus 4 \\\n" in render(plan, "docker")
    assert "            count: 4\n" in render(plan, "compose")
    k8s = render(plan, "kubernetes")
    assert k8s.count("nvidia.com/gpu: '4'") == 2  # requests and limits
    # resources.gpus, when given, is what is requested (and must match)
    assert plan_of(head("0.32.0") + "parallelism: {data: 2}\nresources: {gpus: 2}\n").gpus == 2
    # tensor parallel alone: no longer refused with the default gpus of 1
    assert plan_of(head("0.32.0") + "resources: {tensor_parallel_size: 2}\n").gpus == 2


HINT_DP = "(or remove it: the plan then requests that many)"
MESSAGES = {
    "DP x TP x PP is not the GPUs": (
        head("0.32.0") + "parallelism: {data: 2}\nresources: {gpus: 2, tensor_parallel_size: 2}\n",
        "p.yaml:4: parallelism.data: data 2 x tensor_parallel_size 2 x pipeline_parallel_size 1 = 4 GPUs per "
        f"server, but resources.gpus is 2: they must be equal; set resources.gpus: 4 {HINT_DP}",
    ),
    "data parallel across nodes": (
        head("0.32.0")
        + "parallelism: {data: 2}\n"
        + "resources: {gpus: 8, nodes: 2, tensor_parallel_size: 8, pipeline_parallel_size: 2}\n"
        + "deploy: {kubernetes: {pvc: {access_mode: ReadWriteMany}}}\n",
        "p.yaml:4: parallelism.data: 2 data-parallel ranks across 2 nodes is not rendered; use one node per "
        "server and deploy.kubernetes.replicas for more copies, or parallelism.data: 1",
    ),
    "eplb without expert parallelism": (
        head("0.32.0") + "parallelism: {eplb: true}\n",
        "p.yaml:4: parallelism.eplb: load-balances experts across expert-parallel ranks: set parallelism.expert: true",
    ),
    "eager mode with capture sizes": (
        head("0.32.0") + "compilation: {enforce_eager: true, cudagraph_capture_sizes: [1]}\n",
        "p.yaml:4: compilation.cudagraph_capture_sizes: enforce_eager runs without CUDA graphs, so nothing "
        "captures these sizes; remove one of the two",
    ),
    "lora without adapters or runtime updates": (
        head("0.32.0") + "lora: {max_loras: 2}\n",
        "p.yaml:4: lora.adapters: no adapter to serve: list at least one, or set lora.runtime_updates: true "
        "to load them at run time",
    ),
    "runtime updates and the env var": (
        head("0.32.0") + "lora: {runtime_updates: true}\nserver: {env: {VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True'}}\n",
        "p.yaml:5: server.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING: VLLM_ALLOW_RUNTIME_LORA_UPDATING is set by "
        "lora.runtime_updates; remove it from server.env",
    ),
    "capture sizes before vLLM had the flag": (
        head("0.8.5") + "compilation: {cudagraph_capture_sizes: [1, 2]}\n",
        "p.yaml:4: compilation.cudagraph_capture_sizes: vLLM 0.8.5 cannot express "
        "compilation.cudagraph_capture_sizes; available in 0.9.0 .. 0.33.0",
    ),
    "performance mode before 0.17.0": (
        head("0.10.0") + "compilation: {performance_mode: interactivity}\n",
        "p.yaml:4: compilation.performance_mode: vLLM 0.10.0 cannot express compilation.performance_mode "
        "(no flag for performance_mode); available in 0.17.0 .. 0.33.0",
    ),
    "async scheduling before 0.10.0": (
        head("0.9.2") + "scheduling: {async: true}\n",
        "p.yaml:4: scheduling.async: vLLM 0.9.2 cannot express scheduling.async "
        "(no flag for async_scheduling); available in 0.10.0 .. 0.33.0",
    ),
    "data parallel before 0.8.3": (
        head("0.8.2") + "parallelism: {data: 2}\nresources: {gpus: 2}\n",
        "p.yaml:4: parallelism.data: vLLM 0.8.2 cannot express parallelism.data "
        "(no flag for data_parallel_size); available in 0.8.3 .. 0.33.0",
    ),
    "extra --data-parallel-size": (
        head("0.32.0") + "server: {extra_args: [--data-parallel-size, '2']}\n",
        "p.yaml:4: server.extra_args[0]: --data-parallel-size sizes the server, and the GPU requests are derived "
        "from the profile: set parallelism.data instead (the plan then requests parallelism.data x "
        "tensor_parallel_size x pipeline_parallel_size GPUs)",
    ),
    "extra -tp=2": (
        head("0.32.0") + "server: {extra_args: [-tp=2]}\n",
        "p.yaml:4: server.extra_args[0]: -tp sizes the server, and the GPU requests are derived from the "
        "profile: set resources.tensor_parallel_size instead (the plan then requests parallelism.data x "
        "tensor_parallel_size x pipeline_parallel_size GPUs)",
    ),
    "extra --enforce-eager, a field now": (
        head("0.32.0") + "server: {extra_args: [--enforce-eager]}\n",
        "p.yaml:4: server.extra_args[0]: --enforce-eager is a profile field: set compilation.enforce_eager "
        "instead of passing it in extra_args",
    ),
    "extra --cuda-graph-sizes, a field in either spelling": (
        head("0.10.0") + "server: {extra_args: [--cuda-graph-sizes, '4']}\n",
        "p.yaml:4: server.extra_args[0]: --cuda-graph-sizes is a profile field: set "
        "compilation.cudagraph_capture_sizes instead of passing it in extra_args",
    ),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_engine_lever_message(case: str) -> None:
    text, message = MESSAGES[case]
    assert refusal(text) == [message]


def test_explain_says_what_each_set_lever_buys_and_when_it_hurts() -> None:
    from vllmtune.explain import engine_lever_facts

    plan = plan_of(
        head("0.32.0") + "compilation: {enforce_eager: true}\nscheduling: {long_prefill_token_threshold: 512}\n"
    )
    assert engine_lever_facts(plan) == {
        "scheduling.long_prefill_token_threshold": "512: buys short requests' TTFT beside long prompts; too low "
        "slows the long prompts themselves",
        "compilation.enforce_eager": "true: buys start-up time and the CUDA graphs' memory (more KV cache); hurts "
        "decode speed, most at small batches",
    }
    assert engine_lever_facts(plan_of(head("0.32.0"))) == {}


def test_kv_offload_native_in_gib() -> None:
    plan = plan_of(head("0.32.0") + "kv_offload: {size: 1.5GiB}\n")
    assert plan.args == (
        "--model", "org/m", "--kv-offloading-backend", "native", "--kv-offloading-size", "1.5",
        "--host", "0.0.0.0", "--port", "8000",
    )  # fmt: skip
    assert (plan.vllm.kv_offloading_backend, plan.vllm.kv_offloading_bytes) == ("native", 3 * 2**29)


def test_kv_offload_adds_its_memory_to_the_pod() -> None:
    base = plan_of(head("0.32.0")).k8s_server_hardening
    offload = plan_of(head("0.32.0") + "kv_offload: {size: 64GiB}\n").k8s_server_hardening
    assert (base.memory_request, offload.memory_request) == ("34Gi", "98Gi")


LMCACHE = "vllm: {version: '0.32.0', image: my/vllm-lmcache}\nmodel: {id: org/m}\n"
LMCACHE_JSON = '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'


def test_kv_offload_lmcache_is_the_in_process_connector_configured_by_env() -> None:
    # tensor x pipeline = 4 ranks: LMCache sizes its CPU tier per rank, in GiB
    plan = plan_of(
        "name: p\n" + LMCACHE + "resources: {tensor_parallel_size: 2, pipeline_parallel_size: 2}\n"
        "kv_offload: {backend: lmcache, size: 6GiB}\n"
    )
    assert plan.args == (
        "--model", "org/m", "--tensor-parallel-size", "2", "--pipeline-parallel-size", "2",
        "--kv-transfer-config", LMCACHE_JSON, "--host", "0.0.0.0", "--port", "8000",
    )  # fmt: skip
    assert not any(a.startswith("--kv-offloading") for a in plan.args)
    assert plan.env == (
        ("LMCACHE_CHUNK_SIZE", "256"),
        ("LMCACHE_LOCAL_CPU", "True"),
        ("LMCACHE_MAX_LOCAL_CPU_SIZE", "1.5"),
    )
    assert (plan.vllm.kv_offloading_backend, plan.vllm.kv_offloading_bytes) == ("lmcache", 6 * 2**30)
    assert plan.vllm.flag("kv_transfer_config") == "--kv-transfer-config"
    assert plan.vllm.flag("kv_offloading_backend") is None
    assert plan.warnings == ()  # a custom image: it is the profile's to have lmcache


def test_kv_offload_lmcache_chunk_size_may_come_from_server_env() -> None:
    plan = plan_of(
        "name: p\n"
        + LMCACHE
        + "kv_offload: {backend: lmcache, size: 8GiB}\nserver: {env: {LMCACHE_CHUNK_SIZE: '512'}}\n"
    )
    assert plan.env == (
        ("LMCACHE_CHUNK_SIZE", "512"),
        ("LMCACHE_LOCAL_CPU", "True"),
        ("LMCACHE_MAX_LOCAL_CPU_SIZE", "8"),
    )


def test_kv_offload_lmcache_adds_its_memory_to_the_pod_as_native_does() -> None:
    native = plan_of(head("0.32.0") + "kv_offload: {size: 64GiB}\n").k8s_server_hardening
    lmcache = plan_of(head("0.32.0") + "kv_offload: {backend: lmcache, size: 64GiB}\n").k8s_server_hardening
    assert (native.memory_request, lmcache.memory_request, lmcache.memory_limit) == ("98Gi", "98Gi", "98Gi")


def test_kv_offload_lmcache_on_the_stock_image_warns_that_it_needs_the_lmcache_package() -> None:
    plan = plan_of(head("0.32.0") + "kv_offload: {backend: lmcache, size: 8GiB}\n")
    assert plan.warnings == (
        "p.yaml:4: kv_offload.backend: lmcache runs inside vLLM and imports the lmcache package, which "
        "vllm/vllm-openai images have only when vLLM built them with INSTALL_KV_CONNECTORS=true "
        "(docker/Dockerfile); without it the server fails at start-up (lmcache/vllm-openai, the production-stack "
        "chart's default, has it): set vllm.image to an image built FROM vllm/vllm-openai:v0.32.0 "
        "with pip install lmcache",
    )


def test_kv_offload_backend_lmcache_is_accepted_and_an_unknown_one_refused() -> None:
    from vllmtune.errors import ProfileError
    from vllmtune.profile.loader import validate_document
    from vllmtune.profile.yamlio import load_yaml

    ok = validate_document(
        load_yaml(head("0.32.0") + "kv_offload: {backend: lmcache, size: 8GiB}\n", "p.yaml"), "p.yaml"
    )
    assert ok.profile.kv_offload is not None and ok.profile.kv_offload.backend == "lmcache"
    with pytest.raises(ProfileError) as e:
        validate_document(
            load_yaml(head("0.32.0") + "kv_offload: {backend: lmcachee, size: 8GiB}\n", "p.yaml"), "p.yaml"
        )
    assert [str(p) for p in e.value.problems] == [
        "p.yaml:4: kv_offload.backend: \"lmcachee\" is not allowed; input should be 'native' or 'lmcache'"
    ]


KV_MESSAGES = {
    "lmcache before its connector (0.8.4 has --kv-transfer-config, not LMCacheConnectorV1)": (
        head("0.8.4") + "kv_offload: {backend: lmcache, size: 8GiB}\n",
        "p.yaml:4: kv_offload.backend: vLLM 0.8.4 cannot express kv_offload.backend lmcache (--kv-transfer-config "
        "with LMCacheConnectorV1); available in 0.8.5 .. 0.33.0",
    ),
    "lmcache before --kv-transfer-config": (
        head("0.6.4") + "kv_offload: {backend: lmcache, size: 8GiB}\n",
        "p.yaml:4: kv_offload.backend: vLLM 0.6.4 cannot express kv_offload.backend lmcache (--kv-transfer-config "
        "with LMCacheConnectorV1); available in 0.8.5 .. 0.33.0",
    ),
    "lmcache with --kv-transfer-config in extra_args": (
        "name: p\n" + LMCACHE + "kv_offload: {backend: lmcache, size: 8GiB}\n"
        "server: {extra_args: [--kv-transfer-config, '{}']}\n",
        "p.yaml:5: server.extra_args[0]: --kv-transfer-config is already set by the profile; set the profile "
        "field instead of repeating it in extra_args",
    ),
    "lmcache with its size in server.env": (
        "name: p\n" + LMCACHE + "kv_offload: {backend: lmcache, size: 8GiB}\n"
        "server: {env: {LMCACHE_MAX_LOCAL_CPU_SIZE: '4'}}\n",
        "p.yaml:5: server.env.LMCACHE_MAX_LOCAL_CPU_SIZE: LMCACHE_MAX_LOCAL_CPU_SIZE is set by kv_offload (backend "
        "lmcache); remove it from server.env",
    ),
    "kv offload before 0.11.1": (
        head("0.11.0") + "kv_offload: {size: 64GiB}\n",
        "p.yaml:4: kv_offload: vLLM 0.11.0 cannot express KV offloading (kv_offload); available in 0.11.1 .. 0.33.0",
    ),
    "extra --kv-offloading-size": (
        head("0.32.0") + "server: {extra_args: [--kv-offloading-size, '8']}\n",
        "p.yaml:4: server.extra_args[0]: --kv-offloading-size is a profile field: set kv_offload.size "
        "instead of passing it in extra_args",
    ),
}


@pytest.mark.parametrize("case", KV_MESSAGES)
def test_kv_offload_message(case: str) -> None:
    text, message = KV_MESSAGES[case]
    assert refusal(text) == [message]


def test_kv_offload_size_must_be_a_size() -> None:
    from vllmtune.errors import ProfileError
    from vllmtune.profile.loader import validate_document
    from vllmtune.profile.yamlio import load_yaml

    with pytest.raises(ProfileError) as e:
        validate_document(load_yaml(head("0.32.0") + "kv_offload: {size: lots}\n", "p.yaml"), "p.yaml")
    [problem] = e.value.problems
    assert str(problem).startswith("p.yaml:4: kv_offload.size: ")
    assert "'lots' is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB)" in str(problem)


def test_every_new_field_is_in_the_json_schema_with_its_description() -> None:
    from vllmtune.profile.schema import profile_schema

    defs = profile_schema()["$defs"]
    props = {
        name: set(defs[name]["properties"])
        for name in ("ParallelismSection", "SchedulingSection", "CompilationSection", "KvOffloadSection")
    }
    assert props == {
        "ParallelismSection": {"data", "expert", "eplb"},
        "SchedulingSection": {"async", "long_prefill_token_threshold", "priority"},
        "CompilationSection": {"enforce_eager", "cudagraph_capture_sizes", "performance_mode"},
        "KvOffloadSection": {"backend", "size"},
    }
    assert defs["SchedulingSection"]["properties"]["async"]["x-vllm-dest"] == "async_scheduling"
    described = [defs[n]["properties"][k].get("description", "") for n, keys in props.items() for k in keys]
    assert all(len(d) > 20 for d in described)
    top = defs["Profile"]["properties"]
    assert {"sleep_mode", "parallelism", "scheduling", "compilation", "kv_offload"} <= set(top)
    assert "runtime_updates" in defs["LoraSection"]["properties"]
