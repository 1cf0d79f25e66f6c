"""The command line as a user runs it: a real subprocess, exit codes, stdout/stderr, files."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.cli import Cli
from tests.support.require_real import require_module
from vllmtune import __version__

CACHE = tempfile.mkdtemp(prefix="vllmtune-test-cache-")


run = Cli(timeout=60, env={"HOME": "/home/tester", "VLLMTUNE_CACHE_DIR": CACHE})


def test_init_validate_render_round_trip(tmp_path: Path) -> None:
    init = run("init", "my-llm", "--preset", "all-levers")
    assert init.returncode == 0, init.stderr
    assert init.stdout.startswith("# yaml-language-server: $schema=./profile.schema.json")
    profile = tmp_path / "profile.yaml"
    profile.write_text(init.stdout)
    ok = run("validate", str(profile))
    assert (ok.returncode, ok.stdout) == (0, f"ok: {profile} (my-llm, vLLM 0.32.0, llama-3.1-8b-instruct)\n")
    # the written-out profile renders exactly like the preset it came from, but for its name
    a = run("render", str(profile), "-t", "compose").stdout
    b = run("render", "preset:all-levers", "-t", "compose").stdout
    assert yaml.safe_load(a)["services"]["vllm"]["command"] == yaml.safe_load(b)["services"]["vllm"]["command"]


def test_ctrl_c_exits_130() -> None:
    code = (
        "import vllmtune.plan as p\n"
        "def boom(self): raise KeyboardInterrupt\n"
        "p._Planner.build = boom\n"
        "from vllmtune.cli import main; raise SystemExit(main(['render', 'preset:baseline']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode, r.stderr) == (130, "interrupted\n")


def test_render_targets_and_outputs(tmp_path: Path) -> None:
    r = run("render", "preset:baseline", "-t", "compose", "-o", str(tmp_path / "c.yaml"))
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr == f"wrote {tmp_path / 'c.yaml'}\n"
    text = (tmp_path / "c.yaml").read_text()
    assert "# Start: docker compose -p llama-8b-baseline -f THIS_FILE up -d" in text  # no top-level name: (Compose v1)
    assert sorted(yaml.safe_load(text)) == ["services", "volumes"]
    r = run("render", "preset:baseline", "-t", "k8s", "-o", str(tmp_path / "k8s") + "/")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "k8s").iterdir()) == [
        "deployment-llama-8b-baseline.yaml",
        "persistentvolumeclaim-llama-8b-baseline-hf-cache.yaml",
        "service-llama-8b-baseline.yaml",
    ]
    r = run("render", "preset:baseline", "-o", str(tmp_path / "run.sh"))
    assert os.access(tmp_path / "run.sh", os.X_OK)
    stream = run("render", "preset:baseline", "-t", "kubernetes", "-o", "-")
    assert [d["kind"] for d in yaml.safe_load_all(stream.stdout)] == ["PersistentVolumeClaim", "Deployment", "Service"]


def test_bad_profile_exit_1_no_traceback_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvllm: {version: '0.32.0'}\nmodel: {id: m}\nspeculative:\n  method: eagle\n")
    out = tmp_path / "out.sh"
    r = run("render", str(bad), "-o", str(out))
    assert r.returncode == 1
    assert r.stderr == (
        f"{bad}:4: speculative.model: method eagle needs the draft model: add "
        "speculative.model (e.g. a small model of the same family)\n"
    )
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_unknown_target_and_usage_errors() -> None:
    r = run("render", "preset:baseline", "-t", "helm")
    assert (r.returncode, r.stderr) == (
        1,
        "error: unknown target 'helm'; choose one of: docker, compose, kubernetes, quantize-job, quantize-script, "
        "grafana, vllm-config, production-stack, kserve, llm-d (aliases: k8s)\n",
    )
    r = run("render")
    assert r.returncode == 2 and "Missing argument 'PROFILE'" in r.stderr


def test_validate_many_json_reports_each_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    r = run("validate", "preset:cpu-tiny", str(bad), "--output", "json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert [d["ok"] for d in data] == [True, False]
    assert data[1]["errors"] == [f"{bad}:1: model: required key is missing", f"{bad}:1: vllm: required key is missing"]


def test_explain_json_lists_the_five_levers() -> None:
    r = run("explain", "preset:all-levers", "--output", "json")
    data = json.loads(r.stdout)
    assert [(lv["lever"], lv["state"]) for lv in data["levers"]] == [
        ("1 prompt cache", "on (memory, ttl 24h)"),
        ("2 prefix caching", "on"),
        ("3 batching", "set"),
        ("4 quantization", "awq_marlin"),
        ("5 speculative decoding", "draft_model"),
    ]
    assert data["levers"][1]["flags"] == ["--enable-prefix-caching"]
    text = run("explain", "preset:baseline")
    assert text.returncode == 0 and "--no-enable-prefix-caching" in text.stdout


def test_schema_is_valid_json_schema_and_validates_presets() -> None:
    jsonschema = require_module("jsonschema", "jsonschema (pip install -e '.[test]')")
    schema = json.loads(run("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("baseline", "cpu-tiny"):
        doc = yaml.safe_load((ROOT / "vllmtune" / "presets" / f"{name}.yaml").read_text())
        assert list(validator.iter_errors(doc)) == []
    assert list(validator.iter_errors({"name": "x"}))  # not a rubber stamp
    assert schema["$defs"]["Profile"]["properties"]["prefix_caching"]["description"].startswith("Lever 2")
    undocumented = [
        f"{name}.{prop}"
        for name, d in schema["$defs"].items()
        if not name.startswith("Partial")
        for prop, spec in d.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert undocumented == []
    # a profile that extends another may leave out what its parent gives
    assert list(validator.iter_errors({"extends": "baseline", "name": "x", "model": {"max_model_len": 4096}})) == []
    assert list(validator.iter_errors({"extends": "baseline", "prefix_caching": "maybe"}))


def test_flags_list_and_diff() -> None:
    r = run("flags", "--vllm", "0.33.0", "--grep", "enable-prefix-caching", "--output", "json")
    rows = json.loads(r.stdout)
    assert rows[0]["spellings"] == ["--enable-prefix-caching", "--disable-prefix-caching"]
    d = json.loads(run("flags", "--vllm", "0.8.3", "--diff", "0.8.2", "--output", "json").stdout)
    assert "--speculative-model" in d["removed"]
    assert "--num-speculative-tokens" in d["removed"]
    r = run("flags", "--vllm", "0.99")
    assert (r.returncode, r.stderr) == (
        1,
        "error: unknown vLLM version '0.99': vllmtune knows 0.6.0 .. 0.33.0; did you mean 0.9.2?\n",
    )


def test_help_teaches_and_version() -> None:
    r = run("--help")
    assert "Exit codes: 0 ok, 1 a problem" in r.stdout
    assert "vllmtune init my-llm --preset all-levers" in r.stdout
    assert "vllmtune render profile.yaml -t kubernetes -o k8s/" in run("render", "--help").stdout
    assert run("--version").stdout == "vllmtune 0.1.0\n"


def test_internal_error_exit_3_with_report_hint() -> None:
    # A crash inside vllmtune (simulated) is a bug: exit 3 and ask for a report.
    code = (
        "import vllmtune.plan as p; p._Planner.build = lambda self: 1 / 0; "
        "from vllmtune.cli import main; raise SystemExit(main(['render', 'preset:baseline']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 3
    assert "ZeroDivisionError" in r.stderr
    assert "This is a bug in vllmtune, not in your input: please report it" in r.stderr
    # where: the installed package's [project.urls], never an address nobody set up
    from vllmtune.cli import report_where

    assert r.stderr.endswith(f"please report it with the text above {report_where()}\n")
    assert "github.com/vllmtune/vllmtune" not in r.stderr


def _metadata_with(monkeypatch: pytest.MonkeyPatch, urls: list[str] | None) -> None:
    import email.message
    from importlib import metadata

    def fake(name: str) -> email.message.Message:
        if urls is None:
            raise metadata.PackageNotFoundError(name)
        msg = email.message.Message()
        for u in urls:
            msg["Project-URL"] = u
        return msg

    monkeypatch.setattr(metadata, "metadata", fake)


def test_report_where_reads_project_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmtune.cli import report_where

    _metadata_with(monkeypatch, ["Homepage, https://example.org/vt", "Issues, https://example.org/vt/issues"])
    assert report_where() == "at https://example.org/vt/issues"
    _metadata_with(monkeypatch, ["Source, https://example.org/src"])
    assert report_where() == "at https://example.org/src"
    _metadata_with(monkeypatch, [])
    assert report_where() == "to the maintainers of this installation"
    _metadata_with(monkeypatch, None)  # not installed (run from a checkout)
    assert report_where() == "to the maintainers of this installation"


def test_render_cache_hits_and_notices_edits_in_the_extends_chain(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"VLLMTUNE_CACHE_DIR": str(cache)}
    parent = tmp_path / "base.yaml"
    parent.write_text("extends: baseline\nname: base\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\nprefix_caching: true\n")
    first = run("render", str(child), "-t", "compose", env=env)
    assert first.returncode == 0, first.stderr
    assert len(list((cache / "render").glob("*.json"))) == 1
    assert run("render", str(child), "-t", "compose", env=env).stdout == first.stdout  # from the cache
    assert run("render", str(child), "-t", "compose", "--no-cache", env=env).stdout == first.stdout
    parent.write_text("extends: baseline\nname: base\nmodel:\n  max_model_len: 4096\n")
    edited = run("render", str(child), "-t", "compose", env=env).stdout
    assert "'4096'" in edited and edited != first.stdout
    parent.write_text("name: [\n")  # a broken parent is reported, never papered over by the cache
    broken = run("render", str(child), "-t", "compose", env=env)
    assert broken.returncode == 1 and broken.stderr.startswith(f"{parent}:2: invalid YAML")


def _spellings(cls: type) -> set[tuple[str, ...]]:
    from vllmtune.util.argspec import params

    return {
        tuple(sorted(p.spec.flags + ((p.spec.negative,) if p.spec.negative else ())))
        for p in params(cls)
        if p.spec.flags
    }


def _argparse_spellings(ap: argparse.ArgumentParser) -> set[tuple[str, ...]]:
    by_dest: dict[str, set[str]] = {}
    for action in ap._actions:
        if action.option_strings and action.dest != "help":
            by_dest.setdefault(action.dest, set()).update(action.option_strings)
    return {tuple(sorted(v)) for v in by_dest.values()}


def test_every_command_takes_the_options_its_args_declare() -> None:
    # one declaration per command (vllmtune.util.argspec): the typer options, the fast paths'
    # argparse and `python -m vllmtune.cache` are generated from it, so they cannot drift apart
    import dataclasses

    import typer

    from vllmtune.cache.command import parser as cache_parser
    from vllmtune.cache.config import ServeConfig
    from vllmtune.cli import app
    from vllmtune.cli.fast import FAST, parser
    from vllmtune.util.argspec import params

    root = typer.main.get_command(app)
    checked = 0
    for group, commands in (("", root.commands), ("cache ", root.commands["cache"].commands)):  # type: ignore[attr-defined]
        for name, command in commands.items():
            if name == "cache" and not group:
                continue
            cls = getattr(command.callback, "__wrapped_args__", None)
            assert isinstance(cls, type) and dataclasses.is_dataclass(cls), f"{group}{name}: not generated from an Args"
            options = {p for p in command.params if p.param_type_name == "option"}
            got = {tuple(sorted([*p.opts, *p.secondary_opts])) for p in options} - {("--help",)}
            assert got - {("--output",)} == _spellings(cls) or got == _spellings(cls), f"{group}{name}"
            arguments = [p.name for p in command.params if p.param_type_name == "argument"]
            assert arguments == [p.name for p in params(cls) if not p.spec.flags], f"{group}{name}"
            declared = {p.name: None if p.required else p.default for p in params(cls) if p.spec.flags}
            defaults = {p.name: getattr(p.default, "value", p.default) for p in options if p.name in declared}
            assert defaults == declared, f"{group}{name}"
            required = {p.name for p in options if p.required}
            assert required == {p.name for p in params(cls) if p.spec.flags and p.required}, f"{group}{name}"
            checked += 1
    assert checked == 22
    for name in FAST:
        ap, cls = parser(name)
        extra = {("--output",)} if name == "validate" else set()
        assert _argparse_spellings(ap) == _spellings(cls) | extra, name
    assert _argparse_spellings(cache_parser()) == _spellings(ServeConfig) | {("--stats",)}
    # and a usage error on the fast path still gets typer's message
    r = run("render", "preset:baseline", "--bogus")
    assert r.returncode == 2 and "No such option: --bogus" in r.stderr
    r = run("validate", "preset:baseline", "--output", "yaml")
    assert r.returncode == 2 and "Invalid value for '--output'" in r.stderr


def test_presets_lists_name_levers_and_description() -> None:
    r = run("presets")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "LEVERS", "ON", "DESCRIPTION"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert sorted(by_name) == ["all-levers", "awq", "baseline", "cpu-tiny", "prefix-cache", "speculative"]
    assert by_name["baseline"].split(None, 2)[1:] == [
        "-",
        "Llama-3.1-8B-Instruct, BF16, one GPU, every lever off (the row everything is compared to).",
    ]
    assert "prompt-cache,prefix-caching,batching,quantization,speculative-decoding " in by_name["all-levers"]
    data = json.loads(run("presets", "--output", "json").stdout)
    assert data[3] == {
        "name": "cpu-tiny",
        "description": "Tiny local Llama on vLLM's CPU build (tests, laptops, CI).",
        "levers_on": ["prefix-caching"],
        "use": "vllmtune init NAME --preset cpu-tiny, or preset:cpu-tiny wherever a profile goes",
    }


def test_explain_keeps_the_name_as_written(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("extends: cpu-tiny\nname: my-llm\n")
    r = run("explain", str(p), env={"COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "my-llm: vLLM 0.32.0, tiny-llama"


def test_up_phase_lines_name_the_server_not_the_argument(tmp_path: Path) -> None:
    # a stand-in `vllm serve` that logs vLLM's weights line and dies: the phases go by, named
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    fake = tmp_path / "vllm"
    fake.write_text('#!/bin/sh\necho "INFO Loading weights took 0.1 GB"\nsleep 1\nexit 1\n')
    fake.chmod(0o755)
    p = tmp_path / "p.yaml"
    p.write_text(f"extends: cpu-tiny\nname: vt-phase\nmodel:\n  id: {tmp_path}/model\n")
    env = {"VLLMTUNE_VLLM": str(fake), "VLLMTUNE_STATE_DIR": str(tmp_path / "state")}
    r = run("up", str(p), "--runtime", "local", "-d", "--timeout", "20", env=env)
    assert r.returncode == 1
    phases = [line.split(" (", 1)[0] for line in r.stderr.splitlines() if line.endswith(" s)")]
    assert phases == ["vt-phase: starting", "vt-phase: loading weights"]


def test_the_console_entry_renders_without_typer_and_maps_errors_like_the_cli() -> None:
    # vllmtune.entry (the console script, `python -m vllmtune`): render's fast path never imports
    # typer/click (nor a template engine); everything else is the typer app's, with one mapping.
    code = (
        "import sys; from vllmtune.entry import main; rc = main(sys.argv[1:]); "
        "print(sorted(m for m in ('typer', 'click', 'jinja2') if m in sys.modules), file=sys.stderr); "
        "raise SystemExit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code, "render", "preset:baseline"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("#!/usr/bin/env bash\n")
    assert r.stderr == "[]\n"
    r = subprocess.run([sys.executable, "-c", code, "validate", "preset:baseline"], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "[]\n")  # validate has the same fast path
    r = subprocess.run([sys.executable, "-c", code, "render", "preset:nosuch"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0].startswith("preset:nosuch: extends: 'nosuch' not found")
    r = subprocess.run([sys.executable, "-m", "vllmtune", "--version"], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, f"vllmtune {__version__}\n")
