"""The search: Optuna's TPE over the pruned space, one server per trial, goodput at the SLO.

Each trial writes ``OUT/trials/NNN/profile.yaml`` (``extends`` the input with only the changed
fields), starts it (:class:`Runtime`; by default :func:`vllmtune.runtime.up.up`), measures the
highest request rate meeting the SLO with bench's bounded ``find_max_rate`` and the goodput there,
stops it, and appends one JSON line to ``OUT/trials.jsonl``. ``--resume`` reads that file back:
the optimiser is told every recorded trial and no recorded configuration is started again. A
server that fails to start is recorded with its reason and told to the optimiser as goodput 0
(which steers it away); a configuration pruned before start is told as 0 too and never started.
The input configuration is the first trial. The optimiser is seeded: the same measurements give
the same suggestions.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vllmtune.errors import TuneError, VllmtuneError
from vllmtune.profile.loaded import LoadedProfile
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.tune.args import TuneArgs
from vllmtune.tune.space import Config, Knob, changes, describe

REPEATS_BEFORE_RANDOM = 20  # the optimiser proposed only measured configs this often: try an unmeasured one


class Runtime(Protocol):
    """Starts a trial's profile and stops it."""

    def start(self, profile: str) -> str:
        """Bring the profile up; its vLLM endpoint (http://HOST:PORT). Raises VllmtuneError."""
        ...

    def stop(self, name: str) -> None: ...


@dataclass
class UpRuntime:
    """The real one: ``vllmtune up`` (docker or local)."""

    runtime: str
    timeout: float

    def start(self, profile: str) -> str:
        from vllmtune.runtime.up import UpOptions, up
        from vllmtune.util.net import free_port

        port = free_port() if self.runtime == "local" else None
        started = up(profile, UpOptions(runtime=self.runtime, port=port, timeout=self.timeout, replace=True), _quiet)
        return (started.vllm_endpoint or started.endpoint).removesuffix("/v1")

    def stop(self, name: str) -> None:
        from vllmtune.runtime.up import get_backend

        with contextlib.suppress(VllmtuneError):
            get_backend(self.runtime).stop(name)


def _quiet(phase: str, t: float) -> None:
    del phase, t


def trial_document(knobs: list[Knob], config: Config, lp: LoadedProfile, parent: str, title: str) -> str:
    """A profile that extends ``parent`` with only the fields ``config`` changes."""
    doc = {"extends": parent, **changes(knobs, config, lp)}
    return f"# {title}\n" + dump_yaml(doc)


def parent_ref(profile: str, where: Path) -> str:
    """How a file in ``where`` names the input profile in its ``extends``."""
    if profile.startswith("preset:"):
        return profile.removeprefix("preset:")
    return os.path.relpath(Path(profile).resolve(), where.resolve())


def key(config: Config) -> str:
    return json.dumps(list(config))


