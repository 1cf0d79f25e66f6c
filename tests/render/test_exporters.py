"""The exporters (vllm-config, production-stack, kserve, llm-d; issue 20): every preset and
example rendered for each, byte for byte (tests/golden/exports/), each output checked against
the stack's own published schema (../shared/schemas/, read in place), and every profile field
either mapped or reported by every exporter (walked from the pydantic models)."""

from __future__ import annotations

import copy
import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import GOLDEN, ROOT, require
from tests.render.test_golden import SOURCES
from tests.support import crds
from vllmtune.errors import RenderError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.profile.models import Profile
from vllmtune.render import EXPORTS, export_warnings, render, render_strict, resolve_target
from vllmtune.render.coverage import covered
from vllmtune.render.registry import BY_NAME

SCHEMAS = ROOT.parent / "shared" / "schemas"
EXPORTS_DIR = GOLDEN / "exports"
# The one multi-node example: a Ray pipeline across nodes (each stack's own multi-node form).
MULTI_NODE = "profiles/examples/llama-70b-2x8.yaml"


def coverage_of(target: str) -> Any:
    import importlib

    module = BY_NAME[target].renderer.partition(":")[0]
    return importlib.import_module(f"vllmtune.render.{module}").COVERAGE


def golden_name(source: str, target: str) -> str:
    stem = source.removeprefix("preset:") if source.startswith("preset:") else Path(source).stem
    return f"exports/{stem}.{BY_NAME[target].suffix}"  # the registry names every file


def _pairs() -> list[tuple[str, str]]:
    return [(s, t) for s in SOURCES for t in EXPORTS]


def plan_of(source: str) -> DeploymentPlan:
    # ~ in a profile (a local model) is expanded: tests pin HOME, collection does not
    return _plan_of(source, os.environ.get("HOME", ""))


@functools.cache
def _plan_of(source: str, home: str) -> DeploymentPlan:
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        return load_plan(source)
    finally:
        os.chdir(cwd)


def test_the_exporters_are_render_targets() -> None:
    assert list(EXPORTS) == ["vllm-config", "production-stack", "kserve", "llm-d"]
    assert [resolve_target(t) for t in EXPORTS] == list(EXPORTS)


@pytest.mark.parametrize(("source", "target"), _pairs())
def test_export_matches_golden(source: str, target: str, golden) -> None:  # type: ignore[no-untyped-def]
    text = render(plan_of(source), target)
    assert text.endswith("\n")
    golden(golden_name(source, target), text)


def test_every_export_golden_is_produced_by_a_test() -> None:
    files = {f"exports/{p.name}" for p in EXPORTS_DIR.iterdir()}
    assert files == {golden_name(s, t) for s, t in _pairs()}


