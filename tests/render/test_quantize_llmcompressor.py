"""The quantization job for real: ``vllmtune render -t quantize-script`` for the tiny local
Llama, bash runs it against a fake ``docker`` that records the argv (and the job script it was
asked to mount), then the SAME script with the SAME settings runs in a venv with the real
llm-compressor (scripts/setup_llmcompressor.sh), container paths mapped back to the host paths
of the captured ``--volume`` flags. GPTQ W8A8 on CPU; the result must be a compressed-tensors
checkpoint, and vLLM 0.32.0's CPU build must serve it (its int8 kernel) and answer."""

from __future__ import annotations

import itertools
import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.render.test_quantize import FAKE_DOCKER
from tests.runtime.test_local_real_vllm import vt
from tests.support.dockerenv import free_port
from tests.support.llmcompressor import LLMC_PIN, SAMPLES, llmc_python, write_calibration
from tests.support.realvllm import tiny_model_dir, vllm_executable
from vllmtune.plan import load_plan
from vllmtune.render.quantize import job_script, render_quantize_script

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

MAX_SEQ = 128


def safetensors_dtypes(path: Path) -> dict[str, str]:
    """Tensor name -> dtype, read from the safetensors header (8-byte length + JSON)."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def captured_run(tmp_path: Path, script: str) -> dict[str, Any]:
    """Run the rendered script with a fake docker on PATH; return what docker received."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bindir / "docker").chmod(0o755)
    (tmp_path / "quantize.sh").write_text(script)
    out = tmp_path / "argv.json"
    proc = subprocess.run(
        ["bash", str(tmp_path / "quantize.sh")],
        env={
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "ARGV_OUT": str(out),
            "HOME": str(tmp_path),
            "HF_CACHE": str(tmp_path / "hf-cache"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    got: dict[str, Any] = json.loads(out.read_text())
    got["job_py"] = str(out) + ".job.py"
    return got


def host_settings(argv: list[str]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(settings with container paths replaced by host paths, the container's --env, volume map)."""
    volumes: dict[str, str] = {}
    env: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "--volume":
            host, target = value.removesuffix(":ro").split(":")
            volumes[target] = host
        elif flag == "--env" and "=" in value:
            k, v = value.split("=", 1)
            env[k] = v
    settings = json.loads(argv[-1])
    for key in ("source", "output", "dataset"):
        assert settings[key] in volumes, (key, settings[key], volumes)  # every local path is mounted
        settings[key] = volumes[settings[key]]
    return settings, env, volumes


def test_quantize_script_runs_llmcompressor_and_vllm_serves_the_checkpoint(tmp_path: Path) -> None:
    py, model = llmc_python(), tiny_model_dir()
    require(py is not None, "the llm-compressor venv (scripts/setup_llmcompressor.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    assert py is not None and model is not None
    write_calibration(tmp_path / "calib.jsonl")
    profile = tmp_path / "quantize.yaml"
    profile.write_text(
        "name: tiny-w8a8\n"
        'vllm: {version: "0.32.0"}\n'
        f"model: {{id: {model}, served_name: tiny-w8a8, max_model_len: 1024}}\n"
        "quantization:\n"
        "  checkpoint: ./out/tiny-W8A8\n"
        "  recipe:\n"
        "    scheme: W8A8\n"
        "    algorithm: gptq\n"
        "    calibration_dataset: ./calib.jsonl\n"
        f"    calibration_samples: {SAMPLES}\n"
        f"    max_seq_length: {MAX_SEQ}\n"
        f"    llmcompressor: {LLMC_PIN}\n"
        "    gpus: 0\n"
        "resources: {gpus: 0}\n"
        "server:\n"
        "  env: {HF_HUB_OFFLINE: '1', VLLM_CPU_KVCACHE_SPACE: '1'}\n"
    )
    plan = load_plan(str(profile))
    got = captured_run(tmp_path, render_quantize_script(plan))
    argv = got["argv"]
    assert "--gpus" not in argv
    settings, env, volumes = host_settings(argv)
    assert env == {"VLLMTUNE_LLMC_REQUIREMENT": LLMC_PIN}
    assert settings == {
        "algorithm": "gptq",
        "dataset": str(tmp_path / "calib.jsonl"),
        "ignore": ["lm_head"],
        "max_seq_length": MAX_SEQ,
        "output": str(tmp_path / "out" / "tiny-W8A8"),
        "push_to_hub": False,
        "revision": None,
        "samples": SAMPLES,
        "scheme": "W8A8",
        "source": str(model),
        "split": "train_sft",
    }
    assert Path(got["job_py"]).read_text() == job_script()
    # The container's pip install is the setup script's venv: same pin.
    version = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('llmcompressor'))"],
        capture_output=True, text=True, timeout=120,
    ).stdout.strip()  # fmt: skip
    assert f"llmcompressor=={version}" == LLMC_PIN

    t0 = time.monotonic()
    proc = subprocess.run(
        [str(py), got["job_py"], json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(volumes["/root/.cache/huggingface"])},
    )
    elapsed = time.monotonic() - t0
    print(f"\nllm-compressor GPTQ W8A8 on CPU, tiny Llama, {SAMPLES} samples: {elapsed:.1f}s wall")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"calibrating on {SAMPLES} samples of at most {MAX_SEQ} tokens" in proc.stdout
    assert "done: W8A8 checkpoint at" in proc.stdout

    out = tmp_path / "out" / "tiny-W8A8"
    config = json.loads((out / "config.json").read_text())
    q = config["quantization_config"]
    assert (q["quant_method"], q["format"], q["quantization_status"], q["ignore"]) == (
        "compressed-tensors",
        "int-quantized",
        "compressed",
        ["lm_head"],
    )
    group = q["config_groups"]["group_0"]
    assert (group["weights"]["num_bits"], group["weights"]["type"], group["input_activations"]["dynamic"]) == (
        8,
        "int",
        True,
    )
    files = sorted(out.glob("*.safetensors"))
    assert files
    dtypes = {k: v for f in files for k, v in safetensors_dtypes(f).items()}
    assert dtypes["model.layers.0.mlp.down_proj.weight"] == "I8"  # really int8 on disk
    assert "model.layers.0.mlp.down_proj.weight_scale" in dtypes
    assert dtypes["lm_head.weight"] not in ("I8", "U8")  # ignored: left unquantized
    assert (out / "tokenizer.json").is_file()

    # vLLM's CPU build serves the checkpoint: the plan loads quantization.checkpoint.
    exe = vllm_executable()
    require(exe is not None and exe.exists(), "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    assert exe is not None
    state = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    try:
        r = vt("up", str(profile), "--runtime", "local", "-d", "--port", str(port), "--timeout", "500",
               "--output", "json", env=state, timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        assert json.loads(r.stdout)["status"] == "started"
        body = {"model": "tiny-w8a8", "prompt": "The quick brown fox", "max_tokens": 8, "temperature": 0}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read())
        assert answer["model"] == "tiny-w8a8"
        assert answer["usage"]["completion_tokens"] == 8
        logs = vt("logs", "tiny-w8a8", "--runtime", "local", env=state).stdout
        assert "CompressedTensorsW8A8Int8" in logs, logs[-3000:]  # vLLM's int8 scheme, not a fallback
    finally:
        vt("down", str(profile), "--runtime", "local", env=state)
