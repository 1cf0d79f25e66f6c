"""``vllmtune up``: take a profile to a healthy, answering vLLM server, or fail fast."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from vllmtune.errors import LaunchError
from vllmtune.plan import DeploymentPlan, load_plan
from vllmtune.runtime.base import Backend, plan_summary, secret_values, sidecar_secret_values, summary_changes
from vllmtune.runtime.health import Watch, wait_http, wait_ready

SIDECAR_READY_SECONDS = 60.0  # the proxy answers in about a second once vLLM does


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (docker or local)."""
    if name == "docker":
        from vllmtune.runtime.docker_backend import DockerBackend

        return DockerBackend()
    if name == "local":
        from vllmtune.runtime.local import LocalBackend

        return LocalBackend()
    raise LaunchError(f"unknown runtime {name!r}", hint="choose docker or local")


@dataclass
class UpResult:
    """What ``up --output json`` prints."""

    name: str
    backend: str
    endpoint: str  # what clients use: the cache proxy's when the prompt cache is on
    model: str
    ident: str
    status: str  # started | unchanged | replaced
    vllm_endpoint: str = ""  # vLLM's own (the same as endpoint without the prompt cache)
    timings: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    kv_cache: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class UpOptions:
    """Everything ``vllmtune up`` takes besides the profile."""

    runtime: str = "docker"
    gpus: str | None = None
    host: str | None = None
    port: int | None = None
    timeout: float = 1800.0
    replace: bool = False
    keep_on_failure: bool = False
    cache_image: str | None = None  # the proxy image instead of prompt_cache.image:VERSION


def prepare(profile: str, opts: UpOptions) -> DeploymentPlan:
    """The plan as this runtime will launch it (local binds 127.0.0.1 unless --host)."""
    plan = load_plan(profile)
    refusal = plan.single_node_only(f"vllmtune up (runtime {opts.runtime})")
    if refusal:
        raise LaunchError(refusal)
    host = opts.host or ("127.0.0.1" if opts.runtime == "local" else None)
    plan = plan.with_endpoint(host=host, port=opts.port)
    if opts.cache_image:
        if not plan.sidecars:
            raise LaunchError("--cache-image: the profile has no prompt cache (prompt_cache.enabled: true)")
        sidecars = tuple(replace(sc, image=opts.cache_image) if sc.role == "cache" else sc for sc in plan.sidecars)
        plan = replace(plan, sidecars=sidecars)
    return plan


def up(
    profile: str, opts: UpOptions, on_phase: Callable[[str, float], None], log_tail: list[str] | None = None
) -> UpResult:
    """Start (or keep) the server for a profile and wait until it answers."""
    t0 = time.monotonic()
    plan = prepare(profile, opts)
    backend = get_backend(opts.runtime)
    backend.say = lambda msg: on_phase(msg, time.monotonic() - t0)
    host = "127.0.0.1" if plan.docker_bind in ("0.0.0.0", "::") or opts.runtime == "local" else plan.docker_bind
    if opts.runtime == "local" and plan.host not in ("0.0.0.0", "::"):
        host = plan.host
    vllm_endpoint = f"http://{host}:{plan.port}"
    # what clients use: the published part in front of vLLM (the cache proxy, else the router)
    front = next((sc for sc in plan.sidecars if sc.publish and sc.fronts_server), None)
    endpoint = f"http://{host}:{front.port}" if front is not None else vllm_endpoint
    status = "started"
    existing = backend.find(plan.name)
    if existing is not None:
        new = plan_summary(plan, opts.gpus)
        changes = summary_changes(existing.summary, new)
        if existing.state == "running" and not changes:
            return UpResult(
                plan.name,
                backend.name,
                endpoint + "/v1",
                plan.served_name,
                existing.ident,
                "unchanged",
                vllm_endpoint=vllm_endpoint + "/v1",
            )
        if existing.state == "running" and not opts.replace:
            raise LaunchError(
                f"{plan.name} is already running with a different launch:\n  " + "\n  ".join(changes),
                hint=f"run again with --replace to replace it, or vllmtune down {plan.name}",
                sep="\n",
            )
        backend.stop(plan.name)  # an exited leftover, a stack missing a part, or --replace
        status = "replaced" if existing.state == "running" else "started"
    env = secret_values(plan)
    env_all = {**env, **sidecar_secret_values(plan)}  # each part gets only the names it reads
    backend.preflight(plan, opts.gpus)
    t_spawn = time.monotonic()
    tail = log_tail if log_tail is not None else []
    try:
        started = backend.start(plan, opts.gpus, env_all)
        watch = Watch(
            base_url=vllm_endpoint,
            served_name=plan.served_name,
            alive=started.alive,
            new_log_lines=started.new_log_lines,
            api_key=env.get("VLLM_API_KEY"),
        )
        ready = wait_ready(watch, opts.timeout, on_phase, tail)
        for what, url, part in backend.start_front(plan, env_all):
            took = wait_http(what, url, part.alive, part.new_log_lines, SIDECAR_READY_SECONDS, [])
            on_phase(f"{what} ready", time.monotonic() - t_spawn)
            ready.phases[f"{what} ready"] = ready.seconds + took
    except BaseException as exc:
        # Failure or Ctrl-C (even mid-create): leave nothing running unless asked to.
        if isinstance(exc, KeyboardInterrupt):
            # Stopping takes seconds (a container's removal, a process's graceful exit): say so.
            on_phase(f"interrupted: stopping and removing {backend.describe_parts(plan)}", time.monotonic() - t_spawn)
        if not opts.keep_on_failure or isinstance(exc, KeyboardInterrupt):
            backend.stop(plan.name)
        raise
    backend.mark_ready(plan)
    t_end = time.monotonic()
    return UpResult(
        name=plan.name,
        backend=backend.name,
        endpoint=endpoint + "/v1",
        model=plan.served_name,
        ident=started.ident,
        status=status,
        vllm_endpoint=vllm_endpoint + "/v1",
        timings={
            "total_s": round(t_end - t0, 3),
            "server_start_s": round(ready.seconds, 3),
            "vllmtune_overhead_s": round((t_end - t0) - ready.seconds, 3),
            "before_spawn_s": round(t_spawn - t0, 3),
        },
        phases={k: round(v, 2) for k, v in ready.phases.items()},
        kv_cache=ready.facts,
    )


def follow_until_interrupted(name: str, runtime: str) -> None:
    """Foreground mode: stream the server's whole log (its start-up too: the wait showed only
    phases), then each new line; Ctrl-C stops and removes it."""
    backend = get_backend(runtime)
    try:
        for line in backend.logs(name, follow=True, tail=None):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write(f"stopping {name} ...\n")
        backend.stop(name)
        raise
    backend.stop(name)
