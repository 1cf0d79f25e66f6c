"""Cross-field checks on a validated profile. Each returns located problems; version-specific
checks (does this vLLM have that flag?) happen while planning, in ``vllmtune.plan``."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from vllmtune.errors import Problem
from vllmtune.flags import known_versions
from vllmtune.profile.models import (
    LABEL_VALUE_RE,
    MANAGED_SECRET_VARS,
    ROUTER_VERSION,
    SECRET_NAME_RE,
    parse_duration,
)
from vllmtune.util.paths import looks_local

if TYPE_CHECKING:
    from vllmtune.profile.loaded import LoadedProfile
    from vllmtune.profile.models import Profile, SecretRef

# Methods whose speculative proposals come from separate weights (a draft model or a head).
DRAFT_METHODS = {"draft_model", "eagle", "eagle3", "medusa", "mlp_speculator", "dflash"}
FAMILY_RE = re.compile(
    r"(llama|qwen|mistral|mixtral|gemma|phi|deepseek|falcon|opt|gpt2|granite|olmo|yi|baichuan)"
    r"[-_ ]?(\d+)?",
    re.I,
)


def _model_family(model_id: str) -> tuple[str, str] | None:
    """A rough (family, major version) from a model id, e.g. ('llama', '3')."""
    m = FAMILY_RE.search(model_id.rsplit("/", 1)[-1]) or FAMILY_RE.search(model_id)
    if not m:
        return None
    return m.group(1).lower(), m.group(2) or ""


# The compose-spec's name pattern for top-level volumes.
COMPOSE_VOLUME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")

# What vLLM reads to allow /v1/load_lora_adapter (lora.runtime_updates sets it).
RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"

# What kv_offload.backend lmcache sets for LMCache inside vLLM (its size is kv_offload.size).
LMCACHE_SIZE_ENV = ("LMCACHE_LOCAL_CPU", "LMCACHE_MAX_LOCAL_CPU_SIZE")
# An image with the lmcache package and vLLM (LMCache's own, the production-stack chart's default).
LMCACHE_IMAGE = "lmcache/vllm-openai"

Report = Callable[[tuple[str | int, ...], str], None]


def run_checks(lp: LoadedProfile) -> tuple[list[Problem], list[Problem]]:
    """All profile-level checks. Returns (errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []

    def err(path: tuple[str | int, ...], msg: str) -> None:
        errors.append(lp.problem(path, msg))

    def warn(path: tuple[str | int, ...], msg: str) -> None:
        warnings.append(lp.problem(path, msg))

    p = lp.profile
    versions = known_versions()
    if p.vllm.version == "latest":
        err(("vllm", "version"), f"'latest' is not reproducible; pin a release, e.g. version: \"{versions[-2]}\"")
    elif p.vllm.version.lstrip("v") not in versions:
        err(
            ("vllm", "version"),
            f"unknown vLLM version {p.vllm.version!r}; vllmtune knows "
            f'{versions[0]} .. {versions[-1]} (quote it in YAML: "0.10" is not 0.1)',
        )

    b = p.batching
    if (
        b.chunked_prefill is False
        and b.max_num_batched_tokens
        and p.model.max_model_len
        and b.max_num_batched_tokens < p.model.max_model_len
    ):
        err(
            ("batching", "max_num_batched_tokens"),
            f"{b.max_num_batched_tokens} is below model.max_model_len "
            f"({p.model.max_model_len}); with chunked_prefill off a whole prompt must fit one "
            f"step: raise it to >= {p.model.max_model_len} or enable chunked_prefill",
        )

    r = p.resources
    if r.gpu_memory_utilization is not None and not 0 < r.gpu_memory_utilization <= 1:
        err(
            ("resources", "gpu_memory_utilization"),
            f"{r.gpu_memory_utilization} is outside (0, 1]; it is a fraction, e.g. 0.9",
        )
    parallel = r.tensor_parallel_size * r.pipeline_parallel_size
    _check_parallelism(lp, err)
    if p.parallelism.data == 1 and r.nodes == 1 and r.gpus > 0 and parallel > r.gpus and "gpus" in r.model_fields_set:
        err(
            ("resources", "tensor_parallel_size"),
            f"tensor_parallel_size x pipeline_parallel_size = {parallel} needs {parallel} GPUs "
            f"but resources.gpus is {r.gpus}; raise gpus or lower the parallel sizes",
        )
    if r.nodes > 1:
        _check_multi_node(lp, err, warn)

    for path, value in (
        (("deploy", "docker", "hf_cache"), p.deploy.docker.hf_cache),
        (("deploy", "compose", "hf_cache"), p.deploy.compose.hf_cache),
    ):
        if ":" in value or "\n" in value:
            err(
                path,
                f"{value!r}: a volume path cannot contain ':' or a newline (docker "
                "reads ':' as the separator of host and container paths)",
            )
    named = p.deploy.compose.hf_cache
    if "/" not in named and not named.startswith((".", "~")) and not COMPOSE_VOLUME_RE.match(named):
        err(
            ("deploy", "compose", "hf_cache"),
            f"{named!r} is a named volume (it has no '/'), and Compose names volumes with letters, digits, "
            "'.', '_' and '-' only; use such a name, or a path (./hf-cache, /data/hf) for a host directory",
        )
    ident = p.quantization.checkpoint or p.model.id
    if looks_local(ident) and (":" in ident or "\n" in ident):
        err(
            ("model", "id"),
            f"{ident!r}: a local model directory cannot contain ':' or a "
            "newline (it is bind-mounted into the container)",
        )
    _check_speculative(lp, err, warn)
    _check_quantization(lp, warn)
    _check_recipe(lp, err, warn)
    _check_lora(lp, err)
    _check_engine_levers(lp, err)
    _check_lmcache(lp, err, warn)
    _check_scaling(lp, err, warn)
    _check_routing(lp, err, warn)
    _check_secrets(lp, err)

    if p.model.served_name is not None and not LABEL_VALUE_RE.match(p.model.served_name):
        err(
            ("model", "served_name"),
            f"{p.model.served_name!r} cannot be a Kubernetes label value: use at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    for key, value in p.deploy.kubernetes.labels.items():
        if not LABEL_VALUE_RE.match(value):
            err(("deploy", "kubernetes", "labels", key), f"{value!r} is not a valid label value")
    k8s = p.deploy.kubernetes
    if k8s.replicas > 1 and k8s.pvc.access_mode in ("ReadWriteOnce", "ReadWriteOncePod"):
        warn(
            ("deploy", "kubernetes", "replicas"),
            f"{k8s.replicas} replicas share a {k8s.pvc.access_mode} model cache: pods on other "
            "nodes cannot mount it; set deploy.kubernetes.pvc.access_mode: ReadWriteMany",
        )
    if p.prompt_cache.enabled and p.prompt_cache.max_temperature > 0.1:
        warn(
            ("prompt_cache", "max_temperature"),
            f"{p.prompt_cache.max_temperature} caches sampled (non-deterministic) answers; "
            "users will see the same answer where they expect variety",
        )
    return errors, warnings


def _check_speculative(lp: LoadedProfile, err: Report, warn: Report) -> None:
    s = lp.profile.speculative
    if s is None:
        return
    if s.method in DRAFT_METHODS and not s.model:
        err(
            ("speculative", "model"),
            f"method {s.method} needs the draft model: add speculative.model (e.g. a small model of the same family)",
        )
    if s.method == "ngram" and s.model:
        warn(("speculative", "model"), "ignored: ngram proposes tokens from the prompt itself")
    if s.method != "ngram" and (s.prompt_lookup_max or s.prompt_lookup_min):
        err(("speculative", "prompt_lookup_max"), f"only for method ngram, not {s.method}")
    if s.prompt_lookup_max and s.prompt_lookup_min and s.prompt_lookup_min > s.prompt_lookup_max:
        err(
            ("speculative", "prompt_lookup_min"),
            f"{s.prompt_lookup_min} is above prompt_lookup_max ({s.prompt_lookup_max})",
        )
    if s.model and s.method == "draft_model":
        target = lp.profile.quantization.checkpoint or lp.profile.model.id
        tf, df = _model_family(target), _model_family(s.model)
        if tf and df and tf != df:
            warn(
                ("speculative", "model"),
                f"{s.model!r} looks like {df[0]} {df[1]} but the target is {tf[0]} {tf[1]}: "
                "a draft model must share the target's tokenizer (same family)",
            )


QUANT_NAME_HINTS = {
    "awq": "awq",
    "gptq": "gptq",
    "fp8": "fp8",
    "auto_awq": "awq",
    "awq_marlin": "awq",
    "gptq_marlin": "gptq",
    "auto_gptq": "gptq",
}


def _check_quantization(lp: LoadedProfile, warn: Report) -> None:
    q = lp.profile.quantization
    if not q.method or not q.checkpoint:
        # fp8 may quantize a 16-bit checkpoint online; AWQ/GPTQ need a quantized one
        if q.method in QUANT_NAME_HINTS and "fp8" not in q.method and not q.checkpoint:
            hint = QUANT_NAME_HINTS[q.method]
            if hint not in lp.profile.model.id.lower():
                warn(
                    ("quantization", "checkpoint"),
                    f"method {q.method} without a quantized checkpoint: {lp.profile.model.id!r} "
                    f"does not look {hint.upper()}-quantized; set quantization.checkpoint",
                )
        return
    name = q.checkpoint.lower()
    expected = QUANT_NAME_HINTS.get(q.method)
    if expected and expected not in name:
        hint = expected
        others = sorted({v for v in QUANT_NAME_HINTS.values() if v in name and v != hint})
        extra = f" (its name says {others[0].upper()})" if others else ""
        warn(
            ("quantization", "checkpoint"),
            f"{q.checkpoint!r} does not look like a {hint.upper()} checkpoint{extra}; method {q.method} needs one",
        )


def _check_secrets(lp: LoadedProfile, err: Report) -> None:
    p = lp.profile
    refs: dict[tuple[str | int, ...], SecretRef | None] = {
        ("server", "api_key"): p.server.api_key,
        ("server", "hf_token"): p.server.hf_token,
        ("prompt_cache", "redis_url"): p.prompt_cache.redis_url,
    }
    refs.update({("server", "secret_env", name): ref for name, ref in p.server.secret_env.items()})
    for path, ref in refs.items():
        if ref is not None and ref.env is None and ref.secret is None:
            err(path, "give the secret by reference: {env: NAME} and/or {secret: {name: NAME, key: KEY}}")
    managed = {"HF_TOKEN", "VLLM_API_KEY"} | {"VLLMTUNE_REDIS_PASSWORD", "VLLMTUNE_REDIS_URL"}
    for name in p.server.secret_env:
        if name in managed or name in p.server.env:
            what = "server.env" if name in p.server.env else "vllmtune (server.hf_token, server.api_key, the cache)"
            err(("server", "secret_env", name), f"{name} is already set by {what}; set it in one place")
    flagged: set[tuple[str | int, ...]] = set()
    for key, value in p.server.env.items():
        if key.upper() in MANAGED_SECRET_VARS:
            flagged.add(("server", "env", key))
            field = MANAGED_SECRET_VARS[key.upper()]
            err(
                ("server", "env", key),
                f"looks like a secret; never write secrets in a profile: use "
                f"server.{field}: {{env: {key}}} (or a Kubernetes secret reference)",
            )
        elif SECRET_NAME_RE.search(key) and looks_random(value):
            flagged.add(("server", "env", key))
            err(
                ("server", "env", key),
                "a random-looking value under a secret-like name is a literal secret; never write secrets in "
                f"a profile: pass it by reference, server.secret_env: {{{key}: {{env: {key}}}}} (docker, compose) "
                "and/or {secret: {name: S, key: K}} (kubernetes)",
            )
    _check_literal_secrets(lp, err, flagged)


_HEX_RE = re.compile(r"[0-9a-fA-F]{16,}")


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_random(value: str) -> bool:
    """A value that looks generated rather than written: hex of 16+ digits with letters and
    digits (entropy >= 3 bits/char), or 20+ characters without spaces mixing lower case, upper
    case and digits (>= 4 bits/char). Paths, URLs, words, numbers, booleans do not."""
    v = value.strip()
    if len(v) < 16 or any(c.isspace() for c in v) or v.startswith(("/", "./", "../", "~/")) or "://" in v:
        return False
    if _HEX_RE.fullmatch(v):
        return any(c.isdigit() for c in v) and any(c.isalpha() for c in v) and _entropy(v) >= 3.0
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)))
    return len(v) >= 20 and classes == 3 and _entropy(v) >= 4.0