def read_trials(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill mid-write
                out.append(json.loads(line))
    return out


def _measure(args: TuneArgs, endpoint: str, model: str | None, requests: Path) -> dict[str, Any]:
    from vllmtune.bench.command import BenchArgs, find_max_rate

    bench = BenchArgs(
        target=endpoint,
        workload=args.workload,
        requests=args.requests,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        seed=args.seed,
        model=model,
        slo=args.slo,
        save_requests=str(requests),
    )
    res = find_max_rate(bench, max_trials=args.rate_trials)
    summary = res["summary"]
    return {
        "goodput": res["slo"]["goodput"],
        "good_share": res["slo"]["good_share"],
        "slo_met": bool(res["slo"]["met"]),
        "max_rate": res["find_max_rate"]["max_rate"],
        "rate_runs": len(res["find_max_rate"]["trials"]),
        "request_throughput": summary["request_throughput"],
        "ttft_p99_ms": summary["ttft_ms"].get("p99"),
        "e2e_p99_ms": summary["e2e_ms"].get("p99"),
        "requests": str(requests),
    }


def _failure(exc: VllmtuneError) -> str:
    lines = str(exc).splitlines() or [type(exc).__name__]
    return next((line for line in lines if line.startswith("reason:")), lines[0])


def _run_trial(
    args: TuneArgs,
    lp: LoadedProfile,
    knobs: list[Knob],
    config: Config,
    number: int,
    runtime: Runtime,
    out: Path,
) -> dict[str, Any]:
    """Write, start, measure and stop one configuration; its record (status done or failed)."""
    from vllmtune.profile.loader import load_profile

    where = out / "trials" / f"{number:03d}"
    where.mkdir(parents=True, exist_ok=True)
    path = where / "profile.yaml"
    title = f"vllmtune tune trial {number}: {describe(knobs, config)}"
    path.write_text(trial_document(knobs, config, lp, parent_ref(args.profile, where), title))
    record: dict[str, Any] = {
        "trial": number,
        "config": list(config),
        "values": {k.name: v for k, v in zip(knobs, config, strict=True)},
        "profile": str(path),
    }
    name = lp.profile.name
    try:
        trial_lp = load_profile(path)
        name = trial_lp.profile.name
        endpoint = runtime.start(str(path))
        record.update(_measure(args, endpoint, trial_lp.profile.model.served_name, where / "requests.jsonl"))
        record["status"] = "done"
    except KeyboardInterrupt:
        runtime.stop(name)
        raise
    except VllmtuneError as exc:
        record.update({"status": "failed", "reason": _failure(exc), "detail": "\n".join(str(exc).splitlines()[-8:])})
    finally:
        runtime.stop(name)
    return record


@dataclass
class Search:
    """What the search did: every record (in order) and how many suggestions hit pruned configs."""

    records: list[dict[str, Any]]
    pruned_suggestions: int
    resumed: int


def search(
    args: TuneArgs,
    lp: LoadedProfile,
    knobs: list[Knob],
    valid: list[Config],
    first: Config,
    runtime: Runtime,
    say: Callable[[str], None],
) -> Search:
    """Run the trials (``args.trials`` servers at most, the input configuration ``first`` first)."""
    try:
        import optuna
    except ImportError:
        raise TuneError(
            "vllmtune tune needs Optuna (its TPE sampler searches the space)", hint="pip install 'vllmtune[tune]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    log = out / "trials.jsonl"
    records = read_trials(log) if args.resume else []
    if log.exists():  # resumed: the records read back, without a line a kill cut (appends follow it)
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
    allowed = {key(c) for c in valid}
    dists: dict[str, Any] = {
        k.name: optuna.distributions.IntDistribution(0, len(k.values) - 1)
        if k.ordered
        else optuna.distributions.CategoricalDistribution(list(range(len(k.values))))
        for k in knobs
    }

    def params(config: Config) -> dict[str, int]:
        return {k.name: k.values.index(v) for k, v in zip(knobs, config, strict=True)}

    def objective(rec: dict[str, Any]) -> float:
        return float(rec.get("goodput") or 0.0) if rec["status"] == "done" else 0.0

    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=max(2, min(6, args.trials // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    done: dict[str, dict[str, Any]] = {}
    for rec in records:
        config = tuple(rec["config"])
        if key(config) in done or len(config) != len(knobs):
            continue
        done[key(config)] = rec
        say(f"trial {rec['trial']}: recorded earlier (resume), {_said(rec)}")
        if key(config) in allowed:  # the input with a knob unset is measured, not a point of the space
            study.add_trial(optuna.trial.create_trial(params=params(config), distributions=dists, value=objective(rec)))
    resumed = len(done)
    rng = random.Random(args.seed)
    pruned_hits = repeats = 0
    started = sum(1 for r in records if r["status"] in ("done", "failed"))
    number = max((int(r["trial"]) for r in records), default=-1) + 1

    def measure(config: Config) -> dict[str, Any]:
        nonlocal number, started
        say(f"trial {number}: {describe(knobs, config)}: starting ({args.runtime})")
        rec = _run_trial(args, lp, knobs, config, number, runtime, out)
        with log.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        records.append(rec)
        done[key(config)] = rec
        say(f"trial {number}: {_said(rec)}")
        number += 1
        started += 1
        return rec

    if key(first) not in done:
        if key(first) in allowed:
            study.enqueue_trial(params(first))
        elif any(v is None for v in first) and started < args.trials:
            # the input as it is (a knob unset: vLLM's default decides), the reference
            measure(first)
    while started < args.trials and any(key(c) not in done for c in valid):
        trial = study.ask(dists)
        config = tuple(k.values[trial.params[k.name]] for k in knobs)
        if key(config) not in allowed:
            study.tell(trial, 0.0)
            pruned_hits += 1
            repeats += 1
        elif key(config) in done:
            study.tell(trial, objective(done[key(config)]))
            repeats += 1
        else:
            repeats = 0
            study.tell(trial, objective(measure(config)))
        if repeats >= REPEATS_BEFORE_RANDOM:
            study.enqueue_trial(params(rng.choice([c for c in valid if key(c) not in done])))
            repeats = 0
    return Search(records, pruned_hits, resumed)


def _said(rec: dict[str, Any]) -> str:
    if rec["status"] != "done":
        return f"FAILED to start: {rec.get('reason')}"
    rate = rec.get("max_rate")
    held = f"max rate {rate:,.2f}/s" if rate is not None else "no rate met the SLO"
    return f"goodput {rec['goodput']:,.2f} req/s ({held})"
