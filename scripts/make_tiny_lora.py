#!/usr/bin/env python3
"""Build a random-weight LoRA adapter (PEFT format) for the tiny test Llama.

Run it with the vLLM venv's python (needs torch and safetensors):

    $VENV/bin/python scripts/make_tiny_lora.py [DIR] [--base BASE] [--rank 8] [--force]

DIR defaults to ${VLLMTUNE_TINY_LORA:-~/.cache/vllmtune/tiny-lora}; BASE to
${VLLMTUNE_TINY_MODEL:-~/.cache/vllmtune/tiny-llama} (built by make_tiny_model.py), whose
config.json gives the shapes.

What vLLM 0.32.0 requires of an adapter (vllm/lora/peft_helper.py, lora_model.py):
adapter_config.json with r, lora_alpha and target_modules; no bias, no DoRA; r at most the
server's --max-lora-rank, which must itself be one of 1, 8, 16, 32, 64, 128, 256, 320, 512
(the default rank 8 fits max_lora_rank: 8); adapter_model.safetensors whose keys are
``base_model.model.<module>.lora_A.weight`` (r x in) / ``lora_B.weight`` (out x r) for modules
the model has. Both factors are random (PEFT would start lora_B at zero, which would make the
adapter a no-op): a request through the adapter then measurably differs from the base model.

Deterministic and idempotent: an existing complete build (marker file with the same recipe,
which includes the base model's shapes) is left untouched; builds go to a temp dir that is
renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

RECIPE_VERSION = 1
MARKER = ".vllmtune-tiny-lora.json"
SEED = 4321
# Every linear layer of a Llama decoder layer: vLLM packs q/k/v and gate/up, so this also
# exercises its packed LoRA layers.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Large enough next to the base weights (std 0.02) that the adapter changes the logits.
FACTOR_STD = 0.1


def default_dir() -> Path:
    env = os.environ.get("VLLMTUNE_TINY_LORA")
    return Path(env) if env else Path.home() / ".cache" / "vllmtune" / "tiny-lora"


def default_base() -> Path:
    env = os.environ.get("VLLMTUNE_TINY_MODEL")
    return Path(env) if env else Path.home() / ".cache" / "vllmtune" / "tiny-llama"


def module_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each target module of one decoder layer."""
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    inter = int(cfg["intermediate_size"])
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def recipe(cfg: dict[str, Any], rank: int, alpha: int) -> dict[str, Any]:
    return {
        "recipe_version": RECIPE_VERSION,
        "seed": SEED,
        "rank": rank,
        "lora_alpha": alpha,
        "target_modules": list(TARGET_MODULES),
        "layers": int(cfg["num_hidden_layers"]),
        "shapes": {k: list(v) for k, v in module_shapes(cfg).items()},
    }


def is_complete(d: Path, rec: dict[str, Any]) -> bool:
    try:
        m = json.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return m.get("recipe") == rec and all((d / f).is_file() for f in m.get("files", []))


def build(out: Path, base: Path, cfg: dict[str, Any], rank: int, alpha: int) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(SEED)
    shapes = module_shapes(cfg)
    tensors: dict[str, Any] = {}
    for layer in range(int(cfg["num_hidden_layers"])):
        for module in TARGET_MODULES:
            group = "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            fan_in, fan_out = shapes[module]
            prefix = f"base_model.model.model.layers.{layer}.{group}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = (torch.randn(rank, fan_in, generator=gen) * FACTOR_STD).contiguous()
            tensors[f"{prefix}.lora_B.weight"] = (torch.randn(fan_out, rank, generator=gen) * FACTOR_STD).contiguous()
    weights = out / "adapter_model.safetensors"
    save_file(tensors, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # safetensors writes 0600: a container user other than ours must read it
    config = {
        "base_model_name_or_path": str(base),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "target_modules": list(TARGET_MODULES),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def finalize(tmp: Path, dest: Path, rec: dict[str, Any]) -> None:
    files = sorted(p.name for p in tmp.iterdir() if p.is_file())
    digests = {f: hashlib.sha256((tmp / f).read_bytes()).hexdigest() for f in files}
    (tmp / MARKER).write_text(
        json.dumps({"recipe": rec, "files": files, "sha256": digests}, indent=2, sort_keys=True) + "\n"
    )
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=None)
    ap.add_argument("--base", type=Path, default=None, help="the tiny base model directory")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank r (serve with max_lora_rank >= r)")
    ap.add_argument("--alpha", type=int, default=16, help="lora_alpha (scaling = alpha / r)")
    ap.add_argument("--force", action="store_true", help="rebuild even if complete")
    a = ap.parse_args(argv)
    if a.rank < 1 or a.alpha < 1:
        ap.error("--rank and --alpha must be positive")
    dest = (a.dir or default_dir()).expanduser().absolute()
    base = (a.base or default_base()).expanduser().absolute()
    try:
        cfg = json.loads((base / "config.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {base / 'config.json'} ({exc}): run scripts/make_tiny_model.py first", file=sys.stderr)
        return 1
    rec = recipe(cfg, a.rank, a.alpha)
    if not a.force and is_complete(dest, rec):
        print(f"tiny LoRA adapter already built: {dest}")
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".tiny-lora-build-") as work:
        tmp = Path(work) / "lora"
        tmp.mkdir()
        build(tmp, base, cfg, a.rank, a.alpha)
        finalize(tmp, dest, rec)
    print(f"built tiny LoRA adapter (r={a.rank}): {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