# Literal credentials anywhere in a profile (tokens by their well-known prefixes, JWTs, URL userinfo).
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})"
)
_URL_CREDENTIALS_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]*@")
_SECRET_FLAG_RE = re.compile(r"^--(api-key|hf-token|[a-z-]*(token|secret|password))(=|$)")
_BY_REFERENCE = "{env: NAME} (docker, compose) and/or {secret: {name: S, key: K}} (kubernetes)"


def _strings(value: object, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, (*path, k))]
    if isinstance(value, list | tuple):
        return [x for i, v in enumerate(value) for x in _strings(v, (*path, i))]
    return []


def _check_literal_secrets(lp: LoadedProfile, err: Report, flagged: set[tuple[str | int, ...]]) -> None:
    """Every string of the profile: no token, no credentials in a URL, no secret-carrying flag."""
    doc = lp.profile.model_dump(mode="python", exclude_defaults=True)
    args = list(lp.profile.server.extra_args)
    for i, arg in enumerate(args):
        m = _SECRET_FLAG_RE.match(arg)
        if m:
            field = "hf_token" if m.group(1) == "hf-token" else "api_key"
            err(
                ("server", "extra_args", i),
                f"{arg.split('=')[0]} passes a secret on the command line; remove it and set "
                f"server.{field}: {_BY_REFERENCE}",
            )
            flagged |= {("server", "extra_args", i), ("server", "extra_args", i + 1)}
    for path, text in _strings(doc, ()):
        if path in flagged:
            continue
        if _URL_CREDENTIALS_RE.search(text):
            err(
                path,
                "a URL with credentials (user:password@) is a literal secret; remove them from the URL and pass "
                f"them by reference (server.hf_token, server.api_key, prompt_cache.redis_url take {_BY_REFERENCE})",
            )
        elif _TOKEN_RE.search(text):
            err(
                path,
                "looks like a literal secret (an access token); never write secrets in a profile: "
                f"server.hf_token and server.api_key take {_BY_REFERENCE}",
            )


