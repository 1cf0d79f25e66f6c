"""Model architecture facts for memory planning, offline first.

Where the facts come from, in order:

1. a local model directory (``model.id`` / ``quantization.checkpoint`` is a path): its
   ``config.json``, and the parameter count from its ``*.safetensors`` headers;
2. the built-in catalog ``model_catalog.json`` (published config.json values of popular
   models), matched by a normalised name so that quantized re-uploads such as
   ``hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4`` find the Llama-3.1-8B architecture;
3. the Hugging Face Hub (``hf_hub_download(repo, "config.json")``), only when online and
   ``huggingface_hub`` is installed.

Otherwise :class:`FitError` says which facts are missing and how to provide them: nothing
is guessed.

Parameter count derived from the architecture (when no safetensors headers are at hand)::

    embeddings = vocab x hidden  (x2 unless tie_word_embeddings: the lm_head; OPT adds its learned
                 positions, (max_position_embeddings + 2) x hidden)
    attention  = hidden x (heads + 2 x kv_heads) x head_dim + heads x head_dim x hidden (+ q/k/v biases)
    MLA        = hidden x q_lora + q_lora x heads x (nope + rope) + hidden x (kv_lora + rope)
                 + kv_lora x heads x (nope + v_head) + heads x v_head x hidden (+ the two lora norms)
    MLP        = 3 x hidden x intermediate                        (gated: gate, up, down)
               = 2 x hidden x intermediate for Phi-1/2 and OPT     (fc1, fc2: UNGATED_MLP)
    MoE layer  = (experts + shared) x 3 x hidden x moe_intermediate + hidden x experts (router)
    norms      = 2 x hidden per layer (4 for Gemma 2) + hidden
    total      = embeddings + layers x (attention + MLP or MoE + norms) + final norm
                 (+ a vision encoder the catalog states as "encoder_params")

This reproduces the published totals (Llama-3.1-8B: 8,030,261,248).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path
from typing import Any

from vllmtune.errors import FitError as FitError

CATALOG_RESOURCE = "model_catalog.json"
SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1, "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}  # fmt: skip
# Words of a checkpoint name that say how it was packaged, not which architecture it is.
NOISE_WORDS = frozenset({
    "meta", "instruct", "chat", "it", "hf", "base", "awq", "gptq", "int4", "int8", "w4a16", "w8a8", "w8a16", "w4a4",
    "fp8", "fp4", "nvfp4", "mxfp4", "dynamic", "static", "bnb", "4bit", "8bit", "nf4", "gguf", "marlin", "quantized",
    "quant", "sym", "asym", "g128", "gs128", "128g",
})  # fmt: skip


@dataclass(frozen=True)
class ModelArch:
    """What memory planning needs to know about a model (one transformer decoder)."""

    name: str
    source: str  # where the facts came from, for the report
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    dtype: str  # the checkpoint's torch dtype name (bfloat16, float16, float32)
    attention_bias: bool = False
    num_experts: int = 0  # routed experts; 0 = dense
    num_experts_per_tok: int = 0
    num_shared_experts: int = 0
    moe_intermediate_size: int = 0
    first_k_dense: int = 0  # leading dense layers of an MoE model (DeepSeek)
    sliding_window: int | None = None
    sliding_layers: int = 0  # layers that attend only to the last sliding_window tokens
    attention_chunk_size: int | None = None  # Llama 4: chunked local attention (iRoPE) ...
    chunked_layers: int = 0  # ... on the RoPE layers; the NoPE layers (every 4th) attend globally
    encoder_params: int = 0  # a vision encoder vLLM loads beside the decoder (catalog "encoder_params")
    kv_lora_rank: int | None = None  # MLA (DeepSeek-V2/V3): compressed KV latent
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    q_lora_rank: int | None = None
    v_head_dim: int = 0
    quant_method: str | None = None  # from the checkpoint's quantization_config
    quant_bits: float | None = None
    quant_group_size: int | None = None
    params: int = 0  # parameter count (numel) -- see params_source
    params_source: str = "derived from the architecture"
    checkpoint_bytes: int | None = None  # sum of tensor bytes in the safetensors headers

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def embedding_params(self) -> int:
        """Embedding + lm_head parameters (kept 16-bit by weight-only quantization)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)


