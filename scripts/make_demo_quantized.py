#!/usr/bin/env python3
"""Quantize the CPU demo model to W8A8 (int8 weights and activations, compressed-tensors) with the
project's own llm-compressor job (vllmtune/quantize_job.py, the script ``render -t quantize-job``
ships), for the demo ladder's quantization rung (profiles/examples/cpu-demo-ladder.yaml).

    python3 scripts/make_demo_quantized.py [--force]

Standard library only: the job runs in the llm-compressor venv ($VLLMTUNE_LLMC_VENV, default
~/.cache/vllmtune/llmc-venv; scripts/setup_llmcompressor.sh). Source: the demo model
($VLLMTUNE_DEMO_MODEL, default ~/.cache/vllmtune/demo-llama; scripts/make_tiny_model.py --demo).
Output: $VLLMTUNE_DEMO_W8A8, default ~/.cache/vllmtune/demo-llama-w8a8. Round to nearest with
dynamic per-token activation scales needs no calibration data, so nothing is downloaded.
Idempotent: a marker naming the source model's build and the job's settings makes a re-run a
no-op; the job writes to a temporary directory renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "vllmtune" / "quantize_job.py"
MARKER = ".vllmtune-demo-quantized.json"
SOURCE_MARKER = ".vllmtune-tiny-model.json"  # written by make_tiny_model.py
SCHEME = "W8A8"


def cache_dir() -> Path:
    return Path.home() / ".cache" / "vllmtune"


def source_dir() -> Path:
    env = os.environ.get("VLLMTUNE_DEMO_MODEL")
    return Path(env) if env else cache_dir() / "demo-llama"


def output_dir() -> Path:
    env = os.environ.get("VLLMTUNE_DEMO_W8A8")
    return Path(env) if env else cache_dir() / "demo-llama-w8a8"


def llmc_python() -> Path:
    env = os.environ.get("VLLMTUNE_LLMC_VENV")
    return (Path(env) if env else cache_dir() / "llmc-venv") / "bin" / "python"


def settings(source: Path, output: Path) -> dict[str, object]:
    """The job's one JSON argument (vllmtune/quantize_job.py parse_settings)."""
    return {
        "source": str(source),
        "revision": None,
        "output": str(output),
        "push_to_hub": False,
        "scheme": SCHEME,
        "algorithm": "rtn",
        "dataset": "none",  # round to nearest with dynamic activation scales: never read
        "split": "train",
        "samples": 1,
        "max_seq_length": 512,
        "ignore": ["lm_head"],
    }


def recipe(source: Path) -> dict[str, object]:
    """What the checkpoint depends on: the source build, the job's code and the settings."""
    return {
        "source_marker_sha256": hashlib.sha256((source / SOURCE_MARKER).read_bytes()).hexdigest(),
        "job_sha256": hashlib.sha256(JOB.read_bytes()).hexdigest(),
        "settings": settings(source, Path("OUTPUT")),
    }


def is_complete(out: Path, rec: dict[str, object]) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker == rec and (out / "config.json").is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--force", action="store_true", help="quantize again even if the checkpoint is complete")
    a = ap.parse_args(argv)
    source, out, py = source_dir(), output_dir(), llmc_python()
    if not (source / SOURCE_MARKER).is_file():
        print(f"no demo model at {source}: run scripts/make_tiny_model.py --demo first", file=sys.stderr)
        return 1
    if not py.is_file():
        print(f"no llm-compressor venv ({py}): run scripts/setup_llmcompressor.sh first", file=sys.stderr)
        return 1
    rec = recipe(source)
    if not a.force and is_complete(out, rec):
        print(f"demo {SCHEME} checkpoint already built: {out}")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".demo-quant-") as work:
        tmp = Path(work) / "out"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        proc = subprocess.run([str(py), str(JOB), json.dumps(settings(source, tmp))], env=env, check=False)
        if proc.returncode != 0:
            print(f"the quantize job failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        (tmp / MARKER).write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    print(f"built demo {SCHEME} checkpoint: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
