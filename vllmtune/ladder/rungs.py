"""The ladder's rungs: which levers a profile configures, each rung's profile document, the
``--rungs`` spelling, and the prompt-cache proxy a rung runs behind when ``up`` starts none."""

from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vllmtune.errors import LadderError as LadderError
from vllmtune.levers import LEVERS
from vllmtune.profile.loader import LoadedProfile
from vllmtune.util.net import free_port as free_port

RUNGS = ("baseline", *(lever.key for lever in LEVERS))
ALIASES = {"base": "baseline", **{alias: lever.key for lever in LEVERS for alias in lever.aliases}}
TITLES = {"baseline": "baseline", **{lever.key: lever.rung_title for lever in LEVERS}}


def _off(doc: dict[str, Any]) -> dict[str, Any]:
    """The profile with every lever off (the baseline rung)."""
    d = copy.deepcopy(doc)
    d.pop("extends", None)
    d["prompt_cache"] = {**d.get("prompt_cache", {}), "enabled": False}
    d["prefix_caching"] = False
    d.pop("batching", None)
    d.pop("quantization", None)
    d.pop("speculative", None)
    return d


def configured(doc: dict[str, Any]) -> dict[str, bool]:
    """Which levers the profile configures (a rung for an unconfigured lever is skipped)."""
    return {"baseline": True, **{lever.key: lever.configured(doc) for lever in LEVERS}}


def rung_document(
    doc: dict[str, Any],
    rung: str,
    failed: frozenset[str] = frozenset(),
    base_dir: Path | None = None,
    selected: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The full profile of a rung: baseline plus every configured lever up to ``rung``, except
    levers whose own rung failed (keep what pays: a lever that cannot run is not carried on)."""
    d = _off(doc)
    upto = RUNGS.index(rung)
    on = {
        k: v and (k == rung or k not in failed) and (selected is None or k in selected)
        for k, v in configured(doc).items()
    }
    ident = (d.get("model") or {}).get("id", "")
    if base_dir is not None and isinstance(ident, str) and ident.startswith(("./", "../")):
        d["model"]["id"] = str((base_dir / ident).resolve())  # the rung file lives elsewhere
    for lever in LEVERS:  # cumulative: every configured lever up to this rung
        if upto >= lever.number and on[lever.key]:
            d[lever.field] = copy.deepcopy(doc[lever.field])
    d["name"] = f"{doc['name']}-{rung}"[:63].rstrip("-")
    return d


def parse_rungs(spec: str | None) -> list[str] | None:
    """``--rungs prefix,spec`` -> ["prefix-caching", "speculative"] (the baseline is always run)."""
    if not spec:
        return None
    out = []
    for part in spec.split(","):
        name = ALIASES.get(part.strip(), part.strip())
        if name not in RUNGS:
            raise LadderError(
                f"unknown rung {part!r}; choose from {', '.join(RUNGS)} (or prefix, cache, batch, quant, spec)"
            )
        out.append(name)
    return out


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[str]) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` s; False as soon as ``proc`` has exited."""
    from vllmtune.runtime.health import http_get

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if http_get(url, timeout=1.0)[0] == 200:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def prompt_cache_proxy(upstream: str, lp: LoadedProfile) -> Any:
    """The prompt-result cache proxy in front of ``upstream`` for the duration of a rung."""
    pc = lp.profile.prompt_cache
    port = free_port()
    from vllmtune.cache.config import ServeConfig, sidecar_argv
    from vllmtune.profile.models import parse_duration

    cfg = ServeConfig(
        upstream=upstream,
        port=port,
        ttl=parse_duration(pc.ttl),
        max_temperature=pc.max_temperature,
        skip_pii=pc.skip_pii,
    )
    cmd = [sys.executable, "-m", "vllmtune.cache", *sidecar_argv(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not _wait_http(f"http://127.0.0.1:{port}/cache/stats", 30, proc):
            proc.terminate()
            err = proc.communicate(timeout=5)[1] if proc.stderr else ""
            raise LadderError(f"the prompt-cache proxy did not start: {err.strip()[-500:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