UNGATED_MLP = ("phi", "opt")  # model types whose MLP is fc1 -> activation -> fc2 (no gate)


def derived_params(a: ModelArch) -> int:
    """Parameter count from the architecture (formula in the module docstring)."""
    h = a.hidden_size
    if a.is_mla:
        assert a.kv_lora_rank is not None
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = (
            h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * a.num_heads * qk
            if a.q_lora_rank
            else h * a.num_heads * qk
        )
        kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
        kv += a.kv_lora_rank * a.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
        attn = q + kv + a.num_heads * a.v_head_dim * h
    else:
        qkv = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim
        attn = h * qkv + a.num_heads * a.head_dim * h + (qkv if a.attention_bias else 0)
        if a.model_type in ("qwen3", "qwen3_moe", "gemma3"):
            attn += 2 * a.head_dim  # q_norm, k_norm
    dense_mlp = (2 if a.model_type in UNGATED_MLP else 3) * h * a.intermediate_size
    norms = (4 if a.model_type in ("gemma2", "gemma3") else 2) * h
    if a.num_experts:
        moe = (a.num_experts + a.num_shared_experts) * 3 * h * a.moe_intermediate_size + h * a.num_experts
        moe_layers = a.num_layers - a.first_k_dense
        body = a.first_k_dense * (attn + dense_mlp + norms) + moe_layers * (attn + moe + norms)
    else:
        body = a.num_layers * (attn + dense_mlp + norms)
    learned_pos = (a.max_position_embeddings or 0) + 2 if a.model_type == "opt" else 0  # OPT: offset 2
    return a.embedding_params + learned_pos * h + body + h + a.encoder_params


def _int(cfg: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return default


REQUIRED = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head"),
    "vocab_size": ("vocab_size",),
}