def server_gpus(p: Profile) -> int:
    """GPUs one server (one node of a multi-node server) requests: resources.gpus when the profile
    sets it, else parallelism.data x tensor_parallel_size x pipeline_parallel_size."""
    r = p.resources
    if "gpus" in r.model_fields_set or r.nodes > 1:
        return r.gpus
    return p.parallelism.data * r.tensor_parallel_size * r.pipeline_parallel_size


def _check_parallelism(lp: LoadedProfile, err: Report) -> None:
    p = lp.profile
    r, par = p.resources, p.parallelism
    if par.eplb and not par.expert:
        err(("parallelism", "eplb"), "load-balances experts across expert-parallel ranks: set parallelism.expert: true")
    if par.data == 1:
        return
    tp, pp = r.tensor_parallel_size, r.pipeline_parallel_size
    total = par.data * tp * pp
    if r.nodes > 1:
        err(
            ("parallelism", "data"),
            f"{par.data} data-parallel ranks across {r.nodes} nodes is not rendered; use one node per server "
            "and deploy.kubernetes.replicas for more copies, or parallelism.data: 1",
        )
    elif r.gpus > 0 and total != r.gpus and "gpus" in r.model_fields_set:
        err(
            ("parallelism", "data"),
            f"data {par.data} x tensor_parallel_size {tp} x pipeline_parallel_size {pp} = {total} GPUs per "
            f"server, but resources.gpus is {r.gpus}: they must be equal; set resources.gpus: {total} "
            "(or remove it: the plan then requests that many)",
        )


