"""vllmtune.explain: the levers, what each renders to and buys, and the deployment's layout,
for the Llama-3.3-70B two-node example (profiles/examples/llama-70b-2x8.yaml)."""

from __future__ import annotations

import io

from rich.console import Console

from vllmtune.explain import engine_lever_facts, explain_data, explain_table
from vllmtune.plan import load_plan

LLAMA_70B = "profiles/examples/llama-70b-2x8.yaml"
STARTUP = "33m: 141.1 GB of weights (load at 500 MB/s + 10 min warm-up) x1.5 + 10 min for the Ray cluster"


def test_explain_data_of_the_two_node_example() -> None:
    assert explain_data(load_plan(LLAMA_70B)) == {
        "profile": "llama-70b",
        "vllm_version": "0.32.0",
        "image": "vllm/vllm-openai:v0.32.0",
        "model": "meta-llama/Llama-3.3-70B-Instruct",
        "served_name": "llama-3.3-70b",
        "levers": [
            {
                "lever": "1 prompt cache",
                "state": "off",
                "flags": [],
                "buys": "identical deterministic requests answered from cache (5-10x cost win at a real hit rate)",
            },
            {
                "lever": "2 prefix caching",
                "state": "on",
                "flags": ["--enable-prefix-caching"],
                "buys": "shared system prompts / RAG context skip prefill (TTFT -40..70%)",
            },
            {
                "lever": "3 batching",
                "state": "set",
                "flags": ["--max-num-batched-tokens 16384", "--max-num-seqs 256"],
                "buys": "token budget per step: too high OOMs, too low wastes throughput",
            },
            {
                "lever": "4 quantization",
                "state": "off",
                "flags": [],
                "buys": "2-4x cheaper; may cost 1-3 quality points: re-measure quality",
            },
            {
                "lever": "5 speculative decoding",
                "state": "off",
                "flags": [],
                "buys": "1.3-2x faster decode, identical output distribution",
            },
        ],
        "argv": [
            "--model",
            "meta-llama/Llama-3.3-70B-Instruct",
            "--served-model-name",
            "llama-3.3-70b",
            "--max-model-len",
            "32768",
            "--enable-prefix-caching",
            "--max-num-batched-tokens",
            "16384",
            "--max-num-seqs",
            "256",
            "--gpu-memory-utilization",
            "0.92",
            "--tensor-parallel-size",
            "8",
            "--pipeline-parallel-size",
            "2",
            "--distributed-executor-backend",
            "ray",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
        ],
        "deployment": {
            "served models": "llama-3.3-70b",
            "nodes": "2 x 8 GPUs (LeaderWorkerSet + Ray; Kubernetes only)",
            "weights download": "job",
            "startup budget": STARTUP,
            "autoscaling": "keda 1..4 replicas at 8 waiting requests per replica",
            "metrics": "podmonitor + Grafana dashboard",
        },
        "warnings": [],
    }


def test_explain_data_names_the_quantize_job() -> None:
    data = explain_data(load_plan("profiles/examples/quantize-w4a16.yaml"))
    assert data["deployment"]["quantize job"] == (
        "W4A16 (awq) -> my-org/Llama-3.1-8B-Instruct-W4A16-AWQ (-t quantize-job)"
    )


def test_explain_table_is_the_levers_then_the_layout() -> None:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(explain_table(load_plan(LLAMA_70B)))
    assert console.export_text() == (
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ Lever                                                ┃ State ┃ Renders                                               ┃\n"
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
        "│ 1 prompt cache                                       │ off   │ -                                                     │\n"
        "│ identical deterministic requests answered from cache │       │                                                       │\n"
        "│ (5-10x cost win at a real hit rate)                  │       │                                                       │\n"
        "│ 2 prefix caching                                     │ on    │ --enable-prefix-caching                               │\n"
        "│ shared system prompts / RAG context skip prefill     │       │                                                       │\n"
        "│ (TTFT -40..70%)                                      │       │                                                       │\n"
        "│ 3 batching                                           │ set   │ --max-num-batched-tokens 16384                        │\n"
        "│ token budget per step: too high OOMs, too low wastes │       │ --max-num-seqs 256                                    │\n"
        "│ throughput                                           │       │                                                       │\n"
        "│ 4 quantization                                       │ off   │ -                                                     │\n"
        "│ 2-4x cheaper; may cost 1-3 quality points:           │       │                                                       │\n"
        "│ re-measure quality                                   │       │                                                       │\n"
        "│ 5 speculative decoding                               │ off   │ -                                                     │\n"
        "│ 1.3-2x faster decode, identical output distribution  │       │                                                       │\n"
        "├──────────────────────────────────────────────────────┼───────┼───────────────────────────────────────────────────────┤\n"
        "│ served models                                        │       │ llama-3.3-70b                                         │\n"
        "│ nodes                                                │       │ 2 x 8 GPUs (LeaderWorkerSet + Ray; Kubernetes only)   │\n"
        "│ weights download                                     │       │ job                                                   │\n"
        "│ startup budget                                       │       │ 33m: 141.1 GB of weights (load at 500 MB/s + 10 min   │\n"
        "│                                                      │       │ warm-up) x1.5 + 10 min for the Ray cluster            │\n"
        "│ autoscaling                                          │       │ keda 1..4 replicas at 8 waiting requests per replica  │\n"
        "│ metrics                                              │       │ podmonitor + Grafana dashboard                        │\n"
        "└──────────────────────────────────────────────────────┴───────┴───────────────────────────────────────────────────────┘\n"
    )


def test_engine_lever_facts_kv_offload_says_what_its_backend_buys() -> None:
    from tests.test_plan import head, plan_of

    common = (
        "pays for long shared contexts whose KV does not fit in GPU memory (a prefix comes back from CPU memory "
        "instead of being recomputed); costs host memory and PCIe traffic, and buys nothing when the GPU's KV "
        "cache already holds the working set; "
    )
    native = plan_of(head("0.32.0") + "kv_offload: {size: 8GiB}\n")
    assert engine_lever_facts(native) == {
        "kv_offload": "native: " + common + "vLLM's own CPU tier (from 0.11.1): nothing to install"
    }
    lmcache = plan_of(head("0.32.0") + "kv_offload: {backend: lmcache, size: 8GiB}\n")
    assert engine_lever_facts(lmcache) == {
        "kv_offload": "lmcache: " + common + "LMCache inside vLLM (from 0.8.5, before the native tier exists; more "
        "tiers through LMCACHE_* in server.env): the image needs the lmcache package, whose version must suit the "
        "pinned vLLM; it keeps whole 256-token chunks (a shorter tail is not stored) and shares nothing between "
        "replicas (LMCache's server mode, not rendered)"
    }
