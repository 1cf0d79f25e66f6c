"""Multi-LoRA for real: vLLM's real parser accepts the rendered LoRA args, and
`vllmtune up --runtime local` serves the tiny Llama with two adapters (random-weight PEFT
adapters from scripts/make_tiny_lora.py); /v1/models lists them, a request through an
adapter answers (with logprobs that differ from the base model's), and `ps` shows every
served name."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.runtime.test_local_real_vllm import vt
from tests.support.dockerenv import free_port
from tests.support.profiles import tiny_profile
from tests.support.realvllm import (
    parse_with_real_vllm,
    process_group_gone,
    tiny_model_dir,
    vllm_executable,
    vllm_venv_python,
)
from vllmtune.runtime.up import UpOptions, prepare

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LORA_SCRIPT = ROOT / "scripts" / "make_tiny_lora.py"
LATENCY_REQUESTS = 5  # per model: a handful, sequential, bounded by max_tokens


def tiny_lora_dir() -> Path:
    """Where make_tiny_lora.py builds the adapter (the tests pin HOME, so the real one)."""
    env = os.environ.get("VLLMTUNE_TINY_LORA")
    home = os.environ.get("VLLMTUNE_REAL_HOME", os.path.expanduser("~"))
    return Path(env) if env else Path(home) / ".cache" / "vllmtune" / "tiny-lora"


def ensure_tiny_lora(py: Path, base: Path) -> Path:
    """Build the adapter if needed (idempotent, a few seconds the first time)."""
    out = tiny_lora_dir()
    proc = subprocess.run(
        [str(py), str(LORA_SCRIPT), str(out), "--base", str(base)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def lora_profile(tmp_path: Path, model: Path, adapter: Path) -> Path:
    return tiny_profile(
        tmp_path / "lora.yaml",
        "vt-lora",
        model,
        "lora:\n"
        "  adapters:\n"
        f"    - {{name: tiny-sql, source: {adapter}}}\n"
        f"    - {{name: tiny-chat, source: {adapter}}}\n"
        "  max_loras: 2\n"
        "  max_lora_rank: 8\n",
    )


def post(url: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        data = json.loads(resp.read())
    return data, time.perf_counter() - t0


def completion(port: int, model: str) -> tuple[dict[str, Any], float]:
    body = {"model": model, "prompt": "The quick brown fox", "max_tokens": 16, "temperature": 0, "logprobs": 1}
    return post(f"http://127.0.0.1:{port}/v1/completions", body)


def test_rendered_lora_args_parse_with_real_vllm(tmp_path: Path) -> None:
    """Both argv forms: the container's (/adapters/<name>) and the local runtime's (host dir)."""
    require(vllm_venv_python() is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    model = tiny_model_dir()
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    assert model is not None
    adapter = tiny_lora_dir()
    plan = prepare(str(lora_profile(tmp_path, model, adapter)), UpOptions(runtime="local"))
    container_argv = list(plan.args)
    local_argv = plan.serve_argv()[2:]
    results = parse_with_real_vllm([container_argv, local_argv])
    for argv, res in zip((container_argv, local_argv), results, strict=True):
        assert res["ok"], (argv, res)
        ns = res["namespace"]
        assert (ns["enable_lora"], ns["max_loras"], ns["max_lora_rank"]) == (True, 2, 8)
        assert {"enable_lora", "lora_modules", "max_loras", "max_lora_rank"} <= set(res["non_default"])
    container_modules, local_modules = (r["namespace"]["lora_modules"] for r in results)
    # vLLM parsed name=path into LoRAModulePath objects (shown as their repr)
    assert "name='tiny-sql', path='/adapters/tiny-sql'" in str(container_modules)
    assert f"name='tiny-chat', path='{adapter}'" in str(local_modules)


def test_up_two_adapters_models_completion_ps_down(tmp_path: Path) -> None:
    exe, model, py = vllm_executable(), tiny_model_dir(), vllm_venv_python()
    require(exe is not None and exe.exists() and py is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    assert model is not None and py is not None
    adapter = ensure_tiny_lora(py, model)
    profile = lora_profile(tmp_path, model, adapter)
    env = {"VLLMTUNE_VLLM": str(exe), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    port = free_port()
    pid = 0
    try:
        r = vt(
            "up", str(profile), "--runtime", "local", "-d", "--port", str(port), "--timeout", "500",
            "--output", "json", env=env, timeout=600,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        up = json.loads(r.stdout)
        assert (up["status"], up["model"]) == ("started", "tiny")
        print("\nLoRA server up timings:", up["timings"], "phases:", up["phases"])

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as resp:
            cards = json.loads(resp.read())["data"]
        assert [(c["id"], c.get("parent")) for c in cards] == [
            ("tiny", None),
            ("tiny-sql", "tiny"),
            ("tiny-chat", "tiny"),
        ]
        assert {c["root"] for c in cards[1:]} == {str(adapter)}  # the host dir, not /adapters/...

        base, _ = completion(port, "tiny")
        sql, _ = completion(port, "tiny-sql")
        chat, _ = completion(port, "tiny-chat")
        assert (base["model"], sql["model"], chat["model"]) == ("tiny", "tiny-sql", "tiny-chat")
        assert sql["usage"]["completion_tokens"] > 0
        # the adapter's random weights change the distribution: it really was applied
        assert sql["choices"][0]["logprobs"]["token_logprobs"] != base["choices"][0]["logprobs"]["token_logprobs"]

        latency: dict[str, list[float]] = {"tiny": [], "tiny-sql": []}
        for _ in range(LATENCY_REQUESTS):
            for name, times in latency.items():
                times.append(completion(port, name)[1])
        print(
            "latency (16 tokens, sequential, median ms):",
            {k: round(statistics.median(v) * 1000, 1) for k, v in latency.items()},
        )

        ps = json.loads(vt("ps", "--runtime", "local", "--output", "json", env=env).stdout)
        assert [(x["name"], x["state"], x["health"], x["served_name"], x["served_models"]) for x in ps] == [
            ("vt-lora", "running", "healthy", "tiny", ["tiny", "tiny-sql", "tiny-chat"])
        ]
        pid = int(ps[0]["ident"])
        header, row = vt("ps", "--runtime", "local", env=env).stdout.splitlines()
        assert header.split() == ["NAME", "BACKEND", "PORT", "STATE", "HEALTH", "UPTIME", "ID", "MODELS"]
        cells = row.split()
        assert cells[:5] + cells[6:] == ["vt-lora", "local", str(port), "running", "healthy", str(pid),
                                         "tiny,tiny-sql,tiny-chat"]  # fmt: skip
        assert re.fullmatch(r"\d+m\d\ds", cells[5]), cells[5]
    finally:
        down = vt("down", str(profile), "--runtime", "local", env=env)
    assert down.stdout == "vt-lora: stopped and removed (local)\n"
    assert process_group_gone(pid), "vLLM's process group outlived `vllmtune down`"
