#!/usr/bin/env python3
"""Build a tiny random-weight Llama (and optionally a "draft" model) for tests.

Run it with the vLLM venv's python (needs torch, transformers, tokenizers):

    $VENV/bin/python scripts/make_tiny_model.py [DIR] [--with-draft] [--force]
    $VENV/bin/python scripts/make_tiny_model.py --demo [DIR] [--force]

DIR defaults to ${VLLMTUNE_TINY_MODEL:-~/.cache/vllmtune/tiny-llama}; the draft
model goes to DIR-draft and shares the exact same tokenizer files.

--demo builds the CPU demo model instead (README "CPU demo"): the same tokenizer, 8 layers of
hidden size 768 (~55M parameters), big enough that prefill and decode dominate a request on
vLLM's CPU build, so prefix caching, batching and quantization show. DIR defaults to
${VLLMTUNE_DEMO_MODEL:-~/.cache/vllmtune/demo-llama}.

Everything is local: the byte-level BPE tokenizer is trained on text read from
this interpreter's standard library (LICENSE + a fixed list of modules), the
weights come from a fixed torch seed.  Deterministic and idempotent: an
existing complete build (marker file with the same recipe) is left untouched;
builds go to a temp dir that is renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

RECIPE_VERSION = 1
MARKER = ".vllmtune-tiny-model.json"
SEED = 1234
VOCAB_SIZE = 3072

BOS = "<|begin_of_text|>"
EOT_TEXT = "<|end_of_text|>"
EOT = "<|eot_id|>"  # end of turn; the tokenizer's eos token (like Llama 3 instruct)
SPECIAL_TOKENS = [BOS, EOT_TEXT, "<|start_header_id|>", "<|end_header_id|>", EOT, "<|pad|>"]

# Llama-3-like chat template.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] | trim }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'text' %}{{- part['text'] | trim }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

MAIN_ARCH = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
)
DRAFT_ARCH = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
)
DEMO_ARCH = dict(
    hidden_size=768,
    intermediate_size=2048,
    num_hidden_layers=8,
    num_attention_heads=12,
    num_key_value_heads=4,
    head_dim=64,
)
MAX_POSITIONS = 4096

# Files every CPython install has; read in this order (missing ones skipped).
CORPUS_MODULES = [
    "LICENSE.txt",
    "this.py",
    "argparse.py",
    "json/__init__.py",
    "json/decoder.py",
    "textwrap.py",
    "string.py",
    "functools.py",
    "collections/__init__.py",
    "pathlib.py",
    "shutil.py",
    "subprocess.py",
    "logging/__init__.py",
    "http/server.py",
    "email/message.py",
    "unittest/case.py",
    "typing.py",
    "dataclasses.py",
    "enum.py",
    "inspect.py",
]
CORPUS_MAX_BYTES = 3_000_000

EXTRA_TEXT = (
    "Hello! How can I help you today? The quick brown fox jumps over the lazy dog. "
    "user assistant system The answer is 42. Please summarize the following text. "
)


def default_dir() -> Path:
    env = os.environ.get("VLLMTUNE_TINY_MODEL")
    return Path(env) if env else Path.home() / ".cache" / "vllmtune" / "tiny-llama"


def default_demo_dir() -> Path:
    env = os.environ.get("VLLMTUNE_DEMO_MODEL")
    return Path(env) if env else Path.home() / ".cache" / "vllmtune" / "demo-llama"


def corpus_lines() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [EXTRA_TEXT * 50], 0
    for rel in CORPUS_MODULES:
        p = stdlib / rel
        if not p.is_file():
            continue
        t = p.read_text(encoding="utf-8", errors="replace")
        texts.append(t)
        total += len(t)
        if total > CORPUS_MAX_BYTES:
            break
    if total == 0:
        raise SystemExit(f"no corpus files found under {stdlib}")
    return [line for t in texts for line in t.splitlines(keepends=True)]


def build_tokenizer(out: Path):
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # deterministic training
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token="<|pad|>",
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    # keep the chat template inside tokenizer_config.json (no chat_template.jinja)
    fast.save_pretrained(str(out), save_jinja_files=False)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = CHAT_TEMPLATE
    # transformers 5 writes "TokenizersBackend"; the v4 name loads in both
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (out / "chat_template.jinja").unlink(missing_ok=True)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    return tok.get_vocab_size(), ids


def build_model(out: Path, arch: dict, vocab: int, ids: dict, seed: int) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOT],
        pad_token_id=ids["<|pad|>"],
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
        **arch,
    )
    cfg.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).to(torch.float32).eval()
    with torch.no_grad():  # plain normal init, independent of transformers' init code
        gen = torch.Generator().manual_seed(seed)
        for _, p in sorted(model.named_parameters()):
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(str(out), safe_serialization=True)
    GenerationConfig(
        bos_token_id=ids[BOS],
        eos_token_id=[ids[EOT_TEXT], ids[EOT]],
        pad_token_id=ids["<|pad|>"],
        do_sample=True,
        temperature=0.6,
        top_p=0.9,
        max_new_tokens=64,
    ).save_pretrained(str(out))


def recipe(kind: str, arch: dict) -> dict:
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": kind,
        "arch": arch,
        "seed": SEED,
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": MAX_POSITIONS,
        "chat_template_sha256": hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest(),
    }


def is_complete(d: Path, rec: dict) -> bool:
    try:
        m = json.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return m.get("recipe") == rec and all((d / f).is_file() for f in m.get("files", []))


def finalize(tmp: Path, dest: Path, rec: dict) -> None:
    files = sorted(p.name for p in tmp.iterdir() if p.is_file())
    digests = {f: hashlib.sha256((tmp / f).read_bytes()).hexdigest() for f in files}
    (tmp / MARKER).write_text(
        json.dumps({"recipe": rec, "files": files, "sha256": digests}, indent=2, sort_keys=True) + "\n"
    )
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=None)
    ap.add_argument("--with-draft", action="store_true", help="also build DIR-draft")
    ap.add_argument("--force", action="store_true", help="rebuild even if complete")
    ap.add_argument("--demo", action="store_true", help="build the CPU demo model (8 layers, hidden 768)")
    a = ap.parse_args(argv)
    if a.demo:
        if a.with_draft:
            ap.error("--demo builds no draft model")
        return build_demo((a.dir or default_demo_dir()).expanduser().absolute(), a.force)
    dest = (a.dir or default_dir()).expanduser().absolute()
    draft = dest.with_name(dest.name + "-draft")
    main_rec, draft_rec = recipe("main", MAIN_ARCH), recipe("draft", DRAFT_ARCH)

    need_main = a.force or not is_complete(dest, main_rec)
    need_draft = a.with_draft and (a.force or not is_complete(draft, draft_rec))
    if not need_main and not need_draft:
        print(f"tiny model already built: {dest}" + (f" (+ {draft})" if a.with_draft else ""))
        return 0

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".tiny-build-") as work:
        tok_dir = Path(work) / "tok"
        tok_dir.mkdir()
        vocab, ids = build_tokenizer(tok_dir)
        for needed, target, arch, rec, seed in (
            (need_main, dest, MAIN_ARCH, main_rec, SEED),
            (need_draft, draft, DRAFT_ARCH, draft_rec, SEED + 1),
        ):
            if not needed:
                continue
            tmp = Path(work) / rec["kind"]
            shutil.copytree(tok_dir, tmp)
            build_model(tmp, arch, vocab, ids, seed)
            finalize(tmp, target, rec)
            print(f"built {rec['kind']} model: {target}")
    if a.with_draft and not need_main:
        # draft rebuilt alone: it must still share the main model's tokenizer
        m = json.loads((dest / MARKER).read_text())["sha256"]
        d = json.loads((draft / MARKER).read_text())["sha256"]
        if m.get("tokenizer.json") != d.get("tokenizer.json"):
            print("warning: draft tokenizer differs from main; use --force", file=sys.stderr)
    return 0


def build_demo(dest: Path, force: bool) -> int:
    """The CPU demo model: the tiny model's tokenizer and recipe, DEMO_ARCH."""
    rec = recipe("demo", DEMO_ARCH)
    if not force and is_complete(dest, rec):
        print(f"demo model already built: {dest}")
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".demo-build-") as work:
        tmp = Path(work) / "demo"
        tmp.mkdir()
        vocab, ids = build_tokenizer(tmp)
        build_model(tmp, DEMO_ARCH, vocab, ids, SEED + 2)
        finalize(tmp, dest, rec)
    print(f"built demo model: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
