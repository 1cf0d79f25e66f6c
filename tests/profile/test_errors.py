"""Bad input: whole user-facing messages, with file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtune.errors import ProfileError
from vllmtune.plan import load_plan

BASE = 'name: my-llm\nvllm:\n  version: "0.32.0"\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n'


def errors_of(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_plan(str(path))
    return str(info.value).replace(str(tmp_path) + "/", "")


CASES = {
    "unknown key": (
        BASE + "resources:\n  gpu_memory_utilizaton: 0.9\n",
        "p.yaml:7: resources.gpu_memory_utilizaton: unknown key; did you mean 'gpu_memory_utilization'?",
    ),
    "unknown top key": (
        BASE + "prefix_cashing: true\n",
        "p.yaml:6: prefix_cashing: unknown key; did you mean 'prefix_caching'?",
    ),
    "wrong type": (BASE + "server:\n  port: '80'\n", 'p.yaml:7: server.port: expected a whole number, got "80"'),
    "unquoted version": (
        "name: my-llm\nvllm:\n  version: 0.10\nmodel:\n  id: m\n",
        "p.yaml:3: vllm.version: expected a string (quote it), got 0.1",
    ),
    "latest": (
        "name: my-llm\nvllm:\n  version: latest\nmodel:\n  id: m\n",
        "p.yaml:3: vllm.version: 'latest' is not reproducible; pin a release, e.g. version: \"0.32.0\"",
    ),
    "unknown version": (
        'name: my-llm\nvllm:\n  version: "0.99.0"\nmodel:\n  id: m\n',
        "p.yaml:3: vllm.version: unknown vLLM version '0.99.0'; vllmtune knows "
        '0.6.0 .. 0.33.0 (quote it in YAML: "0.10" is not 0.1)',
    ),
    "missing section": ("name: my-llm\nvllm:\n  version: '0.32.0'\n", "p.yaml:1: model: required key is missing"),
    "bad name": (
        BASE.replace("my-llm", "My_LLM"),
        "p.yaml:1: name: \"My_LLM\" is not valid (lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63)",
    ),
    "literal secret": (
        BASE + "server:\n  api_key: sk-123\n",
        "p.yaml:7: server.api_key: a literal secret is not allowed in a profile; "
        "reference it instead: {env: NAME} (docker, compose) and/or "
        "{secret: {name: S, key: K}} (kubernetes)",
    ),
    "secret in env": (
        BASE + "server:\n  env:\n    HF_TOKEN: hf_abc\n",
        "p.yaml:8: server.env.HF_TOKEN: looks like a secret; never write secrets in "
        "a profile: use server.hf_token: {env: HF_TOKEN} (or a Kubernetes secret "
        "reference)",
    ),
    "empty ref": (
        BASE + "server:\n  hf_token: {}\n",
        "p.yaml:7: server.hf_token: give the secret by reference: {env: NAME} and/or {secret: {name: NAME, key: KEY}}",
    ),
    "draft model missing": (
        BASE + "speculative:\n  method: draft_model\n",
        "p.yaml:6: speculative.model: method draft_model needs the draft "
        "model: add speculative.model (e.g. a small model of the same family)",
    ),
    "chunked prefill budget": (
        BASE + "  max_model_len: 8192\nbatching:\n  chunked_prefill: false\n  max_num_batched_tokens: 2048\n",
        "p.yaml:9: batching.max_num_batched_tokens: 2048 is below "
        "model.max_model_len (8192); with chunked_prefill off a whole prompt "
        "must fit one step: raise it to >= 8192 or enable chunked_prefill",
    ),
    "tp over gpus": (
        BASE + "resources:\n  gpus: 1\n  tensor_parallel_size: 2\n",
        "p.yaml:8: resources.tensor_parallel_size: tensor_parallel_size x "
        "pipeline_parallel_size = 2 needs 2 GPUs but resources.gpus is 1; raise gpus "
        "or lower the parallel sizes",
    ),
    "gpu util": (
        BASE + "resources:\n  gpu_memory_utilization: 1.5\n",
        "p.yaml:7: resources.gpu_memory_utilization: 1.5 is outside (0, 1]; it is a fraction, e.g. 0.9",
    ),
    "served name": (
        BASE + "  served_name: my model/v1\n",
        "p.yaml:6: model.served_name: 'my model/v1' cannot be a Kubernetes label "
        "value: use at most 63 letters, digits, '-', '_' or '.', starting and ending "
        "with a letter or digit",
    ),
    "quant method": (
        BASE + "quantization:\n  method: awqq\n",
        "p.yaml:7: quantization.method: 'awqq' is not accepted by vLLM 0.32.0; did "
        "you mean 'awq'? choose one of: awq, auto_awq, fp8, fbgemm_fp8, fp_quant, "
        "modelopt, modelopt_fp4, modelopt_mxfp8, modelopt_mixed, auto_gptq, gptq, "
        "gptq_marlin, awq_marlin, humming, compressed-tensors, experts_int8, quark, "
        "moe_wna16, torchao, inc, mxfp4, gpt_oss_mxfp4, deepseek_v4_fp8, online, "
        "fp8_per_tensor, fp8_per_block, fp8_per_channel, "
        "int8_per_channel_weight_only, nvfp4_per_token, mxfp8",
    ),
    "removed quant method": (BASE + "quantization:\n  method: gguf\n", None),
    "extra arg typo": (
        BASE + "server:\n  extra_args: [--enable-prefx-caching]\n",
        "p.yaml:7: server.extra_args[0]: unknown flag --enable-prefx-caching for "
        "vLLM 0.32.0; did you mean --enable-prefix-caching?",
    ),
    "extra arg duplicate": (
        BASE + "  max_model_len: 4096\nserver:\n  extra_args:\n  - --max-model-len=8192\n",
        "p.yaml:9: server.extra_args[0]: --max-model-len is already set by "
        "the profile; set the profile field instead of repeating it in "
        "extra_args",
    ),
    "speculative too old": (
        'name: my-llm\nvllm:\n  version: "0.8.5"\nmodel:\n  id: m\nspeculative:\n  method: eagle3\n  model: x\n',
        "p.yaml:7: speculative.method: 'eagle3' is not a speculative method "
        "of vLLM 0.8.5; it is available in 0.9.1 .. 0.33.0; choose one of: ngram, eagle, medusa, mlp_speculator, "
        "draft_model",
    ),
    "leading dash": (
        BASE.replace("meta-llama/Llama-3.1-8B-Instruct", "'--trust-remote-code'"),
        "p.yaml:5: model.id: '--trust-remote-code' starts with '-', which vLLM would read as a flag",
    ),
    "duplicate key": (
        BASE + "model:\n  id: x\n",
        "p.yaml:6: model: duplicate key (first defined on line 4); keep one of them",
    ),
    "malformed": ("name: [\n", "p.yaml:2: invalid YAML: while parsing a flow node did not find expected node content"),
    "not a mapping": ("- a\n- b\n", "p.yaml:1: a profile must be a mapping of keys, got a list"),
    "empty": ("", "p.yaml:1: empty file: a profile needs at least name, vllm and model"),
    "not utf8": (b"name: caf\xe9\n", "p.yaml:1: not UTF-8 text (byte 0xe9 at offset 9); save the file as UTF-8"),
    "non-string key": (BASE + "1: x\n", "p.yaml:6: keys must be strings, got 1; quote the key"),
    "missing parent": (
        BASE + "extends: basline\n",
        "p.yaml:6: extends: 'basline' not found (preset:basline); did you mean the preset 'baseline'?",
    ),
    "missing file parent": (BASE + "extends: ./nope.yaml\n", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_message(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    message = errors_of(tmp_path, text)
    if expected is None:
        return
    assert message == expected


def test_removed_quantization_names_the_versions(tmp_path: Path) -> None:
    message = errors_of(tmp_path, BASE + "quantization:\n  method: gguf\n")
    assert message.startswith(
        "p.yaml:7: quantization.method: 'gguf' is not accepted by vLLM "
        "0.32.0 (gguf is accepted by 0.6.0 .. 0.23.0); choose one of: "
    )


def test_missing_parent_file_names_the_resolved_path(tmp_path: Path) -> None:
    assert errors_of(tmp_path, BASE + "extends: ./nope.yaml\n") == (
        "p.yaml:6: extends: './nope.yaml' not found (nope.yaml); give a path relative to the "
        "file or a preset (all-levers, awq, baseline, cpu-tiny, prefix-cache, speculative)"
    )


def test_cycle_names_the_chain(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert errors_of(tmp_path, BASE + "extends: b.yaml\n", name="a.yaml") == (
        "b.yaml:1: extends: cycle: a.yaml -> b.yaml -> a.yaml; remove one of these extends"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = errors_of(tmp_path, BASE + "server:\n  port: x\n  hots: y\n")
    assert message.splitlines() == [
        'p.yaml:7: server.port: expected a whole number, got "x"',
        "p.yaml:8: server.hots: unknown key; did you mean 'host'?",
    ]


def test_extends_merges_deeply_and_replaces_lists(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE + "server:\n  extra_args: [--seed, '1']\n  port: 9000\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\nserver:\n  extra_args: [--seed, '2']\n")
    plan = load_plan(str(tmp_path / "child.yaml"))
    assert plan.port == 9000
    assert plan.args[-2:] == ("--seed", "2")
    assert plan.args.count("--seed") == 1


def test_warning_for_mismatched_checkpoint_and_draft_family(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        BASE + "quantization:\n  method: awq\n  checkpoint: org/Llama-3.1-8B-GPTQ\n"
        "speculative:\n  method: draft_model\n  model: Qwen/Qwen2.5-0.5B\n"
    )
    plan = load_plan(str(path))
    assert [w.replace(str(tmp_path) + "/", "") for w in plan.warnings] == [
        "p.yaml:11: speculative.model: 'Qwen/Qwen2.5-0.5B' looks like qwen 2 but the target is "
        "llama 3: a draft model must share the target's tokenizer (same family)",
        "p.yaml:8: quantization.checkpoint: 'org/Llama-3.1-8B-GPTQ' does not look like a AWQ "
        "checkpoint (its name says GPTQ); method awq needs one",
    ]


def test_replicas_with_rwo_cache_warns(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(BASE + "deploy:\n  kubernetes:\n    replicas: 3\n")
    plan = load_plan(str(path))
    assert [w.replace(str(tmp_path) + "/", "") for w in plan.warnings] == [
        "p.yaml:8: deploy.kubernetes.replicas: 3 replicas share a ReadWriteOnce model "
        "cache: pods on other nodes cannot mount it; set deploy.kubernetes.pvc.access_mode: "
        "ReadWriteMany"
    ]
