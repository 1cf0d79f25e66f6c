"""The vLLM server's argv, in the pinned version's spelling, and its typed settings."""

from __future__ import annotations

import json
from typing import Any

from vllmtune.flags import (
    describe_versions,
    flagset,
    version_key,
    versions_with_dest,
    versions_with_value,
)
from vllmtune.levers import LEVERS
from vllmtune.modelfacts.sizes import parse_size
from vllmtune.plan.base import _Base
from vllmtune.plan.model import (
    CONTAINER_ADAPTERS,
    Mount,
)
from vllmtune.plan.settings import (
    VLLM_DEFAULT,
    Default,
    LoraAdapterSettings,
    LoraSettings,
    SpeculativeSettings,
    VllmSettings,
    or_default,
)

# profile field path -> vLLM argparse dest. The single place a lever meets a flag.
FIELD_FLAGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("model", "revision"), "revision"),
    (("model", "tokenizer"), "tokenizer"),
    (("model", "served_name"), "served_model_name"),
    (("model", "max_model_len"), "max_model_len"),
    (("model", "dtype"), "dtype"),
    (("model", "trust_remote_code"), "trust_remote_code"),
    (("prefix_caching",), "enable_prefix_caching"),
    (("batching", "max_num_batched_tokens"), "max_num_batched_tokens"),
    (("batching", "max_num_seqs"), "max_num_seqs"),
    (("batching", "chunked_prefill"), "enable_chunked_prefill"),
    (("quantization", "method"), "quantization"),
    (("quantization", "kv_cache_dtype"), "kv_cache_dtype"),
    (("resources", "gpu_memory_utilization"), "gpu_memory_utilization"),
    (("resources", "tensor_parallel_size"), "tensor_parallel_size"),
    (("resources", "pipeline_parallel_size"), "pipeline_parallel_size"),
    (("lora", "max_loras"), "max_loras"),
    (("lora", "max_lora_rank"), "max_lora_rank"),
    (("lora", "max_cpu_loras"), "max_cpu_loras"),
    (("sleep_mode",), "enable_sleep_mode"),
    (("parallelism", "data"), "data_parallel_size"),
    (("parallelism", "expert"), "enable_expert_parallel"),
    (("parallelism", "eplb"), "enable_eplb"),
    (("scheduling", "async"), "async_scheduling"),
    (("scheduling", "long_prefill_token_threshold"), "long_prefill_token_threshold"),
    (("compilation", "enforce_eager"), "enforce_eager"),
    (("compilation", "performance_mode"), "performance_mode"),
)
# Values equal to vLLM's own default are not rendered (never force what was not asked).
SKIP_DEFAULTS = {"tensor_parallel_size": 1, "pipeline_parallel_size": 1, "data_parallel_size": 1}
# Flags that size the server: the plan derives the GPU requests from their fields, so extra_args may not set them.
RESOURCE_DESTS = {
    "data_parallel_size": "parallelism.data",
    "data_parallel_size_local": "parallelism.data",
    "tensor_parallel_size": "resources.tensor_parallel_size",
    "pipeline_parallel_size": "resources.pipeline_parallel_size",
}
# The engine levers' dests (the fields' x-vllm-dest) -> their field: never in extra_args, set or not.
LEVER_DESTS = {
    "enable_sleep_mode": "sleep_mode",
    "enable_expert_parallel": "parallelism.expert",
    "enable_eplb": "parallelism.eplb",
    "async_scheduling": "scheduling.async",
    "long_prefill_token_threshold": "scheduling.long_prefill_token_threshold",
    "scheduling_policy": "scheduling.priority",
    "enforce_eager": "compilation.enforce_eager",
    "cuda_graph_sizes": "compilation.cudagraph_capture_sizes",
    "cudagraph_capture_sizes": "compilation.cudagraph_capture_sizes",
    "performance_mode": "compilation.performance_mode",
    "kv_offloading_backend": "kv_offload.backend",
    "kv_offloading_size": "kv_offload.size",
}


def _kv_offload_gib(size: str) -> float:
    """kv_offload.size in GiB, as --kv-offloading-size takes it."""
    return parse_size(size) / 2**30


