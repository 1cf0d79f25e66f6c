"""Start-up log reading on lines real vLLM prints."""

from __future__ import annotations

from vllmtune.runtime.logscan import diagnose, kv_cache_facts, phase_of

REAL_032_CPU = [
    "(Worker pid=23290) INFO 11-23 21:19:05 [cpu_model_runner.py:68] Starting to load model /m...",
    "(Worker pid=23290) INFO 11-23 21:19:06 [cpu_model_runner.py:87] Warming up model for the compilation...",
    "(EngineCore pid=23278) INFO 11-23 21:19:33 [kv_cache_utils.py:2327] CPU KV cache size: 2,097,152 tokens, Maximum concurrency for 1,024 tokens per request: 2048.00x",
    "(APIServer pid=23266) INFO 11-23 21:19:36 [entry.py:140] Starting vLLM server on http://127.0.0.1:8011",
]


def test_phases_of_a_real_start() -> None:
    assert [phase_of(line) for line in REAL_032_CPU] == [
        "loading weights",
        "compiling / warming up",
        "allocating KV cache",
        "ready",
    ]
    # an engine config dump mentions torch.compile but announces nothing
    assert phase_of("Initializing a V1 LLM engine with config: compilation_config={'mode': torch.compile}") is None


def test_kv_cache_facts() -> None:
    assert kv_cache_facts(REAL_032_CPU) == {
        "kv_cache_tokens": 2097152,
        "max_concurrency_tokens_per_request": 1024,
        "max_concurrency": 2048.0,
    }


def test_kv_cache_too_small_suggests_a_max_model_len() -> None:
    failure = diagnose(
        [
            "ValueError: To serve at least one request with the model's max seq len (131072), "
            "(16.00 GiB KV cache is needed, which is larger than the available KV cache memory "
            "(9.50 GiB). Based on the available memory, the estimated maximum model length is "
            "77824. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine.",
        ]
    )
    assert failure is not None
    assert failure.reason == ("max_model_len 131072 needs 16.00 GiB of KV cache but only 9.50 GiB is available")
    assert failure.hint == (
        "set model.max_model_len: 77824 (or less), raise "
        "resources.gpu_memory_utilization, or use an fp8 KV cache "
        "(quantization.kv_cache_dtype: fp8)"
    )
    failure = diagnose(
        [
            "ValueError: The model's max seq len (32768) is larger than the maximum number of "
            "tokens that can be stored in KV cache (21856). Try increasing `gpu_memory_utilization` "
            "or decreasing `max_model_len` when initializing the engine."
        ]
    )
    assert failure is not None
    assert failure.reason == "max_model_len 32768 does not fit the KV cache (21856 tokens)"
    assert failure.hint.startswith("set model.max_model_len: 21856 (or less)")


def test_oom_and_unknown_argument() -> None:
    oom = diagnose(["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"])
    assert oom is not None and oom.reason == "CUDA out of memory"
    bad = diagnose(["vllm serve: error: unrecognized arguments: --bogus-flag"])
    assert bad is not None and bad.reason == "vLLM rejected an argument: --bogus-flag"
    assert diagnose(["all fine"]) is None


def test_quantization_kernel_missing_and_unrecognised_root_cause() -> None:
    # what vLLM 0.32.0's CPU build logs for --quantization fp8 (seen in the ladder test)
    f = diagnose(
        [
            "(Worker pid=22908) ERROR 11-23 22:11:01 [multiproc_executor.py:953] RuntimeError: "
            "_C::static_scaled_fp8_quant() expected at most 0 argument(s) but received 4 argument(s)."
        ]
    )
    assert f is not None
    assert f.reason == "this vLLM build has no kernel for the quantization method: static_scaled_fp8_quant"
    g = diagnose(["(EngineCore pid=1) ERROR 11-23 22:11:01 [core.py:1] ValueError: something odd happened"])
    assert g is not None and g.reason == "ValueError: something odd happened"