# ------------------------------------------------------------------ every field mapped or reported


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every leaf field of the profile schema, dotted (a list of models: its items' fields)."""
    out = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = _model_of(info.annotation)
        out += field_paths(sub, path + ".") if sub is not None else [path]
    return out


PROFILE_FIELDS = field_paths(Profile)


def test_the_field_walk_sees_the_whole_schema() -> None:
    # the walk is not a rubber stamp: nested sections, lists of models and optional sections
    assert len(PROFILE_FIELDS) > 90
    for path in (
        "model.id",
        "lora.adapters.source",
        "deploy.kubernetes.tolerations.effect",
        "server.api_key.secret.key",
        "quantization.recipe.scheme",
        "deploy.kubernetes.autoscaling.cooldown",
    ):
        assert path in PROFILE_FIELDS


@pytest.mark.parametrize("target", list(EXPORTS))
def test_every_profile_field_is_mapped_or_reported(target: str) -> None:
    coverage = coverage_of(target)
    assert [p for p in PROFILE_FIELDS if covered(coverage, p) is None] == []


@pytest.mark.parametrize("target", list(EXPORTS))
def test_the_coverage_names_only_real_fields(target: str) -> None:
    # a renamed field must not leave a stale entry behind (and its new name uncovered)
    stale = [
        key
        for key in coverage_of(target)
        if not any(p == key or (key.endswith(".*") and p.startswith(key[:-1])) for p in PROFILE_FIELDS)
    ]
    assert stale == []


def test_a_new_profile_field_would_be_caught() -> None:
    class Extra(BaseModel):
        new_knob: int = 1

    class Grown(Profile):
        extra: Extra = Extra()

    coverage = coverage_of("kserve")
    assert [p for p in field_paths(Grown) if covered(coverage, p) is None] == ["extra.new_knob"]


# ------------------------------------------------------------------ warnings and --strict

ALL_LEVERS = "preset:all-levers"


def test_warnings_name_each_field_the_stack_cannot_express() -> None:
    plan = plan_of("profiles/examples/cpu-ladder.yaml")
    src = "profiles/examples/cpu-ladder.yaml"
    assert export_warnings(plan, "production-stack") == (
        f"{src}: model.id: production-stack cannot express it; a local model directory has no place in a "
        "cluster; push it to the hub (or a volume) and name that",
        f"{src}: prompt_cache: production-stack cannot express it; the chart has no place for the prompt-cache "
        "proxy; deploy it beside the release (vllmtune render -t kubernetes renders it)",
        f"{src}: quantization.checkpoint: production-stack cannot express it; a local model directory has no "
        "place in a cluster; push it to the hub (or a volume) and name that",
    )
    assert export_warnings(plan_of(ALL_LEVERS), "vllm-config") == (
        "preset:all-levers: prompt_cache: vllm-config cannot express it; the prompt-cache proxy is a separate "
        "service (vllmtune render -t compose / kubernetes deploys it)",
        "preset:all-levers: server.hf_token: vllm-config cannot express it; a vllm serve config file holds vLLM "
        "arguments only; set it in the server's environment (HF_TOKEN)",
    )
    assert export_warnings(plan_of(ALL_LEVERS), "docker") == ()


def test_the_warnings_head_the_file_as_comments() -> None:
    text = render(plan_of(ALL_LEVERS), "llm-d")
    head = [line for line in text.splitlines() if line.startswith("#")]
    assert head[2:] == [f"# not expressed: {w}" for w in export_warnings(plan_of(ALL_LEVERS), "llm-d")]
    assert len(head) == 3


def test_strict_refuses_what_the_stack_cannot_express() -> None:
    with pytest.raises(RenderError) as info:
        render_strict(plan_of(ALL_LEVERS), "kserve")
    assert str(info.value) == (
        "kserve: 1 profile field(s) cannot be expressed (--strict):\n"
        "  preset:all-levers: prompt_cache: kserve cannot express it; an LLMInferenceService has no place for "
        "the prompt-cache proxy; deploy it beside (vllmtune render -t kubernetes renders it)\n"
        "hint: remove them from the profile, or render without --strict to get warnings instead"
    )


def test_strict_renders_what_the_stack_can_express() -> None:
    plan = plan_of("preset:baseline")
    assert render_strict(plan, "production-stack") == render(plan, "production-stack")
    assert render_strict(plan, "docker") == render(plan, "docker")


def test_prefix_caching_left_to_vllm_is_reported_for_production_stack(tmp_path: Path) -> None:
    # the chart passes --no-enable-prefix-caching unless told otherwise: not vLLM's default
    text = (ROOT / "vllmtune" / "presets" / "baseline.yaml").read_text(encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("prefix_caching")))
    assert export_warnings(load_plan(str(path)), "production-stack") == (
        f"{path}: prefix_caching: production-stack cannot express it; the chart always passes "
        "--enable-prefix-caching or --no-enable-prefix-caching, and without a setting it turns prefix caching "
        "off (vLLM's own default is on since 0.8.0): set prefix_caching",
    )


# ------------------------------------------------------------------ the published schemas


def _schema(*parts: str) -> Path:
    path = SCHEMAS.joinpath(*parts)
    require(path.is_file(), f"the published schema {path} (../shared/schemas)")
    return path