# kv_offload.backend lmcache: LMCache inside vLLM, through vLLM's in-process connector (registered
# in vllm/distributed/kv_transfer/kv_connector/factory.py from 0.8.5; 0.8.4 has only the V0
# LMCacheConnector). Not --kv-offloading-backend lmcache: in 0.32 that selects LMCacheMPConnector,
# which needs a standalone LMCache server.
LMCACHE_CONNECTOR = "LMCacheConnectorV1"
LMCACHE_SINCE = "0.8.5"
LMCACHE_TRANSFER_CONFIG = json.dumps(
    {"kv_connector": LMCACHE_CONNECTOR, "kv_role": "kv_both"}, separators=(",", ":"), sort_keys=True
)
LMCACHE_CHUNK_SIZE = "256"  # LMCache's default (lmcache/v1/config.py), stated so the pod shows it


def _lmcache_gib_per_rank(size: str, ranks: int) -> float:
    """LMCACHE_MAX_LOCAL_CPU_SIZE: LMCache reads it as GiB (max_local_cpu_size * 1024**3) for
    each worker, and vLLM has one worker per tensor x pipeline rank; kv_offload.size is them all."""
    return _kv_offload_gib(size) / ranks


# Capture sizes: the newest spelling the pinned version has.
CUDAGRAPH_DESTS = ("cudagraph_capture_sizes", "cuda_graph_sizes")


