"""Every string slot of the profile schema x every hostile value x every render target: the
profile is refused with located errors, or each target's consumer gets exactly the value.

"Exactly" is decided without the renderers' helpers. Each output is read the way its consumer
reads it (bash runs the docker scripts with a recording ``docker``; compose strings are
interpolated by the compose-spec rules after the compose-spec schema accepted the file;
Kubernetes containers get ``$(VAR)`` expansion) and compared two ways:

- with the plan: the vLLM container's argv is ``plan.args``, its environment ``plan.env``, each
  sidecar's argv its resolved ``args``;
- with the same profile holding a harmless value in that slot: the hostile output must be the
  harmless output with the harmless value replaced by the hostile one, everywhere and nothing
  else (so a value that went unescaped into a label, a name, a JSON blob or a comment that bash
  runs shows up as a difference).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.render.hostile import (
    HOSTILE,
    SECRET_VALUE,
    Slot,
    compose_as_run,
    compose_schema,
    dotted,
    k8s_as_run,
    k8s_containers,
    profile_text,
    run_script,
    string_slots,
    with_value,
)
from vllmtune.errors import ProfileError, RenderError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.render import EXTRA_TARGETS, TARGETS, render

SLOTS = string_slots()
ALL_TARGETS = TARGETS + EXTRA_TARGETS
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<path>[^\s:][^:\n]*): [^\n]+$")


def test_the_walk_finds_the_schema() -> None:
    names = {s.name for s in SLOTS}
    # a few that must be there, of each kind (plain, in a list, a mapping key, under an optional model)
    assert {
        "model.id",
        "server.extra_args[0]",
        "server.env.<key>",
        "server.env.k0q",
        "lora.adapters[0].source",
        "speculative.model",
        "quantization.recipe.calibration_dataset",
        "deploy.kubernetes.tolerations[0].value",
        "deploy.kubernetes.autoscaling.prometheus_url",
    } <= names
    assert len(SLOTS) >= 70


def load(doc: dict[str, Any], tmp: Path) -> DeploymentPlan:
    path = tmp / "p.yaml"
    path.write_text(profile_text(doc), encoding="utf-8")
    return load_plan(str(path))


def consumed(plan: DeploymentPlan, target: str, tmp: Path) -> Any:
    """The target's output as its consumer sees it, after checking it against the plan."""
    text = render(plan, target)
    text.encode("utf-8")  # every output is written as UTF-8
    secrets = sorted({s.source_env for s in [*plan.secret_env, *(e for sc in plan.sidecars for e in sc.secret_env)]})
    if target in ("docker", "quantize-script"):
        run_dir = tmp / target
        run_dir.mkdir(exist_ok=True)
        calls = run_script(text, run_dir, secrets)
        if target == "docker":
            check_docker_against_plan(plan, calls)
        else:  # the job's temporary directory is the only thing that changes between runs
            calls = [[re.sub(r"/tmp/[^/:]*tmp[^/:]*", "JOBDIR", a) for a in c] for c in calls]
        return calls
    if target == "grafana":
        return json.loads(text)
    if target == "compose":
        doc = yaml.load(text, Loader=Loader)
        jsonschema.validate(doc, compose_schema())
        run = compose_as_run(doc, dict.fromkeys(secrets, SECRET_VALUE))
        check_compose_against_plan(plan, run)
        return run
    if target == "production-stack":  # the container the chart writes from the values, as it runs
        from tests.render.test_exporters import chart_container

        return k8s_as_run(chart_container(yaml.load(text, Loader=Loader)))
    if target == "vllm-config":  # the argv vLLM's config loader builds, each flag joined to its value
        from tests.render.test_exporters import joined

        return joined(yaml.load(text, Loader=Loader))
    docs = [k8s_as_run(d) for d in yaml.load_all(text, Loader=Loader) if d]
    if target == "kubernetes":
        check_k8s_against_plan(plan, docs)
    assert SECRET_VALUE not in json.dumps(docs), "a Secret's value is substituted into a container"
    return docs


def _after(argv: list[str], word: str) -> list[str]:
    return argv[argv.index(word) + 1 :]


def _flag_values(argv: list[str], flag: str, stop: str) -> list[str]:
    head = argv[: argv.index(stop)]
    return [head[i + 1] for i, a in enumerate(head) if a == flag]


def check_docker_against_plan(plan: DeploymentPlan, calls: list[list[str]]) -> None:
    runs = {c[c.index("--name") + 1]: c for c in calls if c[:2] == ["run", "--detach"]}
    assert plan.docker_replicas[0].container == plan.docker_container
    for r in plan.docker_replicas:  # one server, or each replica behind a router: the same argv
        server = runs[r.container]
        assert _after(server, plan.image) == list(plan.args)
        assert _flag_values(server, "--env", plan.image) == [f"{k}={v}" for k, v in plan.env] + [
            s.name for s in plan.secret_env
        ]
    hosts = {"vllm": plan.docker_container, "redis": plan.sidecar_name("redis"), "router": plan.sidecar_name("router")}
    hosts |= {f"replica{i}": r.container for i, r in enumerate(plan.docker_replicas)}
    for sc in plan.sidecars:
        argv = runs[plan.sidecar_name(sc.role)]
        assert _after(argv, sc.image) == [*sc.command[1:], *sc.resolved_args(hosts, plan.port)]
    assert SECRET_VALUE not in json.dumps(calls)


