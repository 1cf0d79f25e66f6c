"""``fit --from-log``: the figures of real vLLM start-up logs (excerpts of published ones, quoted
verbatim in tests/fit/data/logs/) beside the estimate; and the command line, whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import run
from vllmtune.fit.fromlog import from_log_report, parse_log, read_log
from vllmtune.modelfacts.models import FitError

LOGS = Path(__file__).parent / "data" / "logs"
LOG_3090_20K = LOGS / "vllm-10517-rtx3090-llama31-8b-20k.log"
PROFILE_3090 = """name: llama8b-3090
vllm:
  version: "0.6.4"
model:
  id: meta-llama/Llama-3.1-8B-Instruct
  max_model_len: {max_len}
resources:
  gpus: 1
  gpu_memory: 23.58GiB
  gpu_memory_utilization: 0.9
"""


def profile(tmp_path: Path, max_len: int = 20000) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE_3090.format(max_len=max_len))
    return str(path)


def test_v0_log_figures() -> None:
    assert parse_log(LOG_3090_20K.read_text()) == {
        "total_gpu_memory_gib": 23.58,
        "gpu_memory_utilization": 0.9,
        "weights_gib": 14.9888,
        "non_torch_gib": 0.35,
        "kv_gib": 3.81,
        "gpu_blocks": 1952,
        "max_concurrency_len": 20000,
        "max_concurrency": 1.56,
    }


def test_v0_log_failure_and_worker_lines() -> None:
    assert parse_log((LOGS / "vllm-10517-rtx3090-llama31-8b-29k.log").read_text())["failure"] == (
        "max_model_len exceeds the KV cache"
    )
    assert parse_log((LOGS / "vllm-15815-l40s-qwen25-32b-tp2.log").read_text()) == {
        "total_gpu_memory_gib": 44.42,
        "gpu_memory_utilization": 0.9,
        "weights_gib": 30.7098,
        "non_torch_gib": 0.3,
        "activation_gib": 1.26,
        "kv_gib": 7.71,
        "gpu_blocks": 3947,
    }


def test_v1_log_with_a_negative_kv_budget_is_a_failure() -> None:
    assert parse_log((LOGS / "vllm-23278-h100-gpt-oss-120b.log").read_text()) == {
        "weights_gib": 65.9651,
        "kv_gib": -2.14,
        "failure": "no KV cache memory",
    }


def test_v1_kv_lines() -> None:
    text = (
        "(EngineCore_DP0 pid=1) INFO 10-03 16:22:17 [gpu_worker.py:298] Available KV cache memory: 6.51 GiB\n"
        "(EngineCore_DP0 pid=1) INFO 10-03 16:22:17 [kv_cache_utils.py:864] GPU KV cache size: 42,656 tokens\n"
        "(EngineCore_DP0 pid=1) INFO 10-03 16:22:17 [kv_cache_utils.py:868] Maximum concurrency for 32,768 "
        "tokens per request: 1.30x\n"
    )  # quoted in https://github.com/LMCache/LMCache/issues/1739
    assert parse_log(text) == {
        "kv_gib": 6.51,
        "kv_tokens": 42656,
        "max_concurrency_len": 32768,
        "max_concurrency": 1.3,
    }


def test_estimate_beside_each_logged_figure(tmp_path: Path) -> None:
    result = from_log_report(profile(tmp_path), str(LOG_3090_20K), None)
    assert result["rows"] == [
        {"figure": "GPU memory", "logged": 23.58, "estimate": 23.58, "unit": "GiB", "error": -0.0},
        {"figure": "weights", "logged": 14.9888, "estimate": 14.9575, "unit": "GiB", "error": -0.0021},
        {"figure": "non-torch memory", "logged": 0.35, "estimate": 0.3, "unit": "GiB", "error": -0.1429},
        {"figure": "KV cache memory", "logged": 3.81, "estimate": 3.9045, "unit": "GiB", "error": 0.0248},
        {"figure": "KV cache blocks", "logged": 1952, "estimate": 1999, "unit": "blocks", "error": 0.0241},
        {"figure": "max concurrency", "logged": 1.56, "estimate": 1.6, "unit": "x", "error": 0.0256},
    ]
    assert (result["failure"], result["predicted"], result["agrees"]) == (None, "fits", True)
    assert result["notes"] == ["GPU memory 23.58 GiB from the log"]


def test_a_logged_failure_is_predicted(tmp_path: Path) -> None:
    result = from_log_report(profile(tmp_path, 29000), str(LOGS / "vllm-10517-rtx3090-llama31-8b-29k.log"), None)
    assert (result["failure"], result["predicted"], result["agrees"]) == (
        "max_model_len exceeds the KV cache",
        "may not fit",
        True,
    )


def test_a_file_without_start_up_figures(tmp_path: Path) -> None:
    (tmp_path / "other.log").write_text("INFO: Uvicorn running on http://0.0.0.0:8000\n")
    with pytest.raises(FitError) as info:
        read_log(str(tmp_path / "other.log"))
    assert str(info.value) == (
        f"{tmp_path}/other.log: no vLLM start-up figures (none of 'Model loading took', 'Available KV cache "
        "memory', 'KV cache size: N tokens', '# GPU blocks', or a start-up failure): give the log of a vLLM "
        "server's start, from its first line to 'Maximum concurrency'"
    )


# ------------------------------------------------------------------ the command line, whole


def test_cli_from_log_table(tmp_path: Path) -> None:
    out = run("fit", profile(tmp_path), "--from-log", str(LOG_3090_20K), env={"COLUMNS": "200"})
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == (
        f"{LOG_3090_20K}: vLLM's figures beside vllmtune fit's (GPU (23.58 GiB))\n"
        "┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━┓\n"
        "┃ figure           ┃ vLLM logged ┃  estimate ┃ difference ┃\n"
        "┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━┩\n"
        "│ GPU memory       │   23.58 GiB │ 23.58 GiB │      -0.0% │\n"
        "│ weights          │   14.99 GiB │ 14.96 GiB │      -0.2% │\n"
        "│ non-torch memory │    0.35 GiB │  0.30 GiB │     -14.3% │\n"
        "│ KV cache memory  │    3.81 GiB │  3.90 GiB │      +2.5% │\n"
        "│ KV cache blocks  │       1,952 │     1,999 │      +2.4% │\n"
        "│ max concurrency  │       1.56x │     1.60x │      +2.6% │\n"
        "└──────────────────┴─────────────┴───────────┴────────────┘\n"
        "vLLM: started; vllmtune fit: fits: 1 concurrent sequences at max_model_len 20,000\n"
        "note: GPU memory 23.58 GiB from the log\n"
    )


def test_cli_any_gpu_by_its_memory(tmp_path: Path) -> None:
    out = run("fit", profile(tmp_path), "--gpu-memory", "24GiB", "--output", "json")
    assert (out.returncode, out.stderr) == (0, "")
    report = json.loads(out.stdout)
    assert (report["device"], report["gpu_memory_bytes"], report["gpu_memory_source"]) == (
        "GPU (24.00 GiB)",
        24 * 2**30,
        "given with --gpu-memory / resources.gpu_memory",
    )
    assert (report["fit"], report["per_gpu"]["kv_tokens_band"]) == ("fits", [31216, 38944])


def test_cli_bad_gpu_memory(tmp_path: Path) -> None:
    out = run("fit", profile(tmp_path), "--gpu-memory", "24G")
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        "error: --gpu-memory: '24G' is not a memory size: a number and a unit (GiB, GB, MiB, MB, TiB); write the "
        "memory torch reports (nvidia-smi's total is slightly larger), e.g. 23.58GiB, 80GB, 24576MiB\n"
    )


def test_profile_gpu_memory_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE_3090.format(max_len=20000).replace("23.58GiB", "512MiB"))
    out = run("validate", str(path))
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        f"{path}:9: resources.gpu_memory: '512MiB' is less than 1 GiB: not the memory of a GPU (a unit missing?); "
        "write the memory torch reports (nvidia-smi's total is slightly larger), e.g. 23.58GiB, 80GB, 24576MiB\n"
    )