class _ServerArgs(_Base):
    def _field_args(self, model: str) -> None:
        """The model, then every profile field of FIELD_FLAGS that is set."""
        self.args = ["--model", model]
        self.spelt["model"] = "--model"
        for path, dest in FIELD_FLAGS:
            value = self._value(path)
            if value is None or SKIP_DEFAULTS.get(dest) == value:
                continue
            self.args += self.flag(path, dest, value)
        self._engine_levers()

    def _engine_levers(self) -> None:
        """The scheduler policy and the CUDA graph sizes: fields whose value is not the flag's."""
        priority = self.p.scheduling.priority
        if priority is not None:
            self.args += self.flag(("scheduling", "priority"), "scheduling_policy", "priority" if priority else "fcfs")
        self._kv_offload()
        sizes = self.p.compilation.cudagraph_capture_sizes
        if sizes is None:
            return
        flag = next((f for f in map(self.fs.by_dest, CUDAGRAPH_DESTS) if f is not None), None)
        if flag is None:
            where = sorted({v for d in CUDAGRAPH_DESTS for v in versions_with_dest(d)}, key=version_key)
            self.err(
                ("compilation", "cudagraph_capture_sizes"),
                f"vLLM {self.version} cannot express compilation.cudagraph_capture_sizes; available in "
                f"{describe_versions(where)}",
            )
            return
        self.args += [flag.name, *(str(n) for n in sizes)]
        self.spelt[flag.dest] = flag.name

    def _value(self, path: tuple[str, ...]) -> Any:
        obj: Any = self.p
        for part in path:
            # a key that is a Python keyword (scheduling.async) is the field with a trailing _
            obj = getattr(obj, part if part in type(obj).model_fields else f"{part}_") if obj is not None else None
        return obj

    def _kv_offload(self) -> None:
        """--kv-offloading-backend and --kv-offloading-size (GiB, all TP ranks together)."""
        kv = self.p.kv_offload
        if kv is None:
            return
        if kv.backend == "lmcache":
            if self.fs.by_dest("kv_transfer_config") is None or version_key(self.version) < version_key(LMCACHE_SINCE):
                where = [
                    v for v in versions_with_dest("kv_transfer_config") if version_key(v) >= version_key(LMCACHE_SINCE)
                ]
                self.err(
                    ("kv_offload", "backend"),
                    f"vLLM {self.version} cannot express kv_offload.backend lmcache (--kv-transfer-config with "
                    f"{LMCACHE_CONNECTOR}); available in {describe_versions(where)}",
                )
                return
            self.args += self.flag(("kv_offload", "backend"), "kv_transfer_config", LMCACHE_TRANSFER_CONFIG)
            return
        if self.fs.by_dest("kv_offloading_size") is None:
            self._cannot(("kv_offload",), "kv_offloading_size", "KV offloading (kv_offload)")
            return
        self.args += self.flag(("kv_offload", "backend"), "kv_offloading_backend", kv.backend)
        self.args += self.flag(("kv_offload", "size"), "kv_offloading_size", f"{_kv_offload_gib(kv.size):g}")

    def _kv_offload_env(self) -> dict[str, str]:
        """LMCache's configuration (lmcache/v1/config.py reads LMCACHE_<KEY>): its CPU tier on, sized
        per rank, in its default chunks (server.env may set LMCACHE_CHUNK_SIZE)."""
        kv = self.p.kv_offload
        if kv is None or kv.backend != "lmcache":
            return {}
        ranks = self.p.resources.tensor_parallel_size * self.p.resources.pipeline_parallel_size
        return {
            "LMCACHE_CHUNK_SIZE": self.p.server.env.get("LMCACHE_CHUNK_SIZE", LMCACHE_CHUNK_SIZE),
            "LMCACHE_LOCAL_CPU": "True",
            "LMCACHE_MAX_LOCAL_CPU_SIZE": f"{_lmcache_gib_per_rank(kv.size, ranks):g}",
        }

    def _lora(self) -> tuple[Mount, ...]:
        """--enable-lora and --lora-modules name=source (local adapters are mounted)."""
        lora = self.p.lora
        if lora is None:
            return ()
        self.args += self.flag(("lora",), "enable_lora", True)
        if not lora.adapters:
            return ()  # runtime_updates: clients load them (the plan's env allows it)
        modules, mounts = [], []
        for a in lora.adapters:
            host = self._host_path(a.source)
            loads = a.source if host is None else f"{CONTAINER_ADAPTERS}/{a.name}"
            if host is not None:
                mounts.append(Mount(source=host, target=loads, read_only=True))
            modules.append(f"{a.name}={loads}")
            self.lora_adapters.append(LoraAdapterSettings(a.name, loads))
        flag = self.fs.by_dest("lora_modules")
        if flag is None:
            self._cannot(("lora", "adapters"), "lora_modules", "LoRA adapters")
        else:
            self.args += [flag.name, *modules]
            self.spelt["lora_modules"] = flag.name
        return tuple(mounts)

    def _deprecated_quantization(self) -> None:
        method = self.p.quantization.method
        deprecated = self.fs.values("quantization_deprecated") or []
        if method and method in deprecated:
            allow = self.fs.by_dest("allow_deprecated_quantization")
            if allow is not None:
                self.args.append(allow.group[0])
                self.spelt["allow_deprecated_quantization"] = allow.group[0]
            self.warn(
                ("quantization", "method"),
                f"{method} is deprecated in vLLM {self.version} and will be removed; prefer awq, gptq or fp8",
            )

    def _speculative(self) -> None:
        s = self.p.speculative
        if s is None:
            return
        path = ("speculative", "method")
        methods = self.fs.values("speculative_methods")
        if self.fs.by_dest("speculative_config") is not None:
            if methods is not None and s.method not in methods:
                others = versions_with_value("speculative_methods", s.method)
                if others:
                    hint = f"it is available in {describe_versions(others)}; "
                else:
                    import difflib  # only for a mistake: kept off the start-up path

                    close = difflib.get_close_matches(s.method, methods, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                self.err(
                    path,
                    f"{s.method!r} is not a speculative method of vLLM "
                    f"{self.version}; {hint}choose one of: {', '.join(methods)}",
                )
                return
            config: dict[str, Any] = {"method": s.method}
            if s.model and s.method != "ngram":
                config["model"] = s.model
            config["num_speculative_tokens"] = s.num_tokens
            for key in ("prompt_lookup_max", "prompt_lookup_min", "draft_tensor_parallel_size"):
                if getattr(s, key) is not None:
                    config[key] = getattr(s, key)
            # JSON of strings and ints is also the Python literal 0.8.2 parsed.
            flag = self.fs.by_dest("speculative_config")
            assert flag is not None
            self.args += [flag.name, json.dumps(config, separators=(",", ":"))]
            self.spelt["speculative_config"] = flag.name
            return
        # Before 0.8.2: separate flags; ngram is spelled as the model "[ngram]".
        if self.fs.by_dest("speculative_model") is None:
            self._cannot(path, "speculative_config", "speculative decoding")
            return
        if s.method not in ("draft_model", "ngram"):
            where = [
                v
                for v in versions_with_dest("speculative_config")
                if s.method in (flagset(v).values("speculative_methods") or [])
            ]
            self.err(
                path, f"vLLM {self.version} cannot express method {s.method}; available in {describe_versions(where)}"
            )
            return
        self.args += self.flag(
            ("speculative", "model"), "speculative_model", "[ngram]" if s.method == "ngram" else s.model
        )
        self.args += self.flag(("speculative", "num_tokens"), "num_speculative_tokens", s.num_tokens)
        for key, dest in (
            ("prompt_lookup_max", "ngram_prompt_lookup_max"),
            ("prompt_lookup_min", "ngram_prompt_lookup_min"),
            ("draft_tensor_parallel_size", "speculative_draft_tensor_parallel_size"),
        ):
            if getattr(s, key) is not None:
                self.args += self.flag(("speculative", key), dest, getattr(s, key))

    def _extra_args(self) -> None:
        set_by_profile = {self.fs.flags[a].dest for a in self.args if a in self.fs.flags}
        for i, arg in enumerate(self.p.server.extra_args):
            if not arg.startswith("-") or arg in ("-", "--"):
                continue  # a value of the previous flag
            name = arg.split("=", 1)[0]
            flag = self.fs.flags.get(name)
            path = ("server", "extra_args", i)
            if flag is None:
                close = self.fs.suggest(name)
                hint = f"; did you mean {close}?" if close else ""
                self.err(path, f"unknown flag {name} for vLLM {self.version}{hint}")
            elif flag.dest in RESOURCE_DESTS:
                self.err(
                    path,
                    f"{name} sizes the server, and the GPU requests are derived from the profile: set "
                    f"{RESOURCE_DESTS[flag.dest]} instead (the plan then requests parallelism.data x "
                    "tensor_parallel_size x pipeline_parallel_size GPUs)",
                )
            elif flag.dest in LEVER_DESTS:
                self.err(
                    path, f"{name} is a profile field: set {LEVER_DESTS[flag.dest]} instead of passing it in extra_args"
                )
            elif flag.dest in set_by_profile or flag.dest == "model":
                self.err(
                    path,
                    f"{name} is already set by the profile; set the profile field "
                    "instead of repeating it in extra_args",
                )
        self.args += self.p.server.extra_args
        self.extra = self._extra_values(self.p.server.extra_args)

    def _extra_values(self, extra: list[str]) -> list[tuple[str, str]]:
        """server.extra_args as (dest, value) in the pinned version's terms: the plan reads its
        own input once, so that nobody reads the argv back."""
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(extra):
            name, eq, value = extra[i].partition("=")
            flag = self.fs.flags.get(name)
            i += 1
            if flag is None or not name.startswith("-") or name in ("-", "--"):
                continue
            if not eq:
                if flag.kind == "switch":
                    value = "on"
                elif flag.kind == "bool":
                    value = "on" if name == flag.group[0] else "off"
                elif flag.takes_value:
                    values = []
                    while i < len(extra) and not (extra[i].startswith("-") and extra[i] not in ("-", "--")):
                        values.append(extra[i])
                        i += 1
                        if flag.kind not in ("multi",):
                            break
                    value = " ".join(values)
            self.spelt.setdefault(flag.dest, name)
            out.append((flag.dest, value))
        return out

    def _settings(self, model: str, served_names: tuple[str, ...]) -> VllmSettings:
        """The typed settings the argv renders (see :mod:`vllmtune.plan.settings`)."""
        p = self.p
        extra = dict(self.extra)

        def extra_int(dest: str) -> int | Default:
            text = extra.get(dest)
            return int(text) if text is not None and text.strip().isdigit() else VLLM_DEFAULT

        s = p.speculative
        speculative: SpeculativeSettings | Default = VLLM_DEFAULT
        if s is not None:
            speculative = SpeculativeSettings(
                method=s.method,
                model=or_default(s.model if s.method != "ngram" else None),
                num_tokens=s.num_tokens,
                prompt_lookup_max=or_default(s.prompt_lookup_max),
                prompt_lookup_min=or_default(s.prompt_lookup_min),
                draft_tensor_parallel_size=or_default(s.draft_tensor_parallel_size),
            )
        lora: LoraSettings | Default = VLLM_DEFAULT
        if p.lora is not None:
            lora = LoraSettings(
                adapters=tuple(self.lora_adapters),
                max_loras=or_default(p.lora.max_loras),
                max_lora_rank=or_default(p.lora.max_lora_rank),
                max_cpu_loras=or_default(p.lora.max_cpu_loras),
                runtime_updates=p.lora.runtime_updates,
            )
        r = p.resources
        sch, sizes = p.scheduling, p.compilation.cudagraph_capture_sizes
        return VllmSettings(
            model=model,
            served_names=served_names,
            host=p.server.host,
            port=p.server.port,
            revision=or_default(p.model.revision),
            tokenizer=or_default(p.model.tokenizer),
            max_model_len=or_default(p.model.max_model_len),
            dtype=or_default(p.model.dtype),
            trust_remote_code=or_default(p.model.trust_remote_code),
            tensor_parallel_size=r.tensor_parallel_size,
            pipeline_parallel_size=r.pipeline_parallel_size,
            distributed_executor_backend="ray" if r.nodes > 1 else VLLM_DEFAULT,
            gpu_memory_utilization=or_default(r.gpu_memory_utilization),
            max_num_seqs=or_default(p.batching.max_num_seqs),
            max_num_batched_tokens=or_default(p.batching.max_num_batched_tokens),
            enable_chunked_prefill=or_default(p.batching.chunked_prefill),
            enable_prefix_caching=or_default(p.prefix_caching),
            quantization=or_default(p.quantization.method),
            kv_cache_dtype=or_default(p.quantization.kv_cache_dtype),
            block_size=extra_int("block_size"),
            kv_cache_memory_bytes=extra_int("kv_cache_memory_bytes"),
            enforce_eager=or_default(p.compilation.enforce_eager),
            data_parallel_size=p.parallelism.data,
            enable_expert_parallel=or_default(p.parallelism.expert),
            enable_eplb=or_default(p.parallelism.eplb),
            async_scheduling=or_default(p.scheduling.async_),
            long_prefill_token_threshold=or_default(p.scheduling.long_prefill_token_threshold),
            scheduling_policy=or_default(None if sch.priority is None else ("priority" if sch.priority else "fcfs")),
            cudagraph_capture_sizes=or_default(None if sizes is None else tuple(sizes)),
            performance_mode=or_default(p.compilation.performance_mode),
            enable_sleep_mode=or_default(p.sleep_mode),
            kv_offloading_backend=or_default(p.kv_offload.backend if p.kv_offload else None),
            kv_offloading_bytes=or_default(parse_size(p.kv_offload.size) if p.kv_offload else None),
            speculative=speculative,
            lora=lora,
            extra=tuple(self.extra),
            flags=tuple(sorted(self.spelt.items())),
        )

    def _levers(self) -> None:
        """What each lever renders to, for ``vllmtune explain``."""
        a = self.args

        def flags_for(*dests: str) -> tuple[str, ...]:
            out = []
            for i, tok in enumerate(a):
                f = self.fs.flags.get(tok)
                if f is not None and f.dest in dests:
                    nxt = a[i + 1] if f.takes_value and f.kind != "optbool" and i + 1 < len(a) else None
                    out.append(tok if nxt is None else f"{tok} {nxt}")
            return tuple(out)

        p = self.p
        pc = p.prompt_cache
        states = {
            "prompt_cache": f"on ({pc.backend}, ttl {pc.ttl})" if pc.enabled else "off",
            "prefix_caching": {True: "on", False: "off", None: "vLLM default"}[p.prefix_caching],
            "batching": "set" if any(v is not None for v in p.batching.model_dump().values()) else "vLLM default",
            "quantization": p.quantization.method or ("checkpoint" if p.quantization.checkpoint else "off"),
            "speculative": p.speculative.method if p.speculative else "off",
        }
        self.levers = [
            (
                lever.label,
                states[lever.field],
                flags_for(*lever.dests) if lever.dests else (("proxy sidecar",) if pc.enabled else ()),
            )
            for lever in LEVERS
        ]
