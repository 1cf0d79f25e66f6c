"""The quantization job targets: ``-t quantize-job`` (ConfigMap + Job, validated against
Kubernetes' schemas) and ``-t quantize-script`` (bash run with a fake ``docker`` that records
the argv it was given: what bash really passes, not what we meant to write)."""

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

from tests.conftest import ROOT
from tests.support.cli import vt
from tests.support.crds import kubernetes_validate
from vllmtune.errors import RenderError
from vllmtune.plan import DeploymentPlan, build_plan, load_plan
from vllmtune.profile.loader import validate_document
from vllmtune.profile.yamlio import dump_yaml, load_yaml
from vllmtune.render import render
from vllmtune.render.quantize import (
    JOB_SHELL,
    job_script,
    render_quantize_job,
    render_quantize_script,
    settings,
)

K8S_VERSION = "1.30"
EXAMPLE = "profiles/examples/quantize-w4a16.yaml"
JOB_SHELL_TEXT = (
    'python3 -m pip install --no-cache-dir "$VLLMTUNE_LLMC_REQUIREMENT" && exec python3 /vllmtune/quantize_job.py "$@"'
)
LABELS = [
    "app.kubernetes.io/name=vllm",
    "app.kubernetes.io/instance=llama-8b-w4a16",
    "app.kubernetes.io/component=quantize",
    "app.kubernetes.io/managed-by=vllmtune",
    "vllmtune.io/profile=llama-8b-w4a16",
]

# Records its argv, and copies the job script it was asked to mount (the bash script deletes
# its temporary directory on exit).
FAKE_DOCKER = """#!{python}
import json, os, shutil, sys
out = os.environ["ARGV_OUT"]
argv = sys.argv[1:]
for i, a in enumerate(argv):
    if a == "--volume" and argv[i + 1].endswith(":/vllmtune:ro"):
        shutil.copy(os.path.join(argv[i + 1].split(":")[0], "quantize_job.py"), out + ".job.py")
with open(out, "w") as fh:
    json.dump({{"argv": argv, "env": {{k: os.environ.get(k) for k in ("HF_TOKEN",)}}}}, fh)
"""


@pytest.fixture(scope="module")
def fake_docker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bindir = tmp_path_factory.mktemp("bin")
    exe = bindir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


