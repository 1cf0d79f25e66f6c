"""``-t vllm-config``: the YAML file for ``vllm serve --config FILE``.

The file is the plan's vLLM argv in file form, in the pinned version's spelling: every
``--flag value`` becomes ``flag: value``, a flag without a value becomes ``flag: true``, a flag
with several values a list, and a JSON object value (``--speculative-config``) a mapping.
Booleans keep the argv's form: ``--no-enable-prefix-caching`` becomes
``no-enable-prefix-caching: true``, never ``enable-prefix-caching: false`` -- vLLM 0.32's
config loader looks the ``--no-`` form up on the top-level ``vllm`` parser, which does not have
it, and drops a ``false`` silently (prefix caching would stay on). Old ``--flag True|False``
options keep their word as a string. The model is ``model:`` (the container's view: a local
model directory is its mount path), as ``vllm serve --config FILE`` reads it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vllmtune.errors import RenderError
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render.coverage import COMMON, Coverage, Reported, header, warnings_for

if TYPE_CHECKING:
    from vllmtune.plan import DeploymentPlan

TARGET = "vllm-config"

_ENV = "a vllm serve config file holds vLLM arguments only; set it in the server's environment"
# What the plan itself puts in the environment (reported under the field that sets it).
_PLAN_ENV = {
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING",
    "LMCACHE_CHUNK_SIZE",
    "LMCACHE_LOCAL_CPU",
    "LMCACHE_MAX_LOCAL_CPU_SIZE",
}
COVERAGE: Coverage = {
    **COMMON,
    "name": "the header comment",
    "vllm.version": "the keys, in that version's spelling (header comment)",
    "vllm.image": Reported("the file is used with whatever vLLM runs it"),
    "model.*": "model, revision, tokenizer, served-model-name, max-model-len, dtype, trust-remote-code",
    "prompt_cache.*": Reported(
        "the prompt-cache proxy is a separate service (vllmtune render -t compose / kubernetes deploys it)",
        lambda p: p.prompt_cache is not None,
    ),
    "prefix_caching": "enable-prefix-caching / no-enable-prefix-caching",
    "batching.*": "max-num-batched-tokens, max-num-seqs, enable-chunked-prefill",
    "quantization.method": "quantization",
    "quantization.checkpoint": "model",
    "quantization.kv_cache_dtype": "kv-cache-dtype",
    "speculative.*": "speculative-config (a mapping), or the pre-0.8.2 speculative flags",
    "lora.*": "enable-lora, lora-modules, max-loras, max-lora-rank, max-cpu-loras",
    "lora.runtime_updates": Reported(
        _ENV + " (VLLM_ALLOW_RUNTIME_LORA_UPDATING)",
        lambda p: any(name == "VLLM_ALLOW_RUNTIME_LORA_UPDATING" for name, _ in p.env),
        "enable-lora",
    ),
    "sleep_mode": "enable-sleep-mode",
    "parallelism.*": "data-parallel-size, enable-expert-parallel, enable-eplb",
    "scheduling.*": "async-scheduling, long-prefill-token-threshold, scheduling-policy",
    "compilation.*": "enforce-eager, cudagraph-capture-sizes (cuda-graph-sizes before 0.11.1), performance-mode",
    "kv_offload.*": Reported(
        _ENV + " (LMCACHE_CHUNK_SIZE, LMCACHE_LOCAL_CPU, LMCACHE_MAX_LOCAL_CPU_SIZE)",
        lambda p: p.vllm.kv_offloading_backend == "lmcache",
        "kv-offloading-backend, kv-offloading-size (native); kv-transfer-config (lmcache)",
    ),
    "resources.gpus": Reported("the GPUs are the machine's that runs vllm serve"),
    "resources.gpu_memory_utilization": "gpu-memory-utilization",
    "resources.tensor_parallel_size": "tensor-parallel-size",
    "resources.pipeline_parallel_size": "pipeline-parallel-size",
    "resources.nodes": Reported(
        "the Ray cluster across nodes must be formed outside vllm serve (distributed-executor-backend: ray is set)",
        lambda p: p.multi_node is not None,
    ),
    "resources.shm_size": Reported("/dev/shm is the container's or machine's"),
    "server.port": "port",
    "server.host": "host",
    "server.extra_args": "their flags, in file form",
    "server.api_key.*": Reported(
        _ENV + " (VLLM_API_KEY)", lambda p: any(e.name == "VLLM_API_KEY" for e in p.secret_env)
    ),
    "server.hf_token.*": Reported(_ENV + " (HF_TOKEN)", lambda p: any(e.name == "HF_TOKEN" for e in p.secret_env)),
    "server.env": Reported(_ENV, lambda p: any(name not in _PLAN_ENV for name, _ in p.env)),
    "server.secret_env": Reported(
        _ENV, lambda p: any(e.name not in ("VLLM_API_KEY", "HF_TOKEN") for e in p.secret_env)
    ),
    "deploy.kubernetes.*": Reported("settings of the kubernetes target"),
}


def _scalar(text: str) -> Any:
    """An argv value as YAML: an int when it is one (vLLM reads ``str(value)`` back, the same
    text), a JSON object as a mapping, else the text."""
    if text.lstrip("-").isdigit() and str(int(text)) == text:
        return int(text)
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and repr(number) == text:
        return number
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return text
        if isinstance(obj, dict):
            return obj
    return text


def _value_flags(plan: DeploymentPlan) -> frozenset[str]:
    """The spellings of the plan's flags whose typed setting is a value (not a switch): the word
    after them is their value even when it starts with ``-`` (``server.host`` may)."""
    s = plan.vllm
    return frozenset(
        flag
        for dest, flag in s.flags
        if isinstance(getattr(s, dest, None), str | int | float) and not isinstance(getattr(s, dest), bool)
    )


def _config_mapping(args: tuple[str, ...], takes_value: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The argv as the config file's mapping (keys without the leading ``--``)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        name, eq, inline = word.partition("=")
        if not name.startswith("--"):
            raise RenderError(
                f"{name}: a --config file names options by their long form; write it so in server.extra_args"
            )
        key = name.removeprefix("--")
        if key in out:
            raise RenderError(f"{name} is given twice; a --config file holds each option once (give it once)")
        if eq:
            out[key] = _scalar(inline)
            continue
        values = []
        if word in takes_value and i < len(args):
            values.append(args[i])
            i += 1
        while i < len(args) and not args[i].startswith("-"):
            values.append(args[i])
            i += 1
        if not values:
            out[key] = True
        elif len(values) == 1:
            out[key] = _scalar(values[0])
        else:
            out[key] = values
    return out


def vllm_config_warnings(plan: DeploymentPlan) -> tuple[str, ...]:
    """The profile fields this file does not carry, as warnings."""
    return warnings_for(TARGET, COVERAGE, plan)


def render_vllm_config(plan: DeploymentPlan) -> str:
    """The ``vllm serve --config`` file of the plan."""
    warnings = vllm_config_warnings(plan)
    apply = "vllm serve --config THIS_FILE (inside the image: mount it and pass --config)"
    return header(TARGET, plan, apply, warnings) + dump_yaml(_config_mapping(plan.args, _value_flags(plan)))