def _check_engine_levers(lp: LoadedProfile, err: Report) -> None:
    p = lp.profile
    c = p.compilation
    if c.enforce_eager and c.cudagraph_capture_sizes is not None:
        err(
            ("compilation", "cudagraph_capture_sizes"),
            "enforce_eager runs without CUDA graphs, so nothing captures these sizes; remove one of the two",
        )
    if p.lora is not None and not p.lora.adapters and not p.lora.runtime_updates:
        err(
            ("lora", "adapters"),
            "no adapter to serve: list at least one, or set lora.runtime_updates: true to load them at run time",
        )
    if p.lora is not None and p.lora.runtime_updates and RUNTIME_LORA_ENV in p.server.env:
        err(
            ("server", "env", RUNTIME_LORA_ENV),
            f"{RUNTIME_LORA_ENV} is set by lora.runtime_updates; remove it from server.env",
        )


def _check_lmcache(lp: LoadedProfile, err: Report, warn: Report) -> None:
    p = lp.profile
    if p.kv_offload is None or p.kv_offload.backend != "lmcache":
        return
    for var in LMCACHE_SIZE_ENV:
        if var in p.server.env:
            err(("server", "env", var), f"{var} is set by kv_offload (backend lmcache); remove it from server.env")
    if p.vllm.image == "vllm/vllm-openai":
        warn(
            ("kv_offload", "backend"),
            "lmcache runs inside vLLM and imports the lmcache package, which vllm/vllm-openai images have only "
            "when vLLM built them with INSTALL_KV_CONNECTORS=true (docker/Dockerfile); without it the server "
            f"fails at start-up ({LMCACHE_IMAGE}, the production-stack chart's default, has it): set vllm.image "
            f"to an image built FROM vllm/vllm-openai:v{p.vllm.version} with pip install lmcache",
        )