def parse_config(cfg: dict[str, Any], name: str, source: str) -> ModelArch:
    """A Hugging Face ``config.json`` (as a dict) -> ModelArch; FitError names missing keys."""
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers (Gemma 3, Llava, ...)
        cfg = {**cfg, **cfg["text_config"]}
    missing = [k for k, keys in REQUIRED.items() if _int(cfg, *keys) is None]
    if missing:
        raise FitError(
            f"{source} lacks {', '.join(missing)}: cannot estimate the memory of {name}",
            hint="give a model directory whose config.json has them",
        )
    layers = _int(cfg, *REQUIRED["num_hidden_layers"]) or 0
    hidden = _int(cfg, *REQUIRED["hidden_size"]) or 0
    heads = _int(cfg, *REQUIRED["num_attention_heads"]) or 0
    kv_heads = _int(cfg, "num_key_value_heads", "num_kv_heads", default=heads) or heads
    head_dim = _int(cfg, "head_dim", default=hidden // heads) or hidden // heads
    model_type = str(cfg.get("model_type", ""))
    tied_default = model_type.startswith("gemma")
    tied = cfg.get("tie_word_embeddings", tied_default)
    experts = _int(cfg, "num_local_experts", "n_routed_experts", "num_experts", default=0) or 0
    window = _int(cfg, "sliding_window")
    sliding = 0
    if window is not None and cfg.get("use_sliding_window") is not False:
        layer_types = cfg.get("layer_types")
        if isinstance(layer_types, list):
            sliding = sum(1 for t in layer_types if t == "sliding_attention")
        elif model_type == "gemma2":
            sliding = math.ceil(layers / 2)  # even layers use the window
        else:
            sliding = layers
    if sliding == 0:
        window = None
    chunk = _int(cfg, "attention_chunk_size")
    chunked = 0
    if chunk is not None:  # Llama 4: no_rope_layers[i] == 1 marks a RoPE (chunked) layer
        no_rope = cfg.get("no_rope_layers")
        interval = _int(cfg, "no_rope_layer_interval", default=4) or 4
        chunked = sum(1 for f in no_rope if f) if isinstance(no_rope, list) and no_rope else layers - layers // interval
    dense_inter = _int(cfg, "intermediate_size_mlp")  # Llama 4: dense layers' width beside the experts'
    step = _int(cfg, "interleave_moe_layer_step", default=1) or 1
    quant = cfg.get("quantization_config") if isinstance(cfg.get("quantization_config"), dict) else None
    method, bits, group = _quant_facts(quant)
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    arch = ModelArch(
        name=name,
        source=source,
        model_type=model_type,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=_int(cfg, "vocab_size") or 0,
        intermediate_size=dense_inter
        or _int(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
        or 4 * hidden,
        tie_word_embeddings=bool(tied),
        max_position_embeddings=_int(cfg, "max_position_embeddings", "n_positions"),
        dtype=dtype,
        attention_bias=bool(cfg.get("attention_bias", model_type == "qwen2")),
        num_experts=experts,
        num_experts_per_tok=_int(cfg, "num_experts_per_tok", default=0) or 0,
        num_shared_experts=_int(cfg, "n_shared_experts", default=1 if model_type.startswith("llama4") else 0) or 0,
        moe_intermediate_size=_int(cfg, "moe_intermediate_size", default=0)
        or (_int(cfg, "intermediate_size", default=0) or 0 if experts else 0),
        first_k_dense=_int(cfg, "first_k_dense_replace", default=0) or (layers - layers // step if step > 1 else 0),
        sliding_window=window,
        sliding_layers=sliding,
        attention_chunk_size=chunk,
        chunked_layers=chunked,
        encoder_params=_int(cfg, "encoder_params", default=0) or 0,
        kv_lora_rank=_int(cfg, "kv_lora_rank"),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", default=0) or 0,
        qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", default=0) or 0,
        q_lora_rank=_int(cfg, "q_lora_rank"),
        v_head_dim=_int(cfg, "v_head_dim", default=0) or 0,
        quant_method=method,
        quant_bits=bits,
        quant_group_size=group,
    )
    return _with_params(arch, derived_params(arch), "derived from the architecture")


def _with_params(arch: ModelArch, params: int, source: str, checkpoint_bytes: int | None = None) -> ModelArch:
    from dataclasses import replace

    return replace(arch, params=params, params_source=source, checkpoint_bytes=checkpoint_bytes)


def _quant_facts(q: dict[str, Any] | None) -> tuple[str | None, float | None, int | None]:
    """(method, weight bits, group size) of a checkpoint's quantization_config."""
    if not q:
        return None, None, None
    method = str(q.get("quant_method") or q.get("quantization_method") or "") or None
    bits = q.get("bits") or q.get("w_bit") or q.get("weight_bits")
    group = q.get("group_size") or q.get("q_group_size")
    groups = q.get("config_groups")
    if bits is None and isinstance(groups, dict):  # compressed-tensors
        for g in groups.values():
            w = g.get("weights") if isinstance(g, dict) else None
            if isinstance(w, dict) and isinstance(w.get("num_bits"), int):
                bits, group = w["num_bits"], w.get("group_size") or group
                break
    if bits is None and method in ("fp8", "fbgemm_fp8", "modelopt"):
        bits = 8
    if bits is None and method == "mxfp4":  # gpt-oss: 4-bit weights + an E8M0 scale per 32
        bits = 4.25
    if bits is None and q.get("load_in_4bit"):
        bits = 4
    if bits is None and q.get("load_in_8bit"):
        bits = 8
    return (
        method,
        float(bits) if isinstance(bits, (int, float)) else None,
        int(group) if isinstance(group, int) and group > 0 else None,
    )


# ---------------------------------------------------------------- safetensors


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file: 8-byte little-endian length, then JSON."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FitError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000:
            raise FitError(f"{path}: not a safetensors file (header length {length})")
        body = f.read(length)
    try:
        header = json.loads(body)
    except ValueError as exc:
        raise FitError(f"{path}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise FitError(f"{path}: unreadable safetensors header (not a mapping)")
    return header


def safetensors_params(paths: list[Path]) -> tuple[int, int]:
    """(number of parameters, bytes of tensor data) over the headers of these files."""
    numel = 0
    nbytes = 0.0
    for path in paths:
        for name, info in _safetensors_header(path).items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            n = math.prod(int(d) for d in info.get("shape", []))
            numel += n
            nbytes += n * SAFETENSORS_DTYPE_BYTES.get(str(info.get("dtype")), 2)
    return numel, int(nbytes)


# ---------------------------------------------------------------- catalog


def normalise_name(name: str) -> str:
    """'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4' -> 'llama318b' (catalog key)."""
    base = name.rstrip("/").rsplit("/", 1)[-1].lower()
    words = [w for w in re.split(r"[-_.\s]+", base) if w and w not in NOISE_WORDS]
    return "".join(words)


def _catalog() -> list[dict[str, Any]]:
    text = resources.files("vllmtune.modelfacts").joinpath(CATALOG_RESOURCE).read_text("utf-8")
    models: list[dict[str, Any]] = json.loads(text)["models"]
    return models


def catalog_names() -> list[str]:
    """Model ids of the built-in catalog."""
    return [str(m["id"]) for m in _catalog()]


def catalog_lookup(name: str) -> ModelArch | None:
    """The catalog architecture whose id or alias matches ``name`` (normalised), or None."""
    key = normalise_name(name)
    for entry in _catalog():
        for candidate in (entry["id"], *entry.get("aliases", [])):
            if normalise_name(candidate) == key:
                return parse_config(entry["config"], entry["id"], f"built-in catalog ({entry['id']})")
    return None


def name_quant_hint(name: str) -> tuple[str, float] | None:
    """(method, bits) suggested by a checkpoint's name (…-AWQ-INT4, …-FP8), else None."""
    words = set(re.split(r"[-_.\s/]+", name.lower()))
    for method, keys, bits in (
        ("awq", {"awq"}, 4.0),
        ("gptq", {"gptq"}, 4.0),
        ("bitsandbytes", {"bnb", "nf4"}, 4.0),
        ("compressed-tensors", {"w4a16", "int4"}, 4.0),
        ("fp8", {"fp8"}, 8.0),
        ("compressed-tensors", {"w8a8", "w8a16", "int8"}, 8.0),
    ):
        if words & keys:
            return method, bits
    return None


# ---------------------------------------------------------------- resolution


def from_directory(path: Path, name: str | None = None) -> ModelArch:
    """Architecture of a local model directory (config.json + safetensors headers)."""
    cfg_path = path / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text("utf-8"))
    except FileNotFoundError:
        raise FitError(
            f"{path} has no config.json: cannot read the architecture of the model "
            "(layers, hidden size, attention heads, KV heads, vocabulary)"
        ) from None
    except (OSError, ValueError) as exc:
        raise FitError(f"{cfg_path}: unreadable ({exc})") from None
    if not isinstance(cfg, dict):
        raise FitError(f"{cfg_path}: not a JSON object")
    arch = parse_config(cfg, name or str(path), f"{cfg_path}")
    files = sorted(path.glob("*.safetensors"))
    if files:
        params, nbytes = safetensors_params(files)
        if params:
            arch = _with_params(arch, params, f"safetensors headers ({len(files)} file(s))", nbytes)
    return arch


def _offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _from_hub(repo: str, revision: str | None = None) -> ModelArch | None:
    """Download ``config.json`` from the Hub (None when offline or huggingface_hub is missing)."""
    if _offline():
        return None
    try:
        hub: Any = import_module("huggingface_hub")
    except ImportError:
        return None
    try:
        cfg_file = hub.hf_hub_download(repo, "config.json", revision=revision)
    except Exception as exc:  # network, gated, missing repo: explained by the caller's FitError
        raise FitError(f"cannot download config.json of {repo} from the Hugging Face Hub: {exc}") from None
    return from_directory(Path(cfg_file).parent, repo)


def resolve_model(
    ident: str, local_path: str | None = None, online: bool = True, revision: str | None = None
) -> ModelArch:
    """Architecture of a model: local directory, built-in catalog, then the Hub."""
    if local_path:
        return from_directory(Path(local_path).expanduser(), ident)
    found = catalog_lookup(ident)
    if found is not None:
        return found
    if online:
        hub = _from_hub(ident, revision)
        if hub is not None:
            return hub
    raise FitError(unknown_model_message(ident))


def unknown_model_message(ident: str) -> str:
    """The whole FitError message for a model without known facts."""
    return (
        f"no architecture facts for {ident!r}: memory planning needs its number of layers, hidden size, "
        "attention and KV heads, head dimension, vocabulary and intermediate size (config.json), and "
        "its parameter count. Provide them by pointing model.id (or quantization.checkpoint) at a local "
        "directory holding config.json (and *.safetensors), or use a model of the built-in catalog "
        "(vllmtune/modelfacts/model_catalog.json), or go online with huggingface_hub installed so that "
        "config.json is read from the Hub"
    )
