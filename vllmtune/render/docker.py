"""Plan -> a bash script with one safely quoted ``docker run``.

The command is an argv list; every word is quoted with ``shlex.quote`` except the few
deliberate shell expansions (the HF cache directory and secrets from the caller's
environment), which are written as fixed, pre-quoted text.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from vllmtune.containers import image_build_hint, network_labels, network_name, sidecar_container
from vllmtune.plan import DeploymentPlan, DockerReplica, Sidecar
from vllmtune.render.shell import Shell, Word, hf_cache_lines, join_lines, secret_lines
from vllmtune.render.text import docker_header

__all__ = ["Shell", "Word", "render_docker", "run_lines"]


def run_lines(plan: DeploymentPlan, replica: DockerReplica | None = None) -> list[list[Word]]:
    """``docker run`` of one server (default: the first) as lines of words (the first line is
    ``docker run --detach``)."""
    r = replica or plan.docker_replicas[0]
    lines: list[list[Word]] = [
        ["docker", "run", "--detach"],
        ["--name", r.container],
        ["--restart", plan.docker_restart],
    ]
    lines += [["--label", f"{k}={v}"] for k, v in r.labels]
    if r.gpu_device_ids:  # its own GPUs; docker needs the inner quotes for a list of them
        lines.append(["--gpus", f'"device={",".join(r.gpu_device_ids)}"'])
    elif plan.gpus:
        lines.append(["--gpus", str(plan.gpus)])
    lines.append(["--ipc=host"] if plan.shm.ipc_host else ["--shm-size", plan.shm.size])
    if plan.sidecars:
        lines.append(["--network", network_name(plan)])
    lines.append(["--publish", f"{plan.docker_bind}:{r.host_port}:{plan.port}"])
    for m in plan.mounts:
        if m.kind == "cache":
            lines.append(["--volume", Shell(f'"$HF_CACHE":{shlex.quote(m.target)}')])
        else:
            lines.append(["--volume", f"{m.source}:{m.target}" + (":ro" if m.read_only else "")])
    lines += [["--env", f"{k}={v}"] for k, v in plan.env]
    lines += [["--env", s.name] for s in plan.secret_env]
    lines.append([plan.image])
    return lines + _arg_lines(plan.args)


def _arg_lines(args: Sequence[str]) -> list[list[Word]]:
    """Container args, one line per flag with its value(s)."""
    lines: list[list[Word]] = []
    current: list[Word] = []
    for arg in args:
        if arg.startswith("-") and current:
            lines.append(current)
            current = []
        current.append(arg)
    if current:
        lines.append(current)
    return lines


def _sidecar_lines(plan: DeploymentPlan, sidecar: Sidecar) -> list[list[Word]]:
    """``docker run`` of a sidecar (the cache proxy, its Redis) on the plan's network: the
    container ``vllmtune up`` starts too (vllmtune/containers.py)."""
    c = sidecar_container(plan, sidecar)
    lines: list[list[Word]] = [
        ["docker", "run", "--detach"],
        ["--name", c.name],
        ["--restart", c.restart],
        ["--network", c.network],
    ]
    lines += [["--label", f"{k}={v}"] for k, v in c.labels]
    if c.user is not None:
        lines.append(["--user", c.user])
    if c.read_only:
        lines.append(["--read-only"])
    lines += [["--tmpfs", path] for path in c.tmpfs]
    lines += [["--cap-drop", cap] for cap in c.cap_drop]
    lines += [["--security-opt", opt] for opt in c.security_opt]
    lines.append(["--memory", c.memory])
    if c.publish:
        lines.append(["--publish", f"{c.publish[0]}:{c.publish[1]}:{c.port}"])
    lines += [["--env", f"{k}={v}"] for k, v in c.env]
    lines += [["--env", s.name] for s in c.secret_env]
    if c.entrypoint:
        lines.append(["--entrypoint", c.entrypoint])
    lines.append([c.image])
    return lines + _arg_lines(c.command)


def render_docker(plan: DeploymentPlan) -> str:
    """The whole script text."""
    out = [docker_header(plan)]
    out.append("")
    out += hf_cache_lines(plan.hf_cache_source, "Hugging Face cache on this machine")
    secrets = {s.name: s for s in [*plan.secret_env, *(e for sc in plan.sidecars for e in sc.secret_env)]}
    for s in secrets.values():
        out += secret_lines(s)
    out.append("")
    if plan.sidecars:
        out.append("# vLLM and its sidecars talk over a user-defined network, by container name")
        net = shlex.quote(network_name(plan))
        labels = [f"--label {shlex.quote(f'{k}={v}')}" for k, v in network_labels(plan).items()]
        lines = ["docker network create", *labels, f"{net} >/dev/null"]
        out.append(f"docker network inspect {net} >/dev/null 2>&1 || \\\n  " + " \\\n  ".join(lines))
        out.append("")
    for sc in plan.sidecars:
        if sc.before_server:
            out.append(join_lines(_sidecar_lines(plan, sc)))
            out.append("")
    for i, r in enumerate(plan.docker_replicas):
        if len(plan.docker_replicas) > 1:
            gpus = f", GPUs {','.join(r.gpu_device_ids)}" if r.gpu_device_ids else ""
            out += [""] if i else []
            out.append(f"# replica {i + 1} of {len(plan.docker_replicas)}: port {r.host_port}{gpus}")
        out.append(join_lines(run_lines(plan, r)))
    for sc in plan.sidecars:
        if not sc.before_server:
            out.append("")
            if sc.note:
                out.append(f"# {sc.note}")
            hint = image_build_hint(sc)
            if hint:
                if sc.build_hint:
                    out.append("# its image is on no registry: build it here first")
                else:
                    out.append(
                        "# its image is on no registry: build it here first (vllmtune up does when it is missing)"
                    )
                out.append(f"#   {hint}")
                if not sc.build_hint:
                    out.append("# or push it to yours: set prompt_cache.image to REGISTRY/NAME, then add --push")
            out.append(join_lines(_sidecar_lines(plan, sc)))
    return "\n".join(out) + "\n"
