"""render.vllm_config called directly: render_vllm_config is the reviewed golden ``vllm serve
--config`` file (multi-node included: the file holds the argv, the warning says Ray is outside);
vllm_config_warnings names each field a vLLM config file cannot carry."""

from __future__ import annotations

import pytest

from tests.conftest import GOLDEN, ROOT
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render.vllm_config import render_vllm_config, vllm_config_warnings

SEVENTY_B = "profiles/examples/llama-70b-2x8.yaml"
HF_TOKEN = (
    "server.hf_token: vllm-config cannot express it; a vllm serve config file holds vLLM arguments only; "
    "set it in the server's environment (HF_TOKEN)"
)


def _plan(source: str, monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan(source)


@pytest.mark.parametrize(
    ("source", "stem"),
    [("preset:baseline", "baseline"), ("preset:speculative", "speculative"), (SEVENTY_B, "llama-70b-2x8")],
)
def test_render_vllm_config_is_the_golden_file(source: str, stem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        render_vllm_config(_plan(source, monkeypatch)) == (GOLDEN / "exports" / f"{stem}.vllm-config.yaml").read_text()
    )


def test_vllm_config_warnings_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vllm_config_warnings(_plan("preset:baseline", monkeypatch)) == (f"preset:baseline: {HF_TOKEN}",)


def test_vllm_config_warnings_multi_node(monkeypatch: pytest.MonkeyPatch) -> None:
    assert vllm_config_warnings(_plan(SEVENTY_B, monkeypatch)) == (
        f"{SEVENTY_B}: resources.nodes: vllm-config cannot express it; the Ray cluster across nodes must be "
        "formed outside vllm serve (distributed-executor-backend: ray is set)",
        f"{SEVENTY_B}: {HF_TOKEN}",
    )


def test_vllm_config_warnings_env_and_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    src = "profiles/examples/cpu-ladder.yaml"
    assert vllm_config_warnings(_plan(src, monkeypatch)) == (
        f"{src}: prompt_cache: vllm-config cannot express it; the prompt-cache proxy is a separate service "
        "(vllmtune render -t compose / kubernetes deploys it)",
        f"{src}: server.env: vllm-config cannot express it; a vllm serve config file holds vLLM arguments only; "
        "set it in the server's environment",
    )


def test_vllm_config_warnings_kv_offload_lmcache_env() -> None:
    # the file holds --kv-transfer-config; LMCache's env is reported under kv_offload, not server.env
    from tests.test_plan import head, plan_of

    plan = plan_of(head("0.32.0") + "kv_offload: {backend: lmcache, size: 8GiB}\n")
    assert vllm_config_warnings(plan) == (
        "p.yaml: kv_offload: vllm-config cannot express it; a vllm serve config file holds vLLM arguments only; "
        "set it in the server's environment (LMCACHE_CHUNK_SIZE, LMCACHE_LOCAL_CPU, LMCACHE_MAX_LOCAL_CPU_SIZE)",
    )
    assert render_vllm_config(plan).endswith(
        "kv-transfer-config:\n  kv_connector: LMCacheConnectorV1\n  kv_role: kv_both\nhost: 0.0.0.0\nport: 8000\n"
    )
