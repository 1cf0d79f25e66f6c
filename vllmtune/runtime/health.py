"""Wait for a starting vLLM server: poll /health then /v1/models, watch its log and process.

Standard library HTTP only: a readiness poll needs no client library, and ``up`` stays light.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from vllmtune.errors import LaunchError
from vllmtune.runtime.logscan import diagnose, kv_cache_facts, phase_of

POLL_SECONDS = 0.2


def http_get(url: str, timeout: float = 2.0, api_key: str | None = None) -> tuple[int, bytes]:
    """GET a URL: (status, body); status 0 when nothing answered."""
    try:
        req = urllib.request.Request(url)  # ValueError for what is not a URL: nothing answers there
        if api_key:
            req.add_header("Authorization", f"Bearer {api_key}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read() or b""
    except (urllib.error.URLError, OSError, ValueError):
        return 0, b""


def served_models(body: bytes) -> list[str]:
    """Model ids in a /v1/models answer."""
    try:
        return [str(m["id"]) for m in json.loads(body)["data"]]
    except (ValueError, KeyError, TypeError):
        return []


@dataclass
class Watch:
    """What the caller gives the waiter about the thing that is starting."""

    base_url: str
    served_name: str
    alive: Callable[[], bool]  # False once the process/container has exited
    new_log_lines: Callable[[], list[str]]  # lines printed since the last call
    api_key: str | None = None


@dataclass
class Ready:
    """Timings and facts of a server that answered."""

    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)


def wait_ready(watch: Watch, timeout: float, on_phase: Callable[[str, float], None], log_tail: list[str]) -> Ready:
    """Block until /health is 200 and /v1/models lists the served name.

    ``log_tail`` collects every log line seen (the caller prints the last 50 on failure).
    Raises LaunchError with a recognised reason when the server dies or never gets ready.
    """
    start = time.monotonic()
    phase = "starting"
    phases: dict[str, float] = {"starting": 0.0}
    on_phase(phase, 0.0)
    while True:
        elapsed = time.monotonic() - start
        lines = watch.new_log_lines()
        log_tail.extend(lines)
        for line in lines:
            new = phase_of(line)
            if new and new != phase and new != "ready":
                phase = new
                phases.setdefault(new, elapsed)
                on_phase(phase, elapsed)
        status, _ = http_get(watch.base_url + "/health", timeout=1.0)
        if status == 200:
            code, body = http_get(watch.base_url + "/v1/models", api_key=watch.api_key)
            models = served_models(body)
            if code == 200 and watch.served_name in models:
                log_tail.extend(watch.new_log_lines())
                phases["ready"] = time.monotonic() - start
                on_phase("ready", phases["ready"])
                return Ready(phases["ready"], phases, kv_cache_facts(log_tail))
            if code == 200 and models:
                raise LaunchError(
                    f"the server answers but serves {', '.join(models)}, not {watch.served_name!r}",
                    hint="check model.served_name",
                )
        if not watch.alive():
            log_tail.extend(watch.new_log_lines())
            raise _startup_failure("the server exited during start-up", log_tail)
        if elapsed > timeout:
            raise _startup_failure(
                f"not ready after {timeout:.0f} s (last phase: {phase}); "
                "raise --timeout for big models or slow downloads",
                log_tail,
            )
        time.sleep(POLL_SECONDS)


def _startup_failure(what: str, log_tail: list[str]) -> LaunchError:
    failure = diagnose(log_tail)
    tail = "\n".join("  | " + line for line in log_tail[-50:]) or "  | (no log output)"
    msg = f"{what}\nlast {min(50, len(log_tail))} log lines:\n{tail}"
    if failure:
        msg += f"\nreason: {failure.reason}\nfix: {failure.hint}"
    return LaunchError(msg)


def wait_http(
    what: str,
    url: str,
    alive: Callable[[], bool],
    new_log_lines: Callable[[], list[str]],
    timeout: float,
    log_tail: list[str],
) -> float:
    """Block until ``url`` answers 200 (a sidecar's health path); seconds taken. Raises
    LaunchError with the part's log when it exits or does not answer in time."""
    start = time.monotonic()
    while True:
        log_tail.extend(new_log_lines())
        status, _ = http_get(url, timeout=1.0)
        if status == 200:
            return time.monotonic() - start
        if status in (404, 405):  # something answers there, but not this part
            log_tail.extend(new_log_lines())
            raise _startup_failure(
                f"{url} answers {status}: what runs there is not the {what} (check its image)", log_tail
            )
        if not alive():
            log_tail.extend(new_log_lines())
            raise _startup_failure(f"the {what} exited during start-up", log_tail)
        if time.monotonic() - start > timeout:
            raise _startup_failure(f"the {what} did not answer {url} within {timeout:.0f} s", log_tail)
        time.sleep(POLL_SECONDS)
