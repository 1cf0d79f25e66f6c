"""``vllmtune drift``: does what runs still match the profile? (image tag, argv, env, GPUs)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vllmtune.argdiff import describe
from vllmtune.errors import VllmtuneError
from vllmtune.plan import DeploymentPlan, load_plan


class DriftError(VllmtuneError):
    """Nothing to compare with (no running server, unreadable dump)."""


def _endpoint_of(plan: DeploymentPlan, args: list[str]) -> tuple[str | None, int | None]:
    """Where the running server listens, read from its argv with the plan's own spellings."""
    found = {}
    for dest in ("host", "port"):
        flag = plan.vllm.flag(dest)
        if flag is not None and flag in args[:-1]:
            found[dest] = args[args.index(flag) + 1]
    port = found.get("port")
    return found.get("host"), int(port) if port and port.isdigit() else None


def _compare(
    plan: DeploymentPlan, image: str, args: list[str], env: dict[str, str], gpus: int, replicas: int | None = None
) -> list[str]:
    # `up --host/--port` are launch choices, not drift: compare with the same endpoint.
    host, port = _endpoint_of(plan, args)
    plan = plan.with_endpoint(host=host, port=port)
    out = []
    if image != plan.image:
        out.append(f"image: running {image}, profile {plan.image}")
    if args != list(plan.args):
        # flag by flag: "max_num_seqs: running 64, profile 128 (--max-num-seqs)"
        out += describe(args, list(plan.args), old_word="running", new_word="profile")
    for k, v in plan.env:
        if env.get(k) != v:
            out.append(f"env {k}: running {env.get(k)!r}, profile {v!r}")
    for s in plan.secret_env:
        if s.name not in env:
            out.append(f"env {s.name} ({s.field}) is not set in the running server")
    if gpus != plan.gpus:
        out.append(f"GPUs: running {gpus}, profile {plan.gpus}")
    if replicas is not None and replicas != plan.k8s_replicas:
        out.append(f"replicas: running {replicas}, profile {plan.k8s_replicas}")
    return out


def _from_docker(plan: DeploymentPlan) -> tuple[str, list[str]] | None:
    from vllmtune.runtime.docker_backend import DockerBackend

    backend = DockerBackend()
    c = backend._container(plan.name)
    if c is None:
        return None
    cfg = c.attrs["Config"]
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
    gpus = 0
    for req in c.attrs["HostConfig"].get("DeviceRequests") or []:
        gpus += len(req.get("DeviceIDs") or []) or max(0, req.get("Count") or 0)
    return f"docker container {c.name}", _compare(plan, cfg["Image"], list(cfg.get("Cmd") or []), env, gpus)


def _from_local(plan: DeploymentPlan) -> tuple[str, list[str]] | None:
    from vllmtune.runtime.local import LocalBackend

    record = LocalBackend().find(plan.name)
    if record is None or record.state != "running":
        return None
    s = record.summary
    return f"local process {record.ident}", _compare(
        plan,
        s.get("image", plan.image),
        list(s.get("args", [])),
        dict(s.get("env", {})) | {n: "" for n in s.get("secret_env", [])},
        int(s.get("gpus", plan.gpus) or 0),
    )


def _from_k8s_dump(plan: DeploymentPlan, dump: str) -> tuple[str, list[str]]:
    try:
        docs = [d for d in yaml.safe_load_all(Path(dump).read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise DriftError(f"{dump}: cannot read the manifest dump ({exc})") from None
    items: list[dict[str, Any]] = []
    for d in docs:
        items += d.get("items", []) if d.get("kind") == "List" else [d]
    # A multi-node server is a LeaderWorkerSet: its leader pod runs vLLM.
    if plan.multi_node:
        from vllmtune.render.k8s import lws_name

        kind, short, name = "LeaderWorkerSet", "lws", lws_name(plan)
    else:
        kind, short, name = "Deployment", "deploy", plan.name
    deps = [d for d in items if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    if not deps:
        raise DriftError(f"{dump}: no {kind} named {name} (kubectl get {short} {name} -o yaml > FILE)")
    spec = deps[0]["spec"]
    template = spec["leaderWorkerTemplate"]["leaderTemplate"] if plan.multi_node else spec["template"]
    containers = template["spec"]["containers"]
    c = next((x for x in containers if x.get("name") == "vllm"), containers[0])
    env = {e["name"]: e.get("value", "") for e in c.get("env") or []}
    gpus = int((c.get("resources", {}).get("limits") or {}).get("nvidia.com/gpu", 0))
    args = list(c.get("args") or [])
    if plan.multi_node and args[: len(plan.entrypoint)] == list(plan.entrypoint):
        args = args[len(plan.entrypoint) :]  # the leader runs the entrypoint itself, after Ray
    # An autoscaled workload has no replicas of its own to compare.
    replicas = None if plan.autoscaling else spec.get("replicas", 1)
    return f"{kind} {name} in {dump}", _compare(plan, c["image"], args, env, gpus, replicas)


def drift(profile: str, k8s_dump: str | None = None, runtime: str | None = None) -> dict[str, Any]:
    """{"source": what was compared, "drift": [differences]}; raises DriftError if nothing runs."""
    plan = load_plan(profile)
    if k8s_dump:
        source, diffs = _from_k8s_dump(plan, k8s_dump)
        return {"source": source, "drift": diffs}
    found = None
    if runtime in (None, "local"):
        found = _from_local(plan)
    if found is None and runtime in (None, "docker"):
        from vllmtune.runtime.docker_backend import docker_in_use

        try:
            found = _from_docker(plan)
        except VllmtuneError:
            # An unreachable daemon is not "nothing running" on a machine that uses Docker.
            if runtime == "docker" or docker_in_use():
                raise
    if found is None:
        raise DriftError(
            f"no running server for {plan.name}; start it (vllmtune up) or compare a manifest dump (--k8s FILE)"
        )
    return {"source": found[0], "drift": found[1]}
