"""Property tests: any valid profile, hostile strings included, renders a script that bash
itself turns back into the planned docker argv, and YAML that parses back to the plan.

The strategies generate valid profiles by construction (no example is discarded), every test
runs once per branch (single node, LeaderWorkerSet, autoscaled, sidecars, LoRA, quantize) with
that branch forced on and checked on the plan, and profiles broken in one known way are refused
for exactly that reason. Example counts: tests/support/hypothesis_profiles.py."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.render.k8s_expand import as_run
from tests.support import crds
from tests.support.crds import kubernetes_validate
from tests.support.hypothesis_profiles import examples
from vllmtune.errors import ProfileError
from vllmtune.plan import build_plan
from vllmtune.profile.loader import validate_document
from vllmtune.profile.yamlio import Located, dump_yaml, load_yaml
from vllmtune.render.compose import compose_dict, render_compose
from vllmtune.render.docker import Shell, render_docker, run_lines
from vllmtune.render.k8s import render_kubernetes

ALPHABET = "aZ9 -_./:'\"$`\\!#&;|<>(){}[]*?~%@^,=\n\té—🙂"
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]*@")


def _no_url_credentials(text: str) -> str:
    # "a://x@" is a literal secret the profile checks refuse: break the "://" (no discard)
    while _URL_CREDENTIALS.search(text):
        text = text.replace("://", ":/", 1)
    return text


def hostile(first_not: str = "", never: str = "", max_size: int = 24) -> st.SearchStrategy[str]:
    """Hostile text that is valid by construction: no first character from ``first_not``, no
    character from ``never`` anywhere (strategies, not filters: no example is discarded)."""
    rest = [c for c in ALPHABET if c not in never]
    first = [c for c in rest if c not in first_not]
    return st.tuples(st.sampled_from(first), st.text(alphabet=st.sampled_from(rest), max_size=max_size - 1)).map(
        lambda t: _no_url_credentials(t[0] + t[1])
    )


HOSTILE = hostile()
VALUE = hostile(first_not="-")  # an argv value: never an option
HUB_ID = hostile(first_not="-/.~")  # not a local path (the local runtime only), not an option
LORA_SOURCE = hostile(first_not="-/.~", never="=, \n\t")  # vLLM reads --lora-modules name=path


def word(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    """A name from a first character and the rest (built, not a filtered regex: nothing discarded)."""
    return st.tuples(st.sampled_from(first), st.text(alphabet=st.sampled_from(rest), max_size=max_rest)).map("".join)


LOWER, UPPER, DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
NAMES = st.tuples(word(LOWER, LOWER + DIGITS + "-", 20), st.sampled_from(LOWER + DIGITS)).map("".join)
ADAPTER_NAMES = word(LOWER + UPPER + DIGITS, LOWER + UPPER + DIGITS + "_.-", 8)
# No E and no S: no TOKEN, SECRET, PASSWORD, PASSWD, API_KEY, CREDENTIAL (secrets go by reference)
_ENV = "".join(c for c in UPPER if c not in "ES")
ENV_NAMES = word(_ENV, _ENV + DIGITS + "_", 8)


def distinct(names: list[str], sep: str) -> list[str]:
    """Names made distinct by their index (instead of a unique-list filter that discards)."""
    return [f"{n}{sep}{i}" for i, n in enumerate(names)]


VERSIONS = ["0.6.4", "0.8.5", "0.11.0", "0.32.0", "0.33.0"]

# The branches every property must exercise: each test runs once per shape, and the shape's
# feature is forced on (and checked on the plan), so no run can miss one.
SHAPES = ("single-node", "lws", "autoscaled", "sidecars", "lora", "quantize")
DOCKER_SHAPES = ("single-node", "sidecars", "lora", "quantize")  # LWS and autoscaling are Kubernetes-only


@st.composite
def profiles(draw: Any, shape: str | None = None, kubernetes: bool = False) -> dict[str, Any]:
    """A profile that every check accepts, by construction. ``shape`` forces one branch on;
    ``kubernetes`` adds the scale-out fields (nodes, parallelism, autoscaling, monitoring)."""
    model_id = draw(HUB_ID)
    doc: dict[str, Any] = {
        "name": draw(NAMES),
        "description": draw(HOSTILE),
        "vllm": {"version": draw(st.sampled_from(VERSIONS))},
        "model": {"id": model_id, "revision": draw(VALUE), "max_model_len": draw(st.integers(1, 1 << 20))},
        "server": {
            "env": {k: draw(VALUE) for k in distinct(draw(st.lists(ENV_NAMES, max_size=3)), "_")},
            "port": draw(st.integers(1, 65535)),
            "hf_token": {"env": "HF_TOKEN"},
        },
        "resources": {"gpus": draw(st.integers(0, 8))},
        "deploy": {"docker": {"hf_cache": draw(hostile(first_not="-", never=":\n"))}},
    }
    if draw(st.booleans()):
        doc["prefix_caching"] = draw(st.booleans())
    if draw(st.booleans()):
        doc["speculative"] = {"method": "draft_model", "model": draw(VALUE)}
    if shape == "lora" or draw(st.booleans()):
        # distinct, and never the base model's served name (the model id: it has no "-lora<i>")
        names = distinct(draw(st.lists(ADAPTER_NAMES, min_size=1, max_size=3)), "-lora")
        doc["lora"] = {"adapters": [{"name": n, "source": draw(LORA_SOURCE)} for n in names]}
    if shape == "quantize" or draw(st.booleans()):
        scheme = draw(st.sampled_from(["W4A16", "W4A16_ASYM", "W8A16", "W8A8", "FP8", "FP8_DYNAMIC"]))
        algorithms = ["rtn"] if scheme.startswith("FP8") else ["awq", "gptq", "rtn"]  # FP8 is not calibrated
        # a Hub checkpoint: the job pushes it there with server.hf_token (always set here)
        doc["quantization"] = {
            "checkpoint": draw(HUB_ID),
            "recipe": {"scheme": scheme, "algorithm": draw(st.sampled_from(algorithms)), "gpus": 1},
        }
    cached = shape in ("sidecars",) or draw(st.booleans())
    if cached:
        doc["prompt_cache"] = {"enabled": True, "backend": draw(st.sampled_from(["memory", "redis"]))}
    if kubernetes or shape in ("lws", "autoscaled"):
        _scale_out(draw, doc, shape, cached)
    return doc


def _scale_out(draw: Any, doc: dict[str, Any], shape: str | None, cached: bool) -> None:
    gpus = draw(st.integers(1, 8))
    if shape == "single-node":
        nodes = 1
    elif shape == "lws":
        nodes = draw(st.integers(2, 4))
    else:
        nodes = draw(st.integers(1, 4))
    if nodes == 1:  # tensor x pipeline parallel within one node's GPUs
        tp = draw(st.integers(1, gpus))
        pp = draw(st.integers(1, gpus // tp))
    else:  # across nodes the sizes multiply to every GPU: vLLM's layout, or tensor parallel across nodes
        tp, pp = draw(st.sampled_from([(gpus, nodes), (gpus * nodes, 1)]))
    doc["resources"] = {"gpus": gpus, "nodes": nodes, "tensor_parallel_size": tp, "pipeline_parallel_size": pp}
    # the pods of a multi-node server mount the model cache on several machines
    modes = ["ReadWriteMany"] if nodes > 1 else ["ReadWriteOnce", "ReadWriteMany"]
    k8s: dict[str, Any] = {
        "model_download": draw(st.sampled_from(["server", "init-container", "job"])),
        "pvc": {"access_mode": draw(st.sampled_from(modes))},
        "monitoring": {
            "scrape": draw(st.sampled_from(["annotations", "podmonitor", "servicemonitor", "none"])),
            "dashboard": draw(st.booleans()),
        },
    }
    if draw(st.booleans()):
        k8s["namespace"] = draw(NAMES)
    if shape == "autoscaled" or draw(st.booleans()):
        engine = draw(st.sampled_from(["keda", "hpa"]))
        # the HPA cannot scale to zero nor average a TTFT percentile; KEDA wakes from zero only on
        # the cache proxy's request rate
        low = draw(st.integers(0 if engine == "keda" and cached else 1, 3))
        k8s["autoscaling"] = {
            "engine": engine,
            "min_replicas": low,
            "max_replicas": draw(st.integers(max(low, 1), 10)),
            "metric": draw(st.sampled_from(["queue", "ttft"] if engine == "keda" else ["queue"])),
            "target": draw(st.floats(0.05, 50, allow_nan=False)),
        }
    doc["deploy"]["kubernetes"] = k8s


def assert_shape(plan: Any, doc: dict[str, Any], shape: str) -> None:
    """The forced branch is really taken by the plan (and recorded in hypothesis' statistics)."""
    taken = {
        "single-node": plan.multi_node is None,
        "lws": plan.multi_node is not None,
        "autoscaled": plan.autoscaling is not None,
        "sidecars": bool(plan.sidecars),
        "lora": len(plan.served_names) > 1,
        "quantize": plan.quantize is not None,
    }
    assert taken[shape], (shape, doc)
    for name, hit in taken.items():
        if hit:
            event(f"branch: {name}")


def plan_of(doc: dict[str, Any]) -> Any:
    # Through real YAML text, so YAML specials in values are exercised too.
    located: Located = load_yaml(dump_yaml(doc), "p.yaml")
    assert located.value == doc
    return build_plan(validate_document(located, "p.yaml"))


FAKE_DOCKER = """#!{python}
import json, os, sys
with open(os.environ["ARGV_OUT"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in ("HF_TOKEN",)}}}}) + chr(10))
"""


@pytest.fixture(scope="module")
def fake_docker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bindir = tmp_path_factory.mktemp("bin")
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


def expected_argv(plan: Any, hf_cache: str) -> list[str]:
    words: list[str] = []
    for line in run_lines(plan):
        for w in line:
            words.append(w.text.replace('"$HF_CACHE"', hf_cache) if isinstance(w, Shell) else w)
    return words[1:]  # without "docker"


def settings_for(ci_examples: int) -> settings:
    return settings(max_examples=examples(ci_examples), suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("shape", DOCKER_SHAPES)
@settings_for(50)  # a bash run per example (~0.1-0.5 s on a shared 2-core box)
@given(data=st.data())
def test_bash_runs_exactly_the_planned_docker_argv(shape: str, data: Any, fake_docker: Path, tmp_path: Path) -> None:
    doc = data.draw(profiles(shape))
    plan = plan_of(doc)
    assert_shape(plan, doc, shape)
    script = tmp_path / "run.sh"
    script.write_text(render_docker(plan))
    out = tmp_path / "argv.jsonl"
    out.unlink(missing_ok=True)
    cache = str(tmp_path / "hf cache $x")
    env = {
        "PATH": f"{fake_docker}{os.pathsep}{os.environ['PATH']}",
        "ARGV_OUT": str(out),
        "HF_CACHE": cache,
        "HF_TOKEN": "tok'en $x",
        "VLLMTUNE_REDIS_PASSWORD": "pw",  # the script's own Redis (backend redis) needs one
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    runs = [c for c in calls if c["argv"][:1] == ["run"]]
    assert len(runs) == 1 + len(plan.sidecars)  # vLLM and each sidecar
    [got] = [c for c in runs if c["argv"][2:4] == ["--name", plan.docker_container]]
    assert got["argv"] == expected_argv(plan, cache)
    assert got["env"]["HF_TOKEN"] == "tok'en $x"
    assert got["argv"][-len(plan.args) :] == list(plan.args)


def server_object(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [server] = [
        d
        for d in docs
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
        and d["kind"] in ("Deployment", "LeaderWorkerSet")
    ]
    return server


@pytest.mark.parametrize("shape", DOCKER_SHAPES)
@settings_for(125)  # x 4 shapes: 500 examples
@given(data=st.data())
def test_compose_and_kubernetes_parse_back_to_the_plan(shape: str, data: Any) -> None:
    doc = data.draw(profiles(shape))
    plan = plan_of(doc)
    assert_shape(plan, doc, shape)
    compose = yaml.safe_load(render_compose(plan))
    assert compose == json.loads(json.dumps(compose_dict(plan)))
    service = compose["services"]["vllm"]
    # compose interpolates "$": a literal one is written "$$"
    assert [a.replace("$$", "$") for a in service["command"]] == list(plan.args)
    for k, v in plan.env:
        assert service["environment"][k].replace("$$", "$") == v
    docs = list(yaml.safe_load_all(render_kubernetes(plan)))
    container = as_run(server_object(docs)["spec"]["template"]["spec"]["containers"][0])
    assert container["args"] == list(plan.args)
    assert [e["value"] for e in container.get("env", []) if "value" in e] == [v for _, v in plan.env]


def test_script_refuses_to_run_without_the_secret(fake_docker: Path, tmp_path: Path) -> None:
    plan = plan_of(
        {"name": "x", "vllm": {"version": "0.32.0"}, "model": {"id": "m"}, "server": {"hf_token": {"env": "MY_HF"}}}
    )
    script = tmp_path / "run.sh"
    script.write_text(render_docker(plan))
    env = {
        "PATH": f"{fake_docker}{os.pathsep}{os.environ['PATH']}",
        "ARGV_OUT": str(tmp_path / "a.json"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "MY_HF: set MY_HF in your environment (server.hf_token)" in proc.stderr
    assert not (tmp_path / "a.json").exists()


@pytest.mark.parametrize("shape", SHAPES)
@settings_for(40)  # kubernetes-validate on every object
@given(data=st.data())
def test_scaled_out_kubernetes_parses_back_and_validates(shape: str, data: Any) -> None:
    kv = kubernetes_validate()
    doc = data.draw(profiles(shape, kubernetes=True))
    plan = plan_of(doc)
    assert_shape(plan, doc, shape)
    docs = list(yaml.safe_load_all(render_kubernetes(plan)))
    server = server_object(docs)
    if plan.multi_node:
        tpl = server["spec"]["leaderWorkerTemplate"]
        assert tpl["size"] == plan.multi_node.nodes
        pod = tpl["leaderTemplate"]["spec"]
        assert as_run(pod["containers"][0])["args"] == [*plan.entrypoint, *plan.args]
    else:
        pod = server["spec"]["template"]["spec"]
        assert as_run(pod["containers"][0])["args"] == list(plan.args)
    if plan.k8s_model_download == "init-container" and plan.downloads:
        assert as_run(pod["initContainers"][0])["args"] == list(plan.downloads)
    assert ("replicas" in server["spec"]) == (plan.autoscaling is None)
    for d in docs:
        if not crds.is_custom(d):
            kv.validate(d, "1.30", strict=True)


# One known violation on top of a valid profile: (the doc, the problem's key path, its whole message).
Refusal = tuple[dict[str, Any], str, str]
AUTOSCALING = "deploy.kubernetes.autoscaling"


def _autoscaling(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    doc.setdefault("deploy", {}).setdefault("kubernetes", {})["autoscaling"] = {
        "engine": "keda",
        "min_replicas": 1,
        "max_replicas": 4,
        "metric": "queue",
        **fields,
    }
    return doc


@st.composite
def refusals(draw: Any) -> Refusal:
    doc = draw(profiles())
    doc["deploy"].pop("kubernetes", None)
    kind = draw(
        st.sampled_from(
            ["lora-source", "nodes-parallel", "nodes-rwo", "hpa-zero", "hpa-ttft", "keda-zero", "min-max", "hf-cache"]
        )
    )
    event(f"refusal: {kind}")
    if kind == "lora-source":
        source = draw(LORA_SOURCE) + draw(st.sampled_from(["=", ",", " ", "\t", "\n"])) + draw(LORA_SOURCE)
        doc["lora"] = {"adapters": [{"name": "adapter", "source": source}]}
        return (
            doc,
            "lora.adapters[0].source",
            f"{source!r}: vLLM reads --lora-modules as name=path (a ',' makes it JSON): no '=', ',' or whitespace in the source",
        )
    if kind in ("nodes-parallel", "nodes-rwo"):
        nodes, gpus = draw(st.integers(2, 4)), draw(st.integers(1, 8))
        if kind == "nodes-parallel":
            tp, pp = draw(st.sampled_from([(gpus, nodes + 1), (gpus + 1, nodes), (gpus * nodes + 1, 1)]))
            mode = "ReadWriteMany"
        else:
            tp, pp, mode = gpus, nodes, draw(st.sampled_from(["ReadWriteOnce", "ReadWriteOncePod"]))
        doc["resources"] = {"gpus": gpus, "nodes": nodes, "tensor_parallel_size": tp, "pipeline_parallel_size": pp}
        doc["deploy"]["kubernetes"] = {"pvc": {"access_mode": mode}}
        if kind == "nodes-parallel":
            message = (
                f"{nodes} nodes x {gpus} GPUs = {nodes * gpus} GPUs, but tensor_parallel_size {tp} x "
                f"pipeline_parallel_size {pp} = {tp * pp}: they must be equal; as vLLM recommends, "
                f"set tensor_parallel_size: {gpus} (GPUs per node) and pipeline_parallel_size: {nodes} (nodes)"
            )
        else:
            message = (
                f"the {nodes} pods of a {nodes}-node server mount the model cache on {nodes} machines: "
                f"{mode} attaches to one; set deploy.kubernetes.pvc.access_mode: ReadWriteMany "
                "(and model_download: job to download once)"
            )
        return doc, "resources.nodes", message
    if kind == "hpa-zero":
        return (
            _autoscaling(doc, engine="hpa", min_replicas=0),
            f"{AUTOSCALING}.min_replicas",
            "the HPA cannot scale to zero; use engine: keda or min_replicas >= 1",
        )
    if kind == "hpa-ttft":
        return (
            _autoscaling(doc, engine="hpa", metric="ttft"),
            f"{AUTOSCALING}.metric",
            "a TTFT percentile is a PromQL query, not a per-pod metric the HPA can average; use engine: keda",
        )
    if kind == "keda-zero":
        doc.pop("prompt_cache", None)
        return (
            _autoscaling(doc, min_replicas=0),
            f"{AUTOSCALING}.min_replicas",
            "0 replicas can never wake up: with no pods there are no vLLM metrics to trigger on; enable "
            "prompt_cache (its proxy stays up and its request rate wakes the server) or set min_replicas: 1",
        )
    if kind == "min-max":
        low = draw(st.integers(2, 10))
        high = draw(st.integers(1, low - 1))
        return (
            _autoscaling(doc, min_replicas=low, max_replicas=high),
            f"{AUTOSCALING}.min_replicas",
            f"{low} is above max_replicas ({high})",
        )
    path = draw(hostile(first_not="-", never="\n")) + draw(st.sampled_from([":", "\n"])) + draw(HOSTILE)
    doc["deploy"]["docker"]["hf_cache"] = path
    return (
        doc,
        "deploy.docker.hf_cache",
        f"{path!r}: a volume path cannot contain ':' or a newline (docker reads ':' as the separator of host "
        "and container paths)",
    )


@settings_for(500)
@given(refusal=refusals())
def test_a_profile_broken_one_way_is_refused_for_that_reason(refusal: Refusal) -> None:
    doc, path, message = refusal
    with pytest.raises(ProfileError) as e:
        plan_of(doc)
    assert [(p.file, p.path, p.message) for p in e.value.problems] == [("p.yaml", path, message)]
    assert all(isinstance(p.line, int) for p in e.value.problems)  # located