def helm_merge(defaults: Any, values: Any) -> Any:
    """Helm's coalescing of a values file over the chart's defaults: maps merge key by key, any
    other value (lists too) replaces."""
    if isinstance(defaults, dict) and isinstance(values, dict):
        out = copy.deepcopy(defaults)
        for k, v in values.items():
            out[k] = helm_merge(defaults.get(k), v) if k in defaults else copy.deepcopy(v)
        return out
    return copy.deepcopy(values)


def schema_problems(doc: Any, schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    ]


def load_export(source: str, target: str) -> Any:
    return yaml.safe_load((GOLDEN / golden_name(source, target)).read_text(encoding="utf-8"))


@functools.cache
def _chart(folder: str) -> tuple[dict[str, Any], Any]:
    schema = json.loads(_schema(folder, "values.schema.json").read_text(encoding="utf-8"))
    defaults = yaml.safe_load(_schema(folder, "values.yaml").read_text(encoding="utf-8"))
    return schema, defaults


def chart(folder: str) -> tuple[dict[str, Any], Any]:
    return copy.deepcopy(_chart(folder))


@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "production-stack"])
def test_production_stack_values_match_the_charts_schema(source: str) -> None:
    schema, defaults = chart("production-stack")
    values = load_export(source, "production-stack")
    # as given, and as helm checks them: merged over the chart's defaults
    assert schema_problems(values, schema) == []
    assert schema_problems(helm_merge(defaults, values), schema) == []


@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "llm-d"])
def test_llmd_values_match_the_charts_schema(source: str) -> None:
    schema, defaults = chart("llm-d-modelservice")
    values = load_export(source, "llm-d")
    assert schema_problems(values, schema) == []
    assert schema_problems(helm_merge(defaults, values), schema) == []


def test_the_schema_checks_are_not_rubber_stamps() -> None:
    schema, _ = chart("production-stack")
    bad = load_export("preset:baseline", "production-stack")
    bad["routerSpec"]["serviceType"] = "Bogus"
    bad["servingEngineSpec"]["modelSpec"][0]["replicaCount"] = "one"
    assert schema_problems(bad, schema) == [
        "/routerSpec/serviceType: 'Bogus' is not one of ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']",
        "/servingEngineSpec/modelSpec/0/replicaCount: 'one' is not of type 'integer'",
    ]
    schema, _ = chart("llm-d-modelservice")
    bad = load_export("preset:baseline", "llm-d")
    bad["decode"]["parallelism"]["tensr"] = 2
    assert schema_problems(bad, schema) == [
        "/decode/parallelism: Additional properties are not allowed ('tensr' was unexpected)"
    ]
    bad = load_export("preset:baseline", "kserve")
    bad["spec"]["model"]["url"] = "hf://x"
    assert kserve_problems(bad) == ["/spec/model: Additional properties are not allowed ('url' was unexpected)"]


@functools.cache
def kserve_schema(version: str) -> dict[str, Any]:
    path = _schema("kserve", "serving.kserve.io_llminferenceservices.yaml")
    return crds.published_crd_schema(path, version)  # 2.7 MB of YAML: read once


def kserve_problems(doc: dict[str, Any]) -> list[str]:
    problems = schema_problems(doc, kserve_schema(doc["apiVersion"].rpartition("/")[2]))
    # the CRD's one CEL rule on spec, which JSON Schema cannot say
    if "replicas" in doc["spec"] and "scaling" in doc["spec"]:
        problems.append("/spec: replicas and scaling are mutually exclusive")
    return problems


