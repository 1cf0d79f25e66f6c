"""``vllmtune tune``: search a space of knobs for the configuration with the most goodput at an SLO.

The space (:mod:`vllmtune.tune.space`) is pruned before any server starts (profile checks and
``fit``); the search (:mod:`vllmtune.tune.engine`) runs Optuna's TPE, one server per trial; the
report (:mod:`vllmtune.tune.report`) gives the table, the winner's margin with a CI, OUT/best.yaml
(extends the input, only the changed fields), its diff against the input and a Pareto plot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtune.bench.slo import parse_slo
from vllmtune.errors import TuneError
from vllmtune.profile.loader import load_profile
from vllmtune.tune import report
from vllmtune.tune.args import TuneArgs
from vllmtune.tune.engine import Runtime, UpRuntime, parent_ref, search, trial_document
from vllmtune.tune.space import Config, Knob, Pruned, describe, input_config, parse_space, prune

__all__ = ["TuneArgs", "TuneError", "TuneResult", "run"]

# the stated per-trial estimate of --dry-run: a server start, then the max-rate search's runs
START_ESTIMATE_S = 120.0
RUN_ESTIMATE_S = 30.0
PRUNED_SHOWN = 20
TARGETS = ("docker", "compose", "kubernetes")


@dataclass
class TuneResult:
    """What ``tune`` found (or, with --dry-run, would search): ``data`` for --output json (also
    OUT/tune.json), ``lines`` for people; ``notes`` are what it wrote."""

    data: dict[str, Any]
    lines: list[str]
    notes: list[str] = field(default_factory=list)


def _space_lines(knobs: list[Knob], valid: list[Config], pruned: list[Pruned]) -> list[str]:
    n = len(valid) + len(pruned)
    lines = [f"space after pruning: {len(knobs)} knobs, {n} configurations, {len(valid)} can run, {len(pruned)} pruned"]
    for i, k in enumerate(knobs):
        kept = [v for v in k.values if any(c[i] == v for c in valid)]
        lines.append(f"  {k.name}: " + " ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in kept))
    if pruned:
        lines.append("pruned before any server starts:")
        lines += [f"  {describe(knobs, p.config)}: {p.reason}" for p in pruned[:PRUNED_SHOWN]]
        if len(pruned) > PRUNED_SHOWN:
            lines.append(f"  ... {len(pruned) - PRUNED_SHOWN} more (--output json lists them all)")
    return lines


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _budget(args: TuneArgs, valid: list[Config], first: Config) -> int:
    """Servers the search starts at most: --trials, or every runnable configuration (and the input
    when a knob of it is unset, so that it is not a point of the space)."""
    return min(args.trials, len(valid) + (first not in valid and any(v is None for v in first)))


def _budget_lines(args: TuneArgs, valid: list[Config], trials: int) -> list[str]:
    per = START_ESTIMATE_S + args.rate_trials * RUN_ESTIMATE_S
    return [
        f"trial budget: {trials} servers (--trials {args.trials}; {len(valid)} configurations of the space can "
        "run; the input profile first)",
        f"estimated time: {trials} x ({START_ESTIMATE_S:.0f} s start + {args.rate_trials} rate runs x "
        f"{RUN_ESTIMATE_S:.0f} s) = {_duration(trials * per)} (a stated estimate per trial, not a measurement)",
    ]


def run(args: TuneArgs, say: Callable[[str], None], runtime: Runtime | None = None) -> TuneResult:
    """Prune, then (unless --dry-run) search and report."""
    parse_slo(args.slo)  # the user's own input first
    if args.trials < 1:
        raise TuneError(f"--trials must be at least 1, not {args.trials}")
    if args.rate_trials < 2:
        raise TuneError(f"--rate-trials must be at least 2 (a closed-loop run, then rates), not {args.rate_trials}")
    lp = load_profile(args.profile)
    knobs = parse_space(args.space, lp)
    if not knobs:
        raise TuneError("nothing to tune: the profile's pinned vLLM has none of the default knobs", hint="give --space")
    valid, pruned = prune(knobs, lp)
    if not valid:
        raise TuneError(
            f"every configuration of the space was pruned ({len(pruned)}), e.g. "
            f"{describe(knobs, pruned[0].config)}: {pruned[0].reason}",
            hint="widen the space or fix the profile",
        )
    first = input_config(knobs, lp)
    data: dict[str, Any] = {
        "profile": args.profile,
        "slo": args.slo,
        "knobs": {k.name: list(k.values) for k in knobs},
        "configurations": len(valid) + len(pruned),
        "runnable": len(valid),
        "pruned": [{"values": list(p.config), "config": describe(knobs, p.config), "reason": p.reason} for p in pruned],
        "trial_budget": _budget(args, valid, first),
    }
    lines = _space_lines(knobs, valid, pruned) + _budget_lines(args, valid, data["trial_budget"])
    if first not in valid:
        if any(v is None for v in first):
            lines.append(f"the input profile ({describe(knobs, first)}: unset is vLLM's default) is measured first")
        else:
            lines.append("the input profile's own configuration is pruned: it is not measured")
    if args.dry_run:
        data["estimate_s"] = data["trial_budget"] * (START_ESTIMATE_S + args.rate_trials * RUN_ESTIMATE_S)
        return TuneResult(data, [*lines, "--dry-run: no server started"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for line in lines:
        say(line)
    found = search(args, lp, knobs, valid, first, runtime or UpRuntime(args.runtime, args.timeout), say)
    records = found.records
    done = sorted((r for r in records if r["status"] == "done"), key=lambda r: -float(r["goodput"]))
    best = done[0] if done else None
    data.update(
        {
            "trials": records,
            "pruned_suggestions": found.pruned_suggestions,
            "resumed": found.resumed,
            "best": best["trial"] if best else None,
        }
    )
    table = report.table(knobs, records, best["trial"] if best else None)
    lines = [*table, ""]
    notes: list[str] = []
    if best is None:
        lines.append("no trial was measured (every server failed to start): no best.yaml")
    else:
        base = next((r for r in done if r["trial"] == 0 and tuple(r["config"]) == first), None)
        runner = done[1] if len(done) > 1 else None
        vs_runner = report.margin(best, runner, args.slo, args.seed)
        vs_input = report.margin(best, base, args.slo, args.seed) if base is not best else None
        data["vs_runner_up"], data["vs_input"] = vs_runner, vs_input
        lines.append(f"best: trial {best['trial']}, {describe(knobs, tuple(best['config']))}: "
                     f"goodput {best['goodput']:,.2f} req/s at {args.slo}")  # fmt: skip
        lines.append(report.margin_line("the runner-up", vs_runner))
        lines.append(
            "vs the input profile: it is the best"
            if base is best
            else report.margin_line("the input profile", vs_input)
        )
        lines.append(report.CI_NOTE)
        data["best_profile"], data["changes"], data["rendered_for"] = _write_best(args, lp, knobs, best, out)
        lines += ["changes from the input:", *(f"  {c}" for c in data["changes"] or ["(none: the input is the best)"])]
        notes.append(f"wrote {out / 'best.yaml'} (renders for {', '.join(data['rendered_for'])}), {out / 'best.diff'}")
    notes.append(report.pareto(records, out / "pareto.png", lp.profile.resources.gpus))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "tune.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    notes.append(f"wrote {out / 'trials.jsonl'}, {out / 'table.md'}, {out / 'tune.json'}")
    return TuneResult(data, lines, notes)


def _write_best(
    args: TuneArgs, lp: Any, knobs: list[Knob], best: dict[str, Any], out: Path
) -> tuple[str, list[str], list[str]]:
    """OUT/best.yaml (validated, rendered for every deployment target) and OUT/best.diff."""
    from vllmtune.diffing import diff_profiles
    from vllmtune.plan.planner import load_plan
    from vllmtune.render import render

    path = out / "best.yaml"
    title = (
        f"vllmtune tune: the best of {len(knobs)} knobs, trial {best['trial']} ({best['goodput']:,.2f} req/s goodput)"
    )
    path.write_text(trial_document(knobs, tuple(best["config"]), lp, parent_ref(args.profile, out), title))
    plan = load_plan(str(path))
    rendered = []
    for target in TARGETS:
        if target == "kubernetes" or not plan.single_node_only(target):  # multi-node: kubernetes only
            render(plan, target)
            rendered.append(target)
    d = diff_profiles(args.profile, str(path), "docker")
    (out / "best.diff").write_text(d["diff"])
    return str(path), list(d["changes"]), rendered
