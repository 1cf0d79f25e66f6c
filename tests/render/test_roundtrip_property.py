"""Property tests: any valid profile, hostile strings included, renders a script that bash
itself turns back into the planned docker argv, and YAML that parses back to the plan."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.render.k8s_expand import as_run
from tests.support.crds import kubernetes_validate
from vllmtune.errors import ProfileError
from vllmtune.plan import build_plan
from vllmtune.profile.loader import validate_document
from vllmtune.profile.yamlio import Located, dump_yaml, load_yaml
from vllmtune.render.compose import compose_dict, render_compose
from vllmtune.render.docker import Shell, render_docker, run_lines
from vllmtune.render.kubernetes import render_kubernetes

HOSTILE = st.text(
    alphabet=st.sampled_from(list("aZ9 -_./:'\"$`\\!#&;|<>(){}[]*?~%@^,=\n\t") + ["é", "—", "🙂"]),
    min_size=1,
    max_size=24,
)
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
ADAPTER_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
ENV_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not any(w in n for w in ("TOKEN", "SECRET", "KEY", "PASSW", "CREDENTIAL"))
)


@st.composite
def profiles(draw: Any) -> dict[str, Any]:
    model_id = draw(
        HOSTILE.filter(lambda s: not s.startswith(("-", "/", "./", "../", "~/", "~")) and s not in (".", ".."))
    )
    doc: dict[str, Any] = {
        "name": draw(NAMES),
        "description": draw(HOSTILE),
        "vllm": {"version": draw(st.sampled_from(["0.6.4", "0.8.5", "0.11.0", "0.32.0", "0.33.0"]))},
        "model": {
            "id": model_id,
            "revision": draw(HOSTILE.filter(lambda s: s[0] != "-")),
            "max_model_len": draw(st.integers(1, 1 << 20)),
        },
        "server": {
            "env": draw(st.dictionaries(ENV_NAMES, HOSTILE.filter(lambda s: s[0] != "-"), max_size=3)),
            "port": draw(st.integers(1, 65535)),
            "hf_token": {"env": "HF_TOKEN"},
        },
        "resources": {"gpus": draw(st.integers(0, 8))},
        "deploy": {
            "docker": {"hf_cache": draw(HOSTILE.filter(lambda s: s[0] != "-" and ":" not in s and "\n" not in s))}
        },
    }
    if draw(st.booleans()):
        doc["prefix_caching"] = draw(st.booleans())
    if draw(st.booleans()):
        doc["speculative"] = {"method": "draft_model", "model": draw(HOSTILE.filter(lambda s: s[0] != "-"))}
    if draw(st.booleans()):
        names = draw(st.lists(ADAPTER_NAMES, min_size=1, max_size=3, unique=True))
        sources = HOSTILE.filter(lambda s: not s.startswith(("-", "/", "./", "../", "~")) and s not in (".", ".."))
        doc["lora"] = {"adapters": [{"name": n, "source": draw(sources)} for n in names]}
    return doc


@st.composite
def scaled_profiles(draw: Any) -> dict[str, Any]:
    """A profile using the scale-out fields, consistent or not (inconsistent ones must be
    refused with a ProfileError, never crash)."""
    doc = draw(profiles())
    gpus, nodes = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    tp = draw(st.sampled_from([gpus, gpus * nodes, 1]))
    doc["resources"] = {"gpus": gpus, "nodes": nodes, "tensor_parallel_size": tp, "pipeline_parallel_size": nodes}
    k8s: dict[str, Any] = {
        "model_download": draw(st.sampled_from(["server", "init-container", "job"])),
        "pvc": {"access_mode": draw(st.sampled_from(["ReadWriteOnce", "ReadWriteMany"]))},
        "monitoring": {
            "scrape": draw(st.sampled_from(["annotations", "podmonitor", "servicemonitor", "none"])),
            "dashboard": draw(st.booleans()),
        },
    }
    if draw(st.booleans()):
        k8s["namespace"] = draw(NAMES)
    if draw(st.booleans()):
        low = draw(st.integers(0, 3))
        k8s["autoscaling"] = {
            "engine": draw(st.sampled_from(["keda", "hpa"])),
            "min_replicas": low,
            "max_replicas": draw(st.integers(max(low, 1), 10)),
            "metric": draw(st.sampled_from(["queue", "ttft"])),
            "target": draw(st.floats(0.05, 50, allow_nan=False)),
        }
    doc["deploy"]["kubernetes"] = k8s
    if draw(st.booleans()):
        doc["prompt_cache"] = {"enabled": True, "backend": draw(st.sampled_from(["memory", "redis"]))}
    return doc


def plan_of(doc: dict[str, Any]) -> Any:
    # Through real YAML text, so YAML specials in values are exercised too.
    located: Located = load_yaml(dump_yaml(doc), "p.yaml")
    assert located.value == doc
    return build_plan(validate_document(located, "p.yaml"))


FAKE_DOCKER = """#!{python}
import json, os, sys
with open(os.environ["ARGV_OUT"], "w") as fh:
    json.dump({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in ("HF_TOKEN",)}}}}, fh)
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


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(doc=profiles())
def test_bash_runs_exactly_the_planned_docker_argv(doc: dict[str, Any], fake_docker: Path, tmp_path: Path) -> None:
    try:
        plan = plan_of(doc)
    except ProfileError:
        return  # invalid combinations are covered by the error tests
    script = tmp_path / "run.sh"
    script.write_text(render_docker(plan))
    out = tmp_path / "argv.json"
    cache = str(tmp_path / "hf cache $x")
    env = {
        "PATH": f"{fake_docker}{os.pathsep}{os.environ['PATH']}",
        "ARGV_OUT": str(out),
        "HF_CACHE": cache,
        "HF_TOKEN": "tok'en $x",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    assert got["argv"] == expected_argv(plan, cache)
    assert got["env"]["HF_TOKEN"] == "tok'en $x"
    assert got["argv"][-len(plan.args) :] == list(plan.args)


@SETTINGS
@given(doc=profiles())
def test_compose_and_kubernetes_parse_back_to_the_plan(doc: dict[str, Any]) -> None:
    try:
        plan = plan_of(doc)
    except ProfileError:
        return
    compose = yaml.safe_load(render_compose(plan))
    assert compose == json.loads(json.dumps(compose_dict(plan)))
    service = compose["services"]["vllm"]
    # compose interpolates "$": a literal one is written "$$"
    assert [a.replace("$$", "$") for a in service["command"]] == list(plan.args)
    for k, v in plan.env:
        assert service["environment"][k].replace("$$", "$") == v
    docs = list(yaml.safe_load_all(render_kubernetes(plan)))
    container = docs[1]["spec"]["template"]["spec"]["containers"][0]
    container = as_run(container)
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


@SETTINGS
@given(doc=scaled_profiles())
def test_scaled_out_kubernetes_parses_back_and_validates(doc: dict[str, Any]) -> None:
    kv = kubernetes_validate()
    try:
        plan = plan_of(doc)
    except ProfileError:
        return
    docs = list(yaml.safe_load_all(render_kubernetes(plan)))
    server = next(
        d
        for d in docs
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
        and d["kind"] in ("Deployment", "LeaderWorkerSet")
    )
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
        if "." not in d["apiVersion"].split("/")[0]:
            kv.validate(d, "1.30", strict=True)