def check_compose_against_plan(plan: DeploymentPlan, doc: dict[str, Any]) -> None:
    for r in plan.docker_replicas:
        vllm = doc["services"][r.service]
        assert vllm["command"] == list(plan.args)
        assert vllm.get("environment", {}) == {**dict(plan.env), **{s.name: SECRET_VALUE for s in plan.secret_env}}
    hosts = {"vllm": "vllm", "redis": "redis", "router": "router"}
    hosts |= {f"replica{i}": r.service for i, r in enumerate(plan.docker_replicas)}
    for sc in plan.sidecars:
        svc = doc["services"][sc.role]
        assert svc["command"] == sc.resolved_args(hosts, plan.port)
        assert svc.get("entrypoint", []) == list(sc.command)


def check_k8s_against_plan(plan: DeploymentPlan, docs: list[Any]) -> None:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for c in k8s_containers(docs):
        by_name.setdefault(c["name"], []).append(c)
    for vllm in by_name["vllm"]:
        assert vllm["args"] == list(plan.args)
        assert [(v["name"], v["value"]) for v in vllm.get("env", []) if "value" in v] == list(plan.env)
    hosts = {"vllm": plan.name, "redis": plan.sidecar_name("redis"), "router": plan.sidecar_name("router")}
    for sc in plan.sidecars:
        for c in by_name[sc.role]:
            assert c["args"] == sc.resolved_args(hosts, plan.port, kubernetes=True)
            assert c.get("command", []) == list(sc.k8s_command if sc.k8s_command is not None else sc.command)


_HASHES = re.compile(r"(?<![0-9a-f])[0-9a-f]{10,64}(?![0-9a-f])")


def substituted(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every string (JSON in a string too)."""
    if isinstance(value, str):
        if value[:1] in "{[":
            try:
                inner = json.loads(value)
            except ValueError:
                pass
            else:
                return ("JSON", substituted(inner, old, new))
        return _HASHES.sub("HASH", value.replace(old, new))
    if isinstance(value, dict):
        return {substituted(k, old, new): substituted(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(v, old, new) for v in value]
    return value


def first_difference(a: Any, b: Any, where: str = "") -> str:
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=repr):
            if k not in a or k not in b:
                return f"{where}.{k!r}: only in {'hostile' if k in a else 'harmless'} output"
            if a[k] != b[k]:
                return first_difference(a[k], b[k], f"{where}.{k}")
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}: {a!r:.600} != {b!r:.600}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r:.600} != {b!r:.600}"


@cache
def harmless(slot: Slot, tmp: Path) -> tuple[dict[str, Any], ...]:
    """Per target: the consumed output with the slot's harmless value (or None: not rendered)."""
    plan = load(with_value(slot, slot.base), tmp)
    out = {}
    for target in ALL_TARGETS:
        try:
            out[target] = consumed(plan, target, tmp)
        except RenderError:
            out[target] = None
    return (out,)


def assert_located(error: ProfileError, file: str, slot: Slot, value: str) -> None:
    lines = str(error).split("\n")
    for line in lines:
        m = LOCATED.match(line)
        assert m and m["file"] == file, f"not a located error line: {line!r}"
    paths = {p.path for p in error.problems}
    if paths == {""} and all(p.message.startswith("invalid YAML: ") for p in error.problems):
        return  # the YAML reader refused the text itself (e.g. an escaped lone surrogate): file:line
    wanted = dotted(slot.path[:-1]) + f".{value}" if slot.key else dotted(slot.path)
    assert any(p == wanted or p.startswith(wanted + ".") for p in paths) or (
        slot.key and any(p == dotted(slot.path[:-1]) for p in paths)
    ), f"refused, but not at {wanted}: {str(error)!r}"


def check_case(slot: Slot, value: str, tmp: Path, harmless_dir: Path) -> str:
    """Refused with located errors, or every target's consumer gets exactly ``value``.
    Returns "refused" or "rendered" (for hypothesis.event)."""
    try:
        plan = load(with_value(slot, value), tmp)
    except ProfileError as exc:
        assert_located(exc, str(tmp / "p.yaml"), slot, value)
        return "refused"
    harmless_dir.mkdir(exist_ok=True)
    (expected_all,) = harmless(slot, harmless_dir)
    for target in ALL_TARGETS:
        expected = expected_all[target]
        if expected is None:
            with pytest.raises(RenderError):
                render(plan, target)
            continue
        got = consumed(plan, target, tmp)
        want = substituted(expected, slot.base, value)
        got = substituted(got, slot.base, slot.base)
        assert got == want, f"{target}: {first_difference(got, want)}"
    return "rendered"


@pytest.mark.parametrize("hostile", list(HOSTILE))
@pytest.mark.parametrize("slot", SLOTS, ids=[s.name for s in SLOTS])
def test_hostile_value(slot: Slot, hostile: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    harmless_dir = tmp_path_factory.getbasetemp() / f"harmless-{SLOTS.index(slot)}"
    check_case(slot, HOSTILE[hostile](slot.base), tmp_path_factory.mktemp("case"), harmless_dir)


def test_nul_is_refused_in_every_slot(tmp_path: Path) -> None:
    # bash drops a NUL silently, argv and environments cannot hold one: never rendered at all
    for slot in SLOTS:
        value = HOSTILE["NUL"](slot.base)
        with pytest.raises(ProfileError) as info:
            load(with_value(slot, value), tmp_path)
        assert_located(info.value, str(tmp_path / "p.yaml"), slot, value)
        if not slot.literal and not slot.pattern:
            assert any("NUL" in p.message for p in info.value.problems), str(info.value)