def _check_multi_node(lp: LoadedProfile, err: Report, warn: Report) -> None:
    r = lp.profile.resources
    total = r.nodes * r.gpus
    tp, pp = r.tensor_parallel_size, r.pipeline_parallel_size
    if r.gpus == 0:
        err(("resources", "gpus"), f"{r.nodes} nodes need GPUs: set resources.gpus to the GPUs of one node")
        return
    if tp * pp != total:
        err(
            ("resources", "nodes"),
            f"{r.nodes} nodes x {r.gpus} GPUs = {total} GPUs, but tensor_parallel_size {tp} x "
            f"pipeline_parallel_size {pp} = {tp * pp}: they must be equal; as vLLM recommends, "
            f"set tensor_parallel_size: {r.gpus} (GPUs per node) and pipeline_parallel_size: {r.nodes} (nodes)",
        )
    elif tp > r.gpus:
        warn(
            ("resources", "tensor_parallel_size"),
            f"{tp} spans nodes (each has {r.gpus} GPUs): tensor parallel traffic then crosses the "
            f"network at every layer; prefer tensor_parallel_size: {r.gpus}, pipeline_parallel_size: {r.nodes}",
        )
    k8s = lp.profile.deploy.kubernetes
    if k8s.pvc.access_mode not in ("ReadWriteMany", "ReadOnlyMany"):
        err(
            ("resources", "nodes"),
            f"the {r.nodes} pods of a {r.nodes}-node server mount the model cache on {r.nodes} machines: "
            f"{k8s.pvc.access_mode} attaches to one; set deploy.kubernetes.pvc.access_mode: ReadWriteMany "
            "(and model_download: job to download once)",
        )


