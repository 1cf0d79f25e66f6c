"""The llm-compressor venv (scripts/setup_llmcompressor.sh) and the calibration data the real
quantization tests give the job (tests/test_quantize_job.py, tests/render/test_quantize_llmcompressor.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LLMC_PIN = "llmcompressor==0.14.0.1"  # scripts/setup_llmcompressor.sh
SAMPLES = 32


def llmc_python() -> Path | None:
    """The llm-compressor venv's python, if setup_llmcompressor.sh completed it."""
    home = os.environ.get("VLLMTUNE_REAL_HOME", os.path.expanduser("~"))
    venv = Path(os.environ.get("VLLMTUNE_LLMC_VENV", f"{home}/.cache/vllmtune/llmc-venv"))
    py = venv / "bin" / "python"
    return py if py.is_file() and (venv / ".vllmtune-setup-stamp").is_file() else None


def write_calibration(path: Path) -> None:
    """Both sample kinds the job reads: plain text, and chats (through the chat template)."""
    rows: list[dict[str, Any]] = []
    for i in range(SAMPLES + 8):
        if i % 2:
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": f"What is {i} plus {i}? Answer briefly."},
                        {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
                    ]
                }
            )
        else:
            rows.append({"text": f"Sample {i}: the quick brown fox jumps over the lazy dog, {i} times in a row."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