@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "kserve"])
def test_kserve_manifest_matches_the_crd(source: str) -> None:
    doc = load_export(source, "kserve")
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1alpha2", "LLMInferenceService")
    assert kserve_problems(doc) == []
    # the pod template as Kubernetes' own PodSpec (strict), as the controller builds pods from it
    kv = crds.kubernetes_validate()
    for pod in ("template", "worker"):  # the worker pods' spec, for a multi-node server
        if pod not in doc["spec"]:
            continue
        template = {"metadata": {"name": "x"}, "spec": doc["spec"][pod]}
        kv.validate(
            {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": template},
            crds.K8S_VERSION,
            strict=True,
        )


# ------------------------------------------------------------------ what each stack hands to vLLM


def config_file_pairs(doc: dict[str, Any]) -> list[list[str]]:
    """The options vLLM 0.32 builds from a --config file (vllm/utils/argparse_utils.py,
    load_config_file), one list per key: ``--key value...``; ``--key`` for true, nothing for
    false (the top-level parser has no --no- form), list items as values, a mapping as JSON."""
    out: list[list[str]] = []
    for key, value in doc.items():
        if isinstance(value, bool):
            out += [[f"--{key}"]] if value else []
        elif isinstance(value, list):
            out += [[f"--{key}", *map(str, value)]] if value else []
        elif isinstance(value, dict):
            out.append([f"--{key}", json.dumps(value)])
        else:
            out.append([f"--{key}", str(value)])
    return out


def config_file_argv(doc: dict[str, Any]) -> list[str]:
    """That argv, as vLLM's parser gets it."""
    return [word for option in config_file_pairs(doc) for word in option]


def joined(doc: dict[str, Any]) -> list[str]:
    """Each option as one word ``--key=value`` (more values follow as words): what the hostile
    matrix compares, whatever the value starts with."""
    return [
        w
        for flag, *values in config_file_pairs(doc)
        for w in ([f"{flag}={values[0]}", *values[1:]] if values else [flag])
    ]


CHART_VALUE_FLAGS = (  # vllmConfig keys the chart's template turns into `--flag value`, in its order
    ("maxModelLen", "--max-model-len"),
    ("dtype", "--dtype"),
    ("tensorParallelSize", "--tensor-parallel-size"),
    ("maxNumSeqs", "--max-num-seqs"),
    ("gpuMemoryUtilization", "--gpu_memory_utilization"),
    ("maxLoras", "--max_loras"),
)


def chart_container(values: dict[str, Any]) -> dict[str, Any]:
    """The vLLM container as the production-stack chart's template writes it
    (helm/templates/deployment-vllm-multi.yaml at the commit of ../shared/schemas: model, host,
    port, the prefix-caching flag, the vllmConfig keys, then extraArgs; its own variables, the
    secrets, then env), for one modelSpec without the LoRA/tool/LMCache/chat-template options,
    which vllmtune never sets. Checked once by hand against `helm template` of that chart (helm
    3.17.3): the same command for every golden."""
    engine = values["servingEngineSpec"]
    [spec] = engine["modelSpec"]
    assert not {"enableLoRA", "enableTool", "toolCallParser", "lmcacheConfig", "chatTemplate"} & set(spec)
    cfg = spec["vllmConfig"]
    command = ["vllm", "serve", spec["modelURL"], "--host", "0.0.0.0", "--port", str(engine["containerPort"])]
    if "enableChunkedPrefill" in cfg:
        command.append("--enable-chunked-prefill" if cfg["enableChunkedPrefill"] else "--no-enable-chunked-prefill")
    command.append("--enable-prefix-caching" if cfg.get("enablePrefixCaching") else "--no-enable-prefix-caching")
    for key, flag in CHART_VALUE_FLAGS:
        if key in cfg:
            command += [flag, str(cfg[key])]
    env: list[dict[str, Any]] = [
        {"name": "PYTHONHASHSEED", "value": "123"},
        {"name": "HF_HOME", "value": "/data" if "pvcStorage" in spec else "/tmp"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp"},
    ]
    for var, ref in (("HF_TOKEN", spec.get("hf_token")), ("VLLM_API_KEY", engine.get("vllmApiKey"))):
        if ref:
            env.append(
                {"name": var, "valueFrom": {"secretKeyRef": {"name": ref["secretName"], "key": ref["secretKey"]}}}
            )
    image = f"{spec['repository']}:{spec['tag']}"
    return {
        "name": "vllm",
        "image": image,
        "command": command + cfg.get("extraArgs", []),
        "env": env + spec.get("env", []),
    }


def chart_command(values: dict[str, Any]) -> list[str]:
    """The chart's vLLM command as the process gets it (after Kubernetes' $(VAR) expansion)."""
    from tests.render.k8s_expand import as_run

    command: list[str] = as_run(chart_container(values))["command"]
    return command


def _json_words(argv: list[str]) -> list[Any]:
    return [json.loads(w) if w.startswith("{") else w for w in argv]


@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "vllm-config"])
def test_the_config_file_is_the_plans_argv(source: str) -> None:
    # read as vLLM's loader reads it; the real parser's namespaces: test_exporters_real_vllm.py
    argv = config_file_argv(load_export(source, "vllm-config"))
    assert _json_words(argv) == _json_words(list(plan_of(source).args))