def _check_recipe(lp: LoadedProfile, err: Report, warn: Report) -> None:
    q = lp.profile.quantization
    r = q.recipe
    if r is None:
        return
    if q.checkpoint is None:
        err(
            ("quantization", "recipe"),
            "the job needs somewhere to write: set quantization.checkpoint to a Hugging Face repo to push "
            "to (e.g. my-org/Llama-3.1-8B-Instruct-W4A16) or a local directory",
        )
    if q.method not in (None, "compressed-tensors"):
        err(
            ("quantization", "method"),
            f"{q.method!r} cannot load what the recipe produces: llm-compressor writes a "
            "compressed-tensors checkpoint; remove quantization.method (vLLM reads it from the checkpoint)",
        )
    if r.algorithm in ("awq", "gptq") and r.scheme.startswith("FP8"):
        err(
            ("quantization", "recipe", "algorithm"),
            f"{r.algorithm} calibrates integer weights; {r.scheme} needs algorithm: rtn",
        )
    if r.algorithm == "awq" and r.gpus == 0:
        warn(
            ("quantization", "recipe", "gpus"),
            "llm-compressor's AWQ needs a GPU (it pins its activation cache: 'Cannot access accelerator "
            "device' on CPU); set recipe.gpus: 1, or use algorithm: gptq on CPU",
        )
    if r.gpus > 1:
        warn(
            ("quantization", "recipe", "gpus"),
            f"{r.gpus} GPUs: llm-compressor calibrates on one GPU unless started with torchrun, and "
            "onloads one layer at a time; 1 GPU is enough for most models",
        )
    if r.scheme == "FP8_DYNAMIC" and r.algorithm != "rtn":
        err(("quantization", "recipe", "algorithm"), "FP8_DYNAMIC needs no calibration: use algorithm: rtn")
    if q.checkpoint and not looks_local(q.checkpoint) and lp.profile.server.hf_token is None:
        err(
            ("quantization", "checkpoint"),
            f"the job pushes the result to the Hub repo {q.checkpoint!r}: set server.hf_token "
            "(a token with write access, by reference)",
        )


def _check_lora(lp: LoadedProfile, err: Report) -> None:
    lora = lp.profile.lora
    if lora is None:
        return
    seen: dict[str, int] = {}
    served = lp.profile.model.served_name or lp.profile.quantization.checkpoint or lp.profile.model.id
    for i, a in enumerate(lora.adapters):
        if a.name in seen:
            err(("lora", "adapters", i, "name"), f"{a.name!r} is already adapter {seen[a.name]}; names must be unique")
        elif a.name == served:
            err(("lora", "adapters", i, "name"), f"{a.name!r} is the base model's served name; pick another")
        seen.setdefault(a.name, i)
        if any(c in a.source for c in "=,") or any(c.isspace() for c in a.source):
            # vLLM parses name=path, and reads an item with a ',' as JSON instead
            err(
                ("lora", "adapters", i, "source"),
                f"{a.source!r}: vLLM reads --lora-modules as name=path (a ',' makes it JSON): "
                "no '=', ',' or whitespace in the source",
            )
    if lora.max_loras is not None and lora.max_cpu_loras is not None and lora.max_cpu_loras < lora.max_loras:
        err(("lora", "max_cpu_loras"), f"{lora.max_cpu_loras} is below max_loras ({lora.max_loras})")


