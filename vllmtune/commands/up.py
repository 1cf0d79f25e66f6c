"""``vllmtune up``, ``down``, ``ps`` and ``logs``: servers started, listed, stopped, read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vllmtune.commands.common import PROFILE_HELP, RUNTIMES
from vllmtune.errors import VllmtuneError
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class UpArgs:
    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    runtime: str = opt(
        "--runtime",
        "-r",
        default="docker",
        choices=RUNTIMES,
        help="docker (Docker SDK) or local (a vllm serve process).",
    )
    gpus: str | None = opt(
        "--gpus",
        default=None,
        help="all, a count (2) or device ids (0,1), as docker run --gpus. Default: resources.gpus.",
    )
    port: int | None = opt("--port", default=None, help="Serve on this port instead of server.port.")
    host: str | None = opt("--host", default=None, help="Bind address (local runtime default 127.0.0.1).")
    detach: bool = opt("--detach", "-d", default=False, help="Return once healthy and leave it running.")
    timeout: float = opt(
        "--timeout", default=1800.0, help="Seconds to wait for health (big models download for a while)."
    )
    replace: bool = opt("--replace", default=False, help="Replace a running server whose launch differs.")
    keep_on_failure: bool = opt(
        "--keep-on-failure", default=False, help="Leave a failed server in place to inspect it."
    )
    cache_image: str | None = opt(
        "--cache-image",
        default=None,
        help="The cache-proxy image (REGISTRY/NAME:TAG) instead of prompt_cache.image:VERSION "
        "(built here when missing).",
    )


@dataclass(frozen=True)
class UpResult:
    result: Any  # vllmtune.runtime.up's result: name, status, endpoint, timings, kv_cache ...
    kv_estimate: int | None  # vllmtune fit's KV-token estimate beside what vLLM reports


def server_name(args: UpArgs) -> str:
    """The server's name (progress names the server, as ps, down and logs do, not the file)."""
    from vllmtune.profile.loader import load_profile

    return load_profile(args.profile).profile.name


def up(args: UpArgs, progress: Callable[[str, float], None]) -> UpResult:
    """Start the server (or the stack) and wait until it answers."""
    from vllmtune.runtime.up import UpOptions
    from vllmtune.runtime.up import up as do_up

    opts = UpOptions(
        runtime=args.runtime,
        gpus=args.gpus,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        replace=args.replace,
        keep_on_failure=args.keep_on_failure,
        cache_image=args.cache_image,
    )
    result = do_up(args.profile, opts, progress)
    return UpResult(result, kv_estimate(args.profile) if result.kv_cache else None)


def follow(args: UpArgs, name: str) -> None:
    """Stream the server's log until Ctrl-C, which stops it."""
    from vllmtune.runtime.up import follow_until_interrupted

    follow_until_interrupted(name, args.runtime)


def kv_estimate(profile: str) -> int | None:
    """vllmtune fit's KV-token estimate, shown beside what vLLM reports (None if unknown)."""
    try:
        from vllmtune.fit import fit_report
        from vllmtune.profile.loader import load_profile

        # the GPU `vllmtune fit PROFILE` plans for (resources.gpu_type), not none at all
        report = fit_report(profile, load_profile(profile).profile.resources.gpu_type, False)
    except VllmtuneError:
        return None
    block = report.get("cpu") or report.get("per_gpu") or {}
    return int(block["kv_tokens"]) if "kv_tokens" in block else None


ONLY_BACKEND = "Only this backend (default: both)."


@dataclass(frozen=True)
class DownArgs:
    target: str = arg(help="Server name, or the profile file it came from.", metavar="NAME|PROFILE")
    runtime: str | None = opt("--runtime", "-r", default=None, choices=RUNTIMES, help=ONLY_BACKEND)


def down(args: DownArgs) -> str:
    """Stop and remove; what was done, in words."""
    from vllmtune.runtime.manage import down as do_down

    return str(do_down(args.target, args.runtime))


@dataclass(frozen=True)
class PsArgs:
    runtime: str | None = opt("--runtime", "-r", default=None, choices=RUNTIMES, help=ONLY_BACKEND)


def ps(args: PsArgs) -> list[dict[str, Any]]:
    """One row per server vllmtune started (parts: a stack's containers or processes)."""
    from vllmtune.runtime.manage import ps_rows

    return list(ps_rows(args.runtime))


@dataclass(frozen=True)
class LogsArgs:
    name: str = arg(help="Server name (see vllmtune ps).")
    follow: bool = opt("--follow", "-f", default=False, help="Keep printing new lines.")
    tail: int | None = opt("--tail", default=None, help="Only the last N lines.")
    runtime: str | None = opt("--runtime", "-r", default=None, choices=RUNTIMES, help="Only this backend.")


def logs(args: LogsArgs) -> Iterator[str]:
    """The server's log lines (with --follow, until Ctrl-C)."""
    from vllmtune.runtime.manage import logs as do_logs

    yield from do_logs(args.name, args.follow, args.tail, args.runtime)
