"""The llm-compressor run behind ``vllmtune render -t quantize-job`` / ``-t quantize-script``.

A static script shipped in the package and copied as-is into the job's container (a ConfigMap
in Kubernetes, a bind mount with docker): every setting arrives as ONE JSON argument, never
as generated code::

    python3 quantize_job.py '{"source": "meta-llama/Llama-3.1-8B-Instruct", "output": ..., ...}'

Keys: source, revision (or null), output, push_to_hub, scheme, algorithm (awq | gptq | rtn),
dataset (hub id, or a local .jsonl/.json/.txt file), split, samples, max_seq_length, ignore.
``HF_TOKEN`` comes from the environment (gated models; the push to ``output`` when
push_to_hub). The recipes follow llm-compressor's own examples (examples/awq/llama_example.py,
examples/quantization_w4a16, examples/quantization_w8a8_int8, examples/quantization_w8a8_fp8).

It runs in the job's image, not in vllmtune's environment: standard library at import time,
torch / transformers / datasets / llmcompressor imported inside ``run``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SCHEMES = ("W4A16", "W4A16_ASYM", "W8A16", "W8A8", "FP8", "FP8_DYNAMIC")
ALGORITHMS = ("awq", "gptq", "rtn")
LOCAL_DATA = (".jsonl", ".json", ".txt")
# Round to nearest needs calibration data only for static activation scales; of our schemes
# only FP8 has them (compressed_tensors PRESET_SCHEMES: W8A8 and FP8_DYNAMIC quantize
# activations dynamically per token, the A16 schemes not at all).
STATIC_ACTIVATIONS = ("FP8",)
# Where a model pushed to the Hub is written first: under the HF cache, which is the shared
# volume of the job (a Kubernetes PVC, the host's cache with docker), so a failed upload can
# be retried without quantizing again.
STAGING = "vllmtune-quantized"
REQUIRED = ("torch", "transformers", "datasets", "llmcompressor", "huggingface_hub")
# The modifier layout used below (AWQ as a transform followed by a QuantizationModifier) and
# from_pretrained(dtype=...) are those of llmcompressor 0.14 (transformers 5).
MIN_LLMCOMPRESSOR = (0, 14)

_START = time.monotonic()


class JobError(Exception):
    """A problem with the settings or the inputs: printed as one line, exit status 1."""


def log(message: str) -> None:
    """Progress line with the time since start (job logs are read while it runs)."""
    print(f"[quantize {time.monotonic() - _START:7.1f}s] {message}", flush=True)


def parse_settings(argv: list[str]) -> dict[str, Any]:
    """The one JSON argument, checked: every key present with the right type."""
    if len(argv) != 1:
        raise JobError("usage: quantize_job.py SETTINGS_JSON (one argument, rendered by vllmtune)")
    try:
        settings = json.loads(argv[0])
    except json.JSONDecodeError as exc:
        raise JobError(f"settings are not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise JobError("settings must be a JSON object")
    types: dict[str, tuple[type, ...]] = {
        "source": (str,),
        "revision": (str, type(None)),
        "output": (str,),
        "push_to_hub": (bool,),
        "scheme": (str,),
        "algorithm": (str,),
        "dataset": (str,),
        "split": (str,),
        "samples": (int,),
        "max_seq_length": (int,),
        "ignore": (list,),
    }
    for key, allowed in types.items():
        if key not in settings:
            raise JobError(f"settings: missing key {key!r}")
        if not isinstance(settings[key], allowed):
            raise JobError(f"settings: {key} has the wrong type ({type(settings[key]).__name__})")
    unknown = sorted(set(settings) - set(types))
    if unknown:
        raise JobError(f"settings: unknown keys {', '.join(unknown)}")
    if settings["scheme"] not in SCHEMES:
        raise JobError(f"settings: scheme {settings['scheme']!r}; choose one of {', '.join(SCHEMES)}")
    if settings["algorithm"] not in ALGORITHMS:
        raise JobError(f"settings: algorithm {settings['algorithm']!r}; choose one of {', '.join(ALGORITHMS)}")
    if settings["samples"] < 1 or settings["max_seq_length"] < 1:
        raise JobError("settings: samples and max_seq_length must be positive")
    if not all(isinstance(x, str) for x in settings["ignore"]):
        raise JobError("settings: ignore must be a list of module names")
    return settings


def needs_calibration(settings: dict[str, Any]) -> bool:
    """AWQ and GPTQ calibrate; round to nearest only for static activation scales."""
    return settings["algorithm"] != "rtn" or settings["scheme"] in STATIC_ACTIVATIONS


def read_local_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a local calibration file: .jsonl (one object a line), .json (a list of
    objects), .txt (one sample a non-empty line)."""
    if not path.is_file():
        raise JobError(f"{path}: calibration file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".txt":
        return [{"text": line} for line in text.splitlines() if line.strip()]
    rows: Any
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise JobError(f"{path}:{n}: not JSON: {exc.msg}") from None
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JobError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        if not isinstance(rows, list):
            raise JobError(f"{path}: expected a JSON list of objects with a 'text' or 'messages' field")
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise JobError(f"{path}: sample {n} is not an object with a 'text' or 'messages' field")
    return list(rows)


def sample_text(row: dict[str, Any], tokenizer: Any, n: int) -> tuple[str, bool]:
    """(text, has_special_tokens): a chat renders through the tokenizer's chat template, which
    already writes the special tokens; plain text gets them from the tokenizer."""
    if "messages" in row:
        if not getattr(tokenizer, "chat_template", None):
            raise JobError(
                f"calibration sample {n} has 'messages' but the tokenizer has no chat template; "
                "use samples with a 'text' field"
            )
        return str(tokenizer.apply_chat_template(row["messages"], tokenize=False)), True
    if isinstance(row.get("text"), str):
        return row["text"], False
    raise JobError(f"calibration sample {n} has neither 'text' nor 'messages' (fields: {', '.join(sorted(row))})")


def calibration_dataset(settings: dict[str, Any], tokenizer: Any) -> Any:
    """The tokenized calibration set, at most ``samples`` rows."""
    datasets = importlib.import_module("datasets")
    name, samples = settings["dataset"], settings["samples"]
    path = Path(name)
    if path.suffix in LOCAL_DATA and (path.is_absolute() or path.exists()):
        rows = read_local_rows(path)
        log(f"calibration: {len(rows)} samples in {path}, using up to {samples}")
        rows = rows[:samples]
    else:
        split = f"{settings['split']}[:{samples}]"
        log(f"calibration: load_dataset({name!r}, split={split!r})")
        try:
            ds = datasets.load_dataset(name, split=split)
        except Exception as exc:
            raise JobError(f"dataset {name!r} split {settings['split']!r}: {type(exc).__name__}: {exc}") from None
        rows = [dict(r) for r in ds]
    if not rows:
        raise JobError(f"dataset {name!r}: no calibration samples")
    ids, masks = [], []
    for n, row in enumerate(rows, 1):
        text, special = sample_text(row, tokenizer, n)
        enc = tokenizer(
            text,
            padding=False,
            max_length=settings["max_seq_length"],
            truncation=True,
            add_special_tokens=not special,
        )
        ids.append(enc["input_ids"])
        masks.append(enc["attention_mask"])
    return datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": masks}).shuffle(seed=42)


def recipe(settings: dict[str, Any]) -> list[Any]:
    """The llm-compressor modifiers for scheme x algorithm (after llm-compressor's examples)."""
    scheme, algorithm, ignore = settings["scheme"], settings["algorithm"], list(settings["ignore"])
    quant = importlib.import_module("llmcompressor.modifiers.quantization")
    if algorithm == "awq":
        # AWQ only smooths (scales salient channels); the QuantizationModifier after it
        # quantizes (examples/awq/llama_example.py).
        transform = importlib.import_module("llmcompressor.modifiers.transform")
        return [
            transform.AWQModifier(duo_scaling="both"),
            quant.QuantizationModifier(targets=["Linear"], scheme=scheme, ignore=ignore),
        ]
    if algorithm == "gptq":
        gptq = importlib.import_module("llmcompressor.modifiers.gptq")
        steps: list[Any] = []
        if scheme == "W8A8":
            # int8 activations: SmoothQuant first moves outliers into the weights
            # (examples/quantization_w8a8_int8/llama3_example.py).
            transform = importlib.import_module("llmcompressor.modifiers.transform")
            steps.append(transform.SmoothQuantModifier(smoothing_strength=0.8))
        return [*steps, gptq.GPTQModifier(targets="Linear", scheme=scheme, ignore=ignore)]
    return [quant.QuantizationModifier(targets="Linear", scheme=scheme, ignore=ignore)]


def save_dir(settings: dict[str, Any]) -> Path:
    """Where the checkpoint is written: the output directory, or a staging directory in the
    HF cache for a Hub push."""
    if not settings["push_to_hub"]:
        return Path(settings["output"])
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(home) / STAGING / str(settings["output"]).replace("/", "--")


def push(folder: Path, repo: str) -> None:
    """Upload the checkpoint to a (private, when new) Hub repo."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise JobError(f"pushing to {repo!r} needs HF_TOKEN (a token with write access) in the environment")
    hub = importlib.import_module("huggingface_hub")
    api = hub.HfApi(token=token)
    log(f"pushing {folder} to the Hub repo {repo}")
    # private=True only applies when the repo is created here: the checkpoint is not made
    # public behind its owner's back; an existing repo keeps its visibility.
    api.create_repo(repo_id=repo, repo_type="model", private=True, exist_ok=True)
    api.upload_folder(
        repo_id=repo,
        repo_type="model",
        folder_path=str(folder),
        commit_message="Quantized with llm-compressor (vllmtune quantize job)",
    )


def check_version(version: str) -> None:
    """Refuse an llmcompressor older than the API this script is written for."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    if tuple(parts) < MIN_LLMCOMPRESSOR:
        want = ".".join(map(str, MIN_LLMCOMPRESSOR))
        raise JobError(
            f"llmcompressor {version} is older than {want}, whose API this job uses; "
            f"set quantization.recipe.llmcompressor to llmcompressor>={want}"
        )


def run(settings: dict[str, Any]) -> Path:
    """Load, calibrate, quantize, save (and push). Returns the directory written."""
    transformers = importlib.import_module("transformers")
    llmcompressor = importlib.import_module("llmcompressor")
    torch = importlib.import_module("torch")
    check_version(str(getattr(llmcompressor, "__version__", "0")))
    log(
        f"llmcompressor {getattr(llmcompressor, '__version__', '?')}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, "
        f"{torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s)"
    )
    source, revision = settings["source"], settings["revision"]
    out = save_dir(settings)
    log(f"loading {source}" + (f" @ {revision}" if revision else ""))
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    # dtype="auto": the checkpoint's own dtype (bf16 for most); the default would be float32.
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype="auto", **kwargs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
    log(f"loaded {type(model).__name__}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    steps = recipe(settings)
    log(f"recipe: {settings['algorithm']} {settings['scheme']}: {', '.join(type(s).__name__ for s in steps)}")
    if needs_calibration(settings):
        ds = calibration_dataset(settings, tokenizer)
        log(f"calibrating on {len(ds)} samples of at most {settings['max_seq_length']} tokens")
        llmcompressor.oneshot(
            model=model,
            dataset=ds,
            recipe=steps,
            max_seq_length=settings["max_seq_length"],
            num_calibration_samples=len(ds),
        )
    else:
        log("no calibration needed (round to nearest, no static activation scales)")
        llmcompressor.oneshot(model=model, recipe=steps)
    log(f"saving the compressed checkpoint to {out}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), save_compressed=True)
    tokenizer.save_pretrained(str(out))
    if settings["push_to_hub"]:
        push(out, settings["output"])
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 1 with one ``quantize_job: error:`` line on failure."""
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv)
        log(f"settings: {json.dumps(settings, sort_keys=True)}")
        out = run(settings)
    except JobError as exc:
        print(f"quantize_job: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name in REQUIRED:
            print(
                f"quantize_job: error: {exc}; the image needs torch and transformers, and the job "
                "installs llmcompressor (quantization.recipe.llmcompressor)",
                file=sys.stderr,
                flush=True,
            )
            return 1
        # From torch / transformers / llmcompressor: the traceback is the diagnosis.
        import traceback

        traceback.print_exc()
        print(f"quantize_job: error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    where = settings["output"] if settings["push_to_hub"] else str(out)
    log(f"done: {settings['scheme']} checkpoint at {where} in {time.monotonic() - _START:.1f}s")
    return 0


if __name__ == "__main__":
    # Run as a file, Python puts the script's directory first on sys.path; inside the vllmtune
    # package that directory holds packages named like standard modules (``profile``, which
    # torch reaches through cProfile). The script imports nothing of its own: drop it.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _here]
    sys.exit(main())
