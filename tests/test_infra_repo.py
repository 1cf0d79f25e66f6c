"""Profiles in infra repos: pre-commit hooks (run by pre-commit itself), diff, render-check,
drift, the published schema (check-jsonschema) and shell completion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, require
from vllmtune.plan import load_plan
from vllmtune.render.k8s import render_kubernetes


def vt(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vllmtune.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "VLLMTUNE_NO_CACHE": "1", **(env or {})},
    )


def test_diff_in_lever_words_and_exit_codes(tmp_path: Path) -> None:
    r = vt("diff", "preset:baseline", "preset:prefix-cache", "-t", "compose")
    assert r.returncode == 1
    assert r.stdout.splitlines()[:2] == ["* prompt cache: off -> on (memory, ttl 24h)", "* prefix caching: off -> on"]
    assert "-    - --no-enable-prefix-caching\n+    - --enable-prefix-caching\n" in r.stdout
    same = vt("diff", "preset:baseline", "preset:baseline")
    assert (same.returncode, same.stdout) == (0, "no differences\n")
    data = json.loads(vt("diff", "preset:awq", "preset:speculative", "--output", "json").stdout)
    assert data["changes"] == ["speculative decoding: off -> draft_model"]


def test_diff_against_hand_edited_files(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(vt("render", "preset:baseline", "-t", "compose").stdout)
    assert vt("diff", "preset:baseline", "--against", str(compose)).returncode == 0
    compose.write_text(compose.read_text().replace("'8192'", "'4096'"))
    r = vt("diff", "preset:baseline", "--against", str(compose))
    assert r.returncode == 1
    assert "-    - '4096'\n+    - '8192'\n" in r.stdout
    k8s = tmp_path / "k8s"
    assert vt("render", "preset:baseline", "-t", "k8s", "-o", f"{k8s}/").returncode == 0
    assert vt("diff", "preset:baseline", "--against", str(k8s)).returncode == 0
    dep = next(k8s.glob("deployment-*.yaml"))
    dep.write_text(dep.read_text().replace("replicas: 1", "replicas: 3"))
    r = vt("diff", "preset:baseline", "--against", str(k8s))
    assert r.returncode == 1 and "-  replicas: 3\n+  replicas: 1\n" in r.stdout
    r = vt("diff", "preset:baseline")
    assert r.returncode == 2 and "give a second profile or --against FILE" in r.stderr


def _git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "infra"
    (repo / "profiles").mkdir(parents=True)
    (repo / "profiles" / "llm.yaml").write_text("extends: baseline\nname: llm\n")
    (repo / ".vllmtune-render.yaml").write_text(
        "- {profile: profiles/llm.yaml, target: compose, output: deploy/compose.yaml}\n"
        "- {profile: profiles/llm.yaml, target: kubernetes, output: deploy/k8s/}\n"
    )
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "t@example.com"],
        ["git", "config", "user.name", "t"],
    ):
        subprocess.run(cmd, cwd=repo, check=True)
    return repo


def test_render_check_finds_and_fixes_stale_files(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    r = vt("render-check", cwd=repo)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "deploy/compose.yaml: stale (profiles/llm.yaml, compose)",
        "deploy/k8s/: stale (profiles/llm.yaml, kubernetes)",
    ]
    assert vt("render-check", "--fix", cwd=repo).returncode == 0
    assert vt("render-check", cwd=repo).stdout.endswith("deploy/k8s/: up to date (profiles/llm.yaml, kubernetes)\n")
    (repo / "profiles" / "llm.yaml").write_text("extends: baseline\nname: llm\nprefix_caching: true\n")
    assert vt("render-check", cwd=repo).returncode == 1


@pytest.mark.slow
def test_pre_commit_runs_both_hooks(tmp_path: Path) -> None:
    require(shutil.which("pre-commit") is not None, "pre-commit")
    repo = _git_repo(tmp_path)
    home = os.environ.get("VLLMTUNE_REAL_HOME", str(Path.home()))
    env = {**os.environ, "PRE_COMMIT_HOME": f"{home}/.cache/vllmtune-pre-commit", "HOME": home}

    def try_repo(hook: str, *files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pre-commit", "try-repo", str(ROOT), hook, "--files", *files]
            if files
            else ["pre-commit", "try-repo", str(ROOT), hook, "--all-files"],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )

    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    ok = try_repo("vllmtune-validate", "profiles/llm.yaml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "vllmtune validate" in ok.stdout and "Passed" in ok.stdout
    (repo / "profiles" / "bad.yaml").write_text("extends: baseline\nname: bad\nprefix_cashing: true\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    bad = try_repo("vllmtune-validate", "profiles/bad.yaml")
    assert bad.returncode == 1
    assert "profiles/bad.yaml:3: prefix_cashing: unknown key; did you mean 'prefix_caching'?" in bad.stdout
    stale = try_repo("vllmtune-render-check")
    assert stale.returncode == 1 and "rendered files are stale" in stale.stdout
    assert vt("render-check", "--fix", cwd=repo).returncode == 0
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    fresh = try_repo("vllmtune-render-check")
    assert fresh.returncode == 0, fresh.stdout


def test_presets_validate_against_the_published_schema(tmp_path: Path) -> None:
    require(shutil.which("check-jsonschema") is not None, "check-jsonschema")
    schema = tmp_path / "profile.schema.json"
    schema.write_text(vt("schema").stdout)
    files = sorted(str(p) for p in (ROOT / "vllmtune" / "presets").glob("*.yaml"))
    files += sorted(str(p) for p in (ROOT / "profiles" / "examples").glob("*.yaml"))
    r = subprocess.run(["check-jsonschema", "--schemafile", str(schema), *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvllm: {version: '0.32.0'}\nmodel: {id: m}\nresources: {gpus: many}\n")
    r = subprocess.run(["check-jsonschema", "--schemafile", str(schema), str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "$.resources.gpus" in r.stdout


def test_drift_against_a_kubernetes_dump(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(render_kubernetes(load_plan("preset:baseline"))))
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump(docs[1]))
    r = vt("drift", "preset:baseline", "--k8s", str(dump))
    assert (r.returncode, r.stdout) == (0, f"Deployment llama-8b-baseline in {dump}: no drift\n")
    c = docs[1]["spec"]["template"]["spec"]["containers"][0]
    c["image"] = "vllm/vllm-openai:v0.31.0"
    c["args"] = [a for a in c["args"] if a != "--no-enable-prefix-caching"]
    c["resources"]["limits"]["nvidia.com/gpu"] = "2"
    docs[1]["spec"]["replicas"] = 2
    dump.write_text(yaml.safe_dump({"kind": "List", "items": [docs[1]]}))
    r = vt("drift", "preset:baseline", "--k8s", str(dump), "--output", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["drift"] == [
        "image: running vllm/vllm-openai:v0.31.0, profile vllm/vllm-openai:v0.32.0",
        "enable_prefix_caching: running (not set), profile off (--no-enable-prefix-caching)",
        "GPUs: running 2, profile 1",
        "replicas: running 2, profile 1",
    ]
    # Nothing running (an unreachable Docker daemon is an error of its own: tests/runtime/test_unreachable_and_names.py)
    r = vt(
        "drift",
        "preset:cpu-tiny",
        "--runtime",
        "local",
        env={"VLLMTUNE_STATE_DIR": str(tmp_path / "empty"), "DOCKER_HOST": "unix:///nonexistent"},
    )
    assert (r.returncode, r.stderr) == (
        1,
        "error: no running server for tiny-cpu; start it (vllmtune up) or compare a manifest dump (--k8s FILE)\n",
    )


def test_shell_completion() -> None:
    env = {**os.environ, "_VLLMTUNE_COMPLETE": "complete_bash", "COMP_WORDS": "vllmtune ren", "COMP_CWORD": "1"}
    r = subprocess.run([sys.executable, "-m", "vllmtune.cli"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.stdout.split() == ["render", "render-check"]


@pytest.mark.parametrize("preset", ["prefix-cache", "all-levers"])
def test_diff_against_and_render_check_agree_on_a_fresh_render(tmp_path: Path, preset: str) -> None:
    # one comparison for both: a fresh `render -o k8s/` is no difference to diff and up to date to render-check
    (tmp_path / "p.yaml").write_text(f"extends: {preset}\nname: llm\n")
    (tmp_path / ".vllmtune-render.yaml").write_text("- {profile: p.yaml, target: kubernetes, output: k8s/}\n")
    assert vt("render", "p.yaml", "-t", "k8s", "-o", "k8s/", cwd=tmp_path).returncode == 0
    r = vt("diff", "p.yaml", "--against", "k8s/", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "no differences\n")
    r = vt("render-check", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "k8s/: up to date (p.yaml, kubernetes)\n")
    # an edit: both see it, and the diff names the file it is in
    svc = tmp_path / "k8s" / "service-llm.yaml"
    svc.write_text(svc.read_text().replace("port: 8000", "port: 8001", 1))
    r = vt("diff", "p.yaml", "--against", "k8s/", cwd=tmp_path)
    assert r.returncode == 1
    assert f"--- k8s/{svc.name} (on disk)\n+++ k8s/{svc.name} (rendered from p.yaml)\n" in r.stdout
    assert "-    port: 8001\n+    port: 8000\n" in r.stdout
    r = vt("render-check", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "k8s/: stale (p.yaml, kubernetes)\n")
    (tmp_path / "k8s" / svc.name).unlink()  # a missing file is a difference too
    r = vt("diff", "p.yaml", "--against", "k8s/", cwd=tmp_path)
    assert r.returncode == 1 and f"--- k8s/{svc.name} (missing)\n" in r.stdout


def test_diff_says_each_changed_flag_in_words(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "extends: cpu-tiny\nname: a\nbatching:\n  max_num_batched_tokens: 1024\n  max_num_seqs: 8\n"
    )
    (tmp_path / "b.yaml").write_text(
        "extends: cpu-tiny\nname: a\nbatching:\n  max_num_batched_tokens: 512\nserver:\n  extra_args: [--seed, '3']\n"
    )
    r = vt("diff", "a.yaml", "b.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines()[:3] == [
        "* max_num_batched_tokens: 1024 -> 512 (--max-num-batched-tokens)",
        "* max_num_seqs: 8 -> (not set) (--max-num-seqs)",
        "* seed: (not set) -> 3 (--seed)",
    ]
    assert r.stdout.splitlines()[3].startswith("--- a.yaml (docker)")