def _check_routing(lp: LoadedProfile, err: Report, warn: Report) -> None:
    r = lp.profile.routing
    if r is None:
        return
    k8s = lp.profile.deploy.kubernetes
    a = k8s.autoscaling
    most = max(k8s.replicas, a.max_replicas if a else 0)
    if most < 2:
        err(
            ("routing",),
            f"a router in front of one replica buys nothing (deploy.kubernetes.replicas is {k8s.replicas}, "
            "no autoscaling): every request goes to the same server; set deploy.kubernetes.replicas: 2 or more "
            "(or autoscaling with max_replicas >= 2), or remove routing",
        )
    if r.policy == "kv_aware":
        err(
            ("routing", "policy"),
            "kv_aware needs each replica's KV events (vLLM --kv-events-config, one ZMQ endpoint per worker "
            f"given to the router as --kv-event-source), which vllmtune does not wire, and vllm-router "
            f"{ROUTER_VERSION} routes by them only prompts sent as token ids (measured: text prompts are "
            "spread by load); use consistent_hash with a session header such as x-tenant-id (measured "
            "1.4-1.9x round_robin's prefix-cache hits)",
        )
    if r.policy == "cache_aware":
        warn(
            ("routing", "policy"),
            f"vllm-router {ROUTER_VERSION} matches prefixes in /v1/completions prompts only: /v1/chat/completions "
            "requests reach cache_aware without their text, so chat traffic is spread without prefix affinity "
            "(measured: benchmarks/routing_policies.py --api chat)",
        )
    if r.policy == "consistent_hash":
        warn(
            ("routing", "policy"),
            "consistent_hash keys on a session header (x-session-id, x-user-id, x-tenant-id, x-correlation-id, "
            f"x-request-id, x-trace-id): without one, vllm-router {ROUTER_VERSION} sends every chat request to "
            "the same replica and spreads completions by a hash of each prompt; have clients send one "
            "(with x-tenant-id it kept each tenant's prefix on one replica: 1.4-1.9x round_robin's hits)",
        )
    cache = lp.profile.prompt_cache
    if r.port == lp.profile.server.port or (cache.enabled and r.port == cache.port):
        err(("routing", "port"), f"{r.port} is taken by the server or the prompt-cache proxy; pick another port")


def _check_scaling(lp: LoadedProfile, err: Report, warn: Report) -> None:
    k8s = lp.profile.deploy.kubernetes
    a = k8s.autoscaling
    if k8s.model_download == "job" and k8s.pvc.access_mode == "ReadWriteOncePod":
        err(
            ("deploy", "kubernetes", "model_download"),
            "the download Job and the servers share the cache volume: ReadWriteOncePod allows one pod; "
            "set pvc.access_mode: ReadWriteMany",
        )
    if a is None:
        return
    path = ("deploy", "kubernetes", "autoscaling")
    if a.min_replicas > a.max_replicas:
        err((*path, "min_replicas"), f"{a.min_replicas} is above max_replicas ({a.max_replicas})")
    if a.engine == "hpa" and a.min_replicas == 0:
        err((*path, "min_replicas"), "the HPA cannot scale to zero; use engine: keda or min_replicas >= 1")
    if a.engine == "hpa" and a.metric == "ttft":
        err(
            (*path, "metric"),
            "a TTFT percentile is a PromQL query, not a per-pod metric the HPA can average; use engine: keda",
        )
    if parse_duration(a.cooldown) > 3600:
        err((*path, "cooldown"), f"{a.cooldown} is above 1h, the longest scale-down window Kubernetes accepts")
    if a.min_replicas == 0 and a.engine == "keda" and not lp.profile.prompt_cache.enabled:
        err(
            (*path, "min_replicas"),
            "0 replicas can never wake up: with no pods there are no vLLM metrics to trigger on; enable "
            "prompt_cache (its proxy stays up and its request rate wakes the server) or set min_replicas: 1",
        )
    elif a.min_replicas == 0 and a.engine == "keda":
        warn(
            (*path, "min_replicas"),
            "scale to zero: the first request after idle waits for a cold start (pod scheduling, model "
            "download unless cached, load, warm-up: minutes for large models); clients need long timeouts",
        )
    if k8s.monitoring.scrape == "none":
        warn(
            ("deploy", "kubernetes", "monitoring", "scrape"),
            "none: nothing collects the metrics the autoscaler reads; use annotations, podmonitor or servicemonitor",
        )
    if a.max_replicas > 1 and k8s.pvc.access_mode in ("ReadWriteOnce", "ReadWriteOncePod"):
        warn(
            (*path, "max_replicas"),
            f"up to {a.max_replicas} replicas share a {k8s.pvc.access_mode} model cache: pods on other "
            "nodes cannot mount it; set deploy.kubernetes.pvc.access_mode: ReadWriteMany",
        )