def run_script(
    text: str, fake_docker: Path, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    script = tmp_path / "quantize.sh"
    script.write_text(text)
    out = tmp_path / "argv.json"
    proc = subprocess.run(
        ["bash", str(script)],
        env={
            "PATH": f"{fake_docker}{os.pathsep}{os.environ['PATH']}",
            "ARGV_OUT": str(out),
            "HOME": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc, out


def example_plan(monkeypatch: pytest.MonkeyPatch) -> DeploymentPlan:
    monkeypatch.chdir(ROOT)
    return load_plan(EXAMPLE)


def plan_of(doc: dict[str, Any], where: Path) -> DeploymentPlan:
    path = where / "p.yaml"
    path.write_text(dump_yaml(doc))
    return build_plan(validate_document(load_yaml(path.read_text(), str(path)), str(path)))


def local_doc(tmp_path: Path, dataset: str = "calib data.jsonl") -> dict[str, Any]:
    return {
        "name": "tiny-q",
        "vllm": {"version": "0.32.0"},
        "model": {"id": str(tmp_path / "src model")},
        "quantization": {
            "checkpoint": "./out/tiny-W8A8",
            "recipe": {
                "scheme": "W8A8",
                "algorithm": "gptq",
                "calibration_dataset": f"./{dataset}",
                "calibration_samples": 16,
                "max_seq_length": 64,
                "gpus": 0,
                "llmcompressor": "llmcompressor==0.14.0.1",
            },
        },
        "resources": {"gpus": 0},
        "server": {"hf_token": {"env": "MY_TOKEN"}},
        "deploy": {"kubernetes": {"namespace": "ml", "node_selector": {"pool": "cpu"}}},
    }


# ---- golden files and schemas ------------------------------------------------------------


def test_example_job_matches_golden(golden, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plan = example_plan(monkeypatch)
    text = render(plan, "quantize-job")
    assert text == render(load_plan(EXAMPLE), "quantize-job")  # deterministic
    golden("quantize-w4a16.quantize-job.yaml", text)


def test_example_script_matches_golden(golden, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plan = example_plan(monkeypatch)
    text = render(plan, "quantize-script")
    assert text.startswith("#!/usr/bin/env bash\n") and text.endswith("\n")
    golden("quantize-w4a16.quantize-script.sh", text)


def test_job_and_configmap_validate_strictly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for plan in (example_plan(monkeypatch), plan_of(local_doc(tmp_path), tmp_path)):
        docs = list(yaml.safe_load_all(render_quantize_job(plan)))
        assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "ConfigMap", "Job"]
        for doc in docs:
            kubernetes_validate().validate(doc, K8S_VERSION, strict=True)
    docs[2]["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1  # the validator can say no
    with pytest.raises(kubernetes_validate().ValidationError):
        kubernetes_validate().validate(docs[2], K8S_VERSION, strict=True)


def test_job_carries_script_settings_and_secret_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = example_plan(monkeypatch)
    _, cm, job = yaml.safe_load_all(render_quantize_job(plan))
    assert cm["data"] == {"quantize_job.py": job_script()}
    assert job_script() == (ROOT / "vllmtune" / "quantize_job.py").read_text()
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"] == ["bash", "-c", JOB_SHELL_TEXT, "quantize"] == ["bash", "-c", JOB_SHELL, "quantize"]
    assert [json.loads(a) for a in c["args"]] == [
        {
            "algorithm": "awq",
            "dataset": "HuggingFaceH4/ultrachat_200k",
            "ignore": ["lm_head"],
            "max_seq_length": 512,
            "output": "my-org/Llama-3.1-8B-Instruct-W4A16-AWQ",
            "push_to_hub": True,
            "revision": None,
            "samples": 256,
            "scheme": "W4A16",
            "source": "meta-llama/Llama-3.1-8B-Instruct",
            "split": "train_sft",
        }
    ]
    assert c["env"] == [
        {"name": "VLLMTUNE_LLMC_REQUIREMENT", "value": "llmcompressor==0.14.0.1"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llama-8b-w4a16-secrets", "key": "hf-token"}}},
    ]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 1
    # the server's cache claim, so the server does not download the model again
    kube = list(yaml.safe_load_all(render(plan, "kubernetes")))
    claim = next(d["metadata"]["name"] for d in kube if d["kind"] == "PersistentVolumeClaim")
    assert {"name": "hf-cache", "persistentVolumeClaim": {"claimName": claim}} in pod["volumes"]
    assert {"name": "job-script", "configMap": {"name": "llama-8b-w4a16-quantize-script"}} in pod["volumes"]
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "quantize"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    notes = job["metadata"]["annotations"]
    assert notes["vllmtune.io/estimate-memory"].startswith("host RAM >= 16.1 GB (the 16-bit weights); GPU: one decoder")
    assert notes["vllmtune.io/estimate-runtime"] == (
        "~30 min (AWQ, weights only) for Llama-3-8B on one A100 per llm-compressor docs/guides/runtime.md; "
        "this model is 1.00x its size; not measured on GPU here"
    )


def test_local_paths_become_host_mounts(tmp_path: Path) -> None:
    plan = plan_of(local_doc(tmp_path), tmp_path)
    _, _, job = yaml.safe_load_all(render_quantize_job(plan))
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    assert host == {
        "source": {"path": str(tmp_path / "src model"), "type": "Directory"},
        "output": {"path": str(tmp_path / "out" / "tiny-W8A8"), "type": "DirectoryOrCreate"},
        "calibration": {"path": str(tmp_path / "calib data.jsonl"), "type": "File"},
    }
    mounts = {m["name"]: (m["mountPath"], m.get("readOnly")) for m in c["volumeMounts"]}
    assert mounts["source"] == ("/work/source", True)
    assert mounts["output"] == ("/work/output", False)
    assert mounts["calibration"] == ("/work/calibration/calib data.jsonl", True)
    s = json.loads(c["args"][0])
    assert (s["source"], s["output"], s["push_to_hub"], s["dataset"]) == (
        "/work/source",
        "/work/output",
        False,
        "/work/calibration/calib data.jsonl",
    )
    # everything is local: no token, no GPU; the node selector stays, with the servers'
    # tolerations (the nodes it selects may be tainted GPU nodes)
    assert [e["name"] for e in c["env"]] == ["VLLMTUNE_LLMC_REQUIREMENT"]
    assert "resources" not in c
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"pool": "cpu"}
    assert job["metadata"]["namespace"] == "ml"
    assert "CPU only" in job["metadata"]["annotations"]["vllmtune.io/estimate-memory"]


def test_no_recipe_is_a_clear_error() -> None:
    plan = load_plan("preset:baseline")
    message = (
        "preset:baseline: quantization.recipe: not set; add quantization.recipe (scheme, algorithm, calibration) "
        "and quantization.checkpoint to render a quantization job"
    )
    for target in ("quantize-job", "quantize-script"):
        with pytest.raises(RenderError) as err:
            render(plan, target)
        assert str(err.value) == message


def test_cli_renders_both_targets(tmp_path: Path) -> None:
    for target in ("quantize-job", "quantize-script"):
        r = vt("render", EXAMPLE, "-t", target, "--no-cache", timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == render(load_plan(str(ROOT / EXAMPLE)), target)
    r = vt("render", "preset:baseline", "-t", "quantize-job", "--no-cache", timeout=60)
    assert (r.returncode, r.stderr) == (
        1,
        "error: preset:baseline: quantization.recipe: not set; add quantization.recipe (scheme, algorithm, "
        "calibration) and quantization.checkpoint to render a quantization job\n",
    )


# ---- the bash script, run ---------------------------------------------------------------


def test_script_runs_exactly_this_docker_argv(
    monkeypatch: pytest.MonkeyPatch, fake_docker: Path, tmp_path: Path
) -> None:
    plan = example_plan(monkeypatch)
    cache = str(tmp_path / "hf cache $x")
    proc, out = run_script(
        render_quantize_script(plan), fake_docker, tmp_path, {"HF_CACHE": cache, "HF_TOKEN": "tok'en $x"}
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    argv = got["argv"]
    job_dir = argv[argv.index("--volume", argv.index("--volume") + 1) + 1].removesuffix(":/vllmtune:ro")
    assert argv == [
        "run", "--rm",
        "--name", "llama-8b-w4a16-quantize",
        *(w for label in LABELS for w in ("--label", label)),
        "--label", f"vllmtune.io/profile-hash={plan.profile_hash}",
        "--label", "vllmtune.io/vllm-version=0.32.0",
        "--label", f"vllmtune.io/version={dict(plan.labels)['vllmtune.io/version']}",
        "--gpus", "1",
        "--shm-size", "2g",
        "--volume", f"{cache}:/root/.cache/huggingface",
        "--volume", f"{job_dir}:/vllmtune:ro",
        "--env", "VLLMTUNE_LLMC_REQUIREMENT=llmcompressor==0.14.0.1",
        "--env", "HF_TOKEN",
        "--entrypoint", "bash",
        "vllm/vllm-openai:v0.32.0",
        "-c", JOB_SHELL_TEXT, "quantize",
        json.dumps(settings(plan.quantize), sort_keys=True),  # type: ignore[arg-type]
    ]  # fmt: skip
    assert got["env"]["HF_TOKEN"] == "tok'en $x"  # passed by name, from the environment
    assert "tok'en" not in render_quantize_script(plan)
    assert (tmp_path / "argv.json.job.py").read_text() == job_script()  # the heredoc is byte-exact
    assert not Path(job_dir).exists()  # removed on exit
    assert Path(cache).is_dir()


def test_script_refuses_to_run_without_the_token(
    monkeypatch: pytest.MonkeyPatch, fake_docker: Path, tmp_path: Path
) -> None:
    proc, out = run_script(render_quantize_script(example_plan(monkeypatch)), fake_docker, tmp_path, {})
    assert proc.returncode != 0
    assert "HF_TOKEN: set HF_TOKEN in your environment (server.hf_token)" in proc.stderr
    assert not out.exists()


def test_hostile_local_paths_reach_docker_intact(fake_docker: Path, tmp_path: Path) -> None:
    """Quotes, $(...), backticks and spaces in paths: each stays one argv word, nothing runs."""
    base = tmp_path / "we'ird $(touch PWNED) `x`"
    base.mkdir()
    doc = local_doc(base, dataset="data; rm -rf ~.jsonl")
    plan = plan_of(doc, base)
    proc, out = run_script(render_quantize_script(plan), fake_docker, tmp_path, {"HF_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    argv = json.loads(out.read_text())["argv"]
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"][2:]
    assert vols == [
        f"{base / 'src model'}:/work/source:ro",
        f"{base / 'out' / 'tiny-W8A8'}:/work/output",
        f"{base / 'data; rm -rf ~.jsonl'}:/work/calibration/data; rm -rf ~.jsonl:ro",
    ]
    assert "--gpus" not in argv and "--env" in argv and "HF_TOKEN" not in argv  # all local: no token
    assert json.loads(argv[-1]) == settings(plan.quantize)  # type: ignore[arg-type]
    assert (base / "out" / "tiny-W8A8").is_dir()  # created by the script, not by the daemon
    assert not list(tmp_path.rglob("PWNED"))