@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "production-stack"])
def test_production_stack_command_parses_for_its_pinned_version(source: str) -> None:
    from tests.render.test_golden import FLAG_DUMPS, check_against_dump

    require(FLAG_DUMPS.is_dir(), f"the vLLM flag dumps ({FLAG_DUMPS}, beside the checkout)")
    plan = plan_of(source)
    command = chart_command(load_export(source, "production-stack"))
    assert command[:3] == ["vllm", "serve", plan.model]
    dump = json.loads((FLAG_DUMPS / "serve" / f"{plan.vllm_version}.json").read_text(encoding="utf-8"))
    # the chart spells two flags with underscores, which vLLM's parser turns into dashes
    argv = [w.replace("_", "-") if w.startswith("--") else w for w in command[3:]]
    assert check_against_dump(argv, dump) == []


@pytest.mark.parametrize("target", ["kserve", "llm-d"])
@pytest.mark.parametrize("source", [s for s, t in _pairs() if t == "kserve" and s != MULTI_NODE])
def test_kserve_and_llmd_give_vllm_the_plans_argv(source: str, target: str) -> None:
    from tests.render.hostile import k8s_containers
    from tests.render.k8s_expand import as_run

    plan = plan_of(source)
    [container] = [as_run(c) for c in k8s_containers(load_export(source, target))]
    assert (container["command"], container["args"]) == (list(plan.entrypoint), list(plan.args))


# ------------------------------------------------------------------ the command line: --strict, warnings


@pytest.mark.parametrize("entry", [["-m", "vllmtune.cli"], ["-m", "vllmtune"]], ids=["typer", "fast-path"])
def test_render_strict_and_the_warnings_on_stderr(entry: list[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "NO_COLOR": "1", "VLLMTUNE_NO_CACHE": "1"}

    def vt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *entry, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
        )

    why = (
        "preset:all-levers: prompt_cache: kserve cannot express it; an LLMInferenceService has no place for the "
        "prompt-cache proxy; deploy it beside (vllmtune render -t kubernetes renders it)"
    )
    loose = vt("render", "preset:all-levers", "-t", "kserve")
    assert (loose.returncode, loose.stderr) == (0, f"warning: {why}\n")
    assert loose.stdout == render(load_plan("preset:all-levers"), "kserve")
    strict = vt("render", "preset:all-levers", "-t", "kserve", "--strict", "-o", str(tmp_path / "k.yaml"))
    assert (strict.returncode, strict.stdout) == (1, "")
    assert strict.stderr == (
        "error: kserve: 1 profile field(s) cannot be expressed (--strict):\n"
        f"  {why}\n"
        "hint: remove them from the profile, or render without --strict to get warnings instead\n"
    )
    assert not (tmp_path / "k.yaml").exists()  # nothing written
    # a target that expresses every field: --strict changes nothing
    ok = vt("render", "preset:baseline", "-t", "kserve", "--strict")
    assert (ok.returncode, ok.stderr) == (0, "") and ok.stdout == render(load_plan("preset:baseline"), "kserve")


def test_kserve_and_llmd_run_the_multi_node_server_as_kubernetes_does() -> None:
    # the same leader and worker programs, the same vLLM command line, as -t kubernetes' LeaderWorkerSet
    from tests.render.k8s_expand import as_run
    from vllmtune.render.k8s.base import LEADER_SH, NODE_SH, WORKER_SH

    plan = plan_of(MULTI_NODE)
    argv = [*plan.entrypoint, *plan.args]
    doc = load_export(MULTI_NODE, "kserve")
    assert doc["spec"]["parallelism"] == {"tensor": 8, "pipeline": 2}
    [leader] = [as_run(c) for c in doc["spec"]["template"]["containers"]]
    [worker] = [as_run(c) for c in doc["spec"]["worker"]["containers"]]
    assert (leader["command"], leader["args"]) == (["bash", "-c", LEADER_SH, "vllmtune-leader"], argv)
    assert (worker["command"], "args" in worker) == (["bash", "-c", WORKER_SH, "vllmtune-worker"], False)
    assert worker["resources"] == leader["resources"]
    assert [e["name"] for e in worker["env"]] == [e["name"] for e in leader["env"]] == [
        "VLLM_HOST_IP", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "VLLMTUNE_NODES", "VLLMTUNE_RAY_PORT",
        "VLLMTUNE_RAY_WAIT_SECONDS", "HF_TOKEN",
    ]  # fmt: skip
    values = load_export(MULTI_NODE, "llm-d")
    assert values["multinode"] is True
    assert values["decode"]["parallelism"] == {"tensor": 8, "data": 1, "dataLocal": 1, "workers": 2}
    [node] = [as_run(c) for c in values["decode"]["containers"]]
    assert (node["command"], node["args"]) == (["bash", "-c", NODE_SH, "vllmtune-node"], argv)
    assert "startupProbe" not in node
    # production-stack: the chart's RayCluster (its own head/worker programs), head + nodes - 1 workers
    [spec] = load_export(MULTI_NODE, "production-stack")["servingEngineSpec"]["modelSpec"]
    assert (spec["replicaCount"], spec["raySpec"]) == (
        1,
        {"enabled": True, "headNode": {"resources": spec["resources"]}},
    )
    assert spec["env"] == [
        {"name": "NCCL_SOCKET_IFNAME", "value": "eth0"},
        {"name": "GLOO_SOCKET_IFNAME", "value": "eth0"},
    ]
    assert "keda" not in spec  # the chart's ScaledObject skips a raySpec model


def test_the_node_program_runs_the_leaders_or_a_workers_part(tmp_path: Path) -> None:
    import subprocess

    from vllmtune.render.k8s.base import NODE_SH

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ray = bin_dir / "ray"  # records how it was called; the health check and the head's node count pass
    ray.write_text('#!/bin/sh\necho "ray $*" >> "$LOG"\n', encoding="utf-8")
    ray.chmod(0o755)
    py = bin_dir / "python3"
    py.write_text("#!/bin/sh\necho 2\n", encoding="utf-8")
    py.chmod(0o755)
    log = tmp_path / "log"
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log), "VLLMTUNE_RAY_PORT": "6379",
            "VLLMTUNE_NODES": "2", "VLLMTUNE_RAY_WAIT_SECONDS": "5", "LWS_LEADER_ADDRESS": "lead"}  # fmt: skip
    for index, expected in [
        ("0", "ray start --head --port=6379 --disable-usage-stats\nserving\n"),
        ("1", "ray health-check --address=lead:6379\nray start --address=lead:6379 --block --disable-usage-stats\n"),
    ]:
        log.write_text("", encoding="utf-8")
        env = {**base, "LWS_WORKER_INDEX": index}
        cmd = ["bash", "-c", NODE_SH, "vllmtune-node", "sh", "-c", 'echo serving >> "$LOG"']
        subprocess.run(cmd, env=env, check=True, timeout=30)
        assert log.read_text(encoding="utf-8") == expected
