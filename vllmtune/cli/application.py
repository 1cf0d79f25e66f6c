"""The typer app: one command per module of :mod:`vllmtune.commands`, its options generated from
that command's ``Args`` (:func:`vllmtune.cli.typed.command`), its result printed by
:mod:`vllmtune.cli.printers`. The help text of each command is its function's docstring here."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

import vllmtune.cli.printers as printers
from vllmtune import __version__
from vllmtune.bench.command import BenchArgs, CompareArgs
from vllmtune.cache.config import ServeConfig
from vllmtune.cli.typed import command
from vllmtune.commands.cache import BuildImageArgs, StatsArgs
from vllmtune.commands.diff import DiffArgs, DriftArgs, RenderCheckArgs
from vllmtune.commands.explain import ExplainArgs, FlagsArgs, PresetsArgs, SchemaArgs
from vllmtune.commands.fit import FitArgs
from vllmtune.commands.init import InitArgs
from vllmtune.commands.render import RenderArgs
from vllmtune.commands.up import DownArgs, LogsArgs, PsArgs, UpArgs
from vllmtune.commands.validate import ValidateArgs
from vllmtune.ladder.args import LadderArgs
from vllmtune.tune.args import TuneArgs

EPILOG = (
    "Exit codes: 0 ok, 1 a problem in your input or environment (the message says how "
    "to fix it), 2 wrong usage, 3 a bug in vllmtune (please report it), 130 interrupted."
)

app = typer.Typer(
    name="vllmtune",
    help="Turn declarative YAML profiles into running, tuned vLLM servers.\n\n\b\n"
    "  vllmtune init my-llm --preset all-levers > profile.yaml\n"
    "  vllmtune validate profile.yaml\n"
    "  vllmtune explain profile.yaml\n"
    "  vllmtune render profile.yaml -t compose -o compose.yaml",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        printers.echo(f"vllmtune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Turn declarative YAML profiles into running, tuned vLLM servers."""


@command(app, InitArgs)
def init(args: InitArgs) -> None:
    """Print a new profile, fully written out from a preset.

    \b
    Example:  vllmtune init llama-8b --preset all-levers > profile.yaml
    Presets:  baseline, prefix-cache, awq, speculative, all-levers, cpu-tiny.
    """
    from vllmtune.commands import init as cmd

    printers.echo(cmd.run(args))


@command(app, ValidateArgs, output=True)
def validate(args: ValidateArgs, output: str) -> None:
    """Check profiles: schema, cross-field rules, and that the pinned vLLM version can
    express every lever (every target the profile deploys to is rendered in memory).

    Example:  vllmtune validate profile.yaml profiles/*.yaml
    """
    from vllmtune.commands import validate as cmd

    _exit(printers.validate(cmd.run(args), output))


@command(app, RenderArgs)
def render(args: RenderArgs) -> None:
    """Render a profile for a target. Output is deterministic and ends with a newline.

    \b
    Examples:
      vllmtune render profile.yaml > run.sh
      vllmtune render profile.yaml -t compose -o compose.yaml
      vllmtune render profile.yaml -t kubernetes -o k8s/
      vllmtune render profile.yaml -t quantize-job | kubectl apply -f -
      vllmtune render profile.yaml -t grafana -o dashboard.json

    A profile with resources.nodes > 1 renders for kubernetes only (a LeaderWorkerSet).
    """
    from vllmtune.commands import render as cmd

    _exit(printers.render(cmd.run(args)))


@command(app, ExplainArgs, output=True)
def explain(args: ExplainArgs, output: str) -> None:
    """Show each lever: its state, the vLLM flags it renders to, what it buys, warnings."""
    from vllmtune.commands import explain as cmd

    _exit(printers.explain(cmd.explain(args), output))


@command(app, PresetsArgs, output=True)
def presets(args: PresetsArgs, output: str) -> None:
    """List the built-in presets: name, the levers each turns on, what it is.

    Use one with vllmtune init NAME --preset PRESET, or preset:PRESET wherever a profile goes
    (vllmtune up preset:cpu-tiny, extends: cpu-tiny).
    """
    from vllmtune.commands import explain as cmd

    _exit(printers.presets(cmd.presets(args), output))


@command(app, SchemaArgs)
def schema(args: SchemaArgs) -> None:
    """Print the profile JSON Schema (for yaml-language-server and other editors).

    Example:  vllmtune schema > profile.schema.json, then start profiles with
    # yaml-language-server: $schema=./profile.schema.json
    """
    from vllmtune.commands import explain as cmd

    printers.echo(json.dumps(cmd.schema(args), indent=2))


@command(app, FlagsArgs, output=True)
def flags(args: FlagsArgs, output: str) -> None:
    """List the flags a vLLM version accepts, or what changed between two versions.

    \b
    Examples:  vllmtune flags --vllm 0.32.0 --grep prefix
               vllmtune flags --vllm 0.32.0 --diff 0.11.0
    """
    from vllmtune.commands import explain as cmd

    _exit(printers.flags(cmd.flags(args), args, output))


@command(app, UpArgs, output=True)
def up(args: UpArgs, output: str) -> None:
    """Start a vLLM server from a profile and wait until it answers: with prompt_cache
    enabled, the whole stack (vLLM, the cache proxy, Redis for backend redis).

    \b
    Examples:
      vllmtune up profile.yaml --gpus all -d
      vllmtune up preset:cpu-tiny --runtime local -d --port 8011
    Without --detach the log streams until Ctrl-C, which stops the server.
    """
    from vllmtune.cli.progress import phases
    from vllmtune.commands import up as cmd

    with phases(cmd.server_name(args), enabled=output == "text") as progress:
        result = cmd.up(args, progress)
    printers.up(result, output)
    if not args.detach:
        printers.echo("streaming logs; Ctrl-C stops the server")
        cmd.follow(args, result.result.name)


@command(app, DownArgs)
def down(args: DownArgs) -> None:
    """Stop and remove a server: with the prompt cache every part (vLLM, the proxy, Redis) and the
    network. For a profile whose server is not running there is nothing to stop (exit 0); a NAME
    that matches no server exits 1 and lists the servers that exist."""
    from vllmtune.commands import up as cmd

    printers.echo(cmd.down(args))


@command(app, PsArgs, output=True)
def ps(args: PsArgs, output: str) -> None:
    """List servers vllmtune started: profile, backend, port, state, health, uptime, served models;
    a stack's parts (role, container or pid, state, port) below it."""
    from vllmtune.commands import up as cmd

    _exit(printers.ps(cmd.ps(args), output))


@command(app, LogsArgs)
def logs(args: LogsArgs) -> None:
    """Print a server's log (container or process)."""
    from vllmtune.commands import up as cmd

    for line in cmd.logs(args):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@command(app, BenchArgs, output=True)
def bench(args: BenchArgs, output: str) -> None:
    """Load-test an endpoint and report latency, TTFT, inter-token latency, throughput,
    tokens per call, server-side prefix-cache counters and quality.

    \b
    Examples:
      vllmtune bench http://localhost:8000 --workload shared-prefix -n 500 -c 32 -o base.json
      vllmtune bench profile.yaml --workload cases.jsonl --rate 20 --poisson -o awq.json
      vllmtune bench --calibrate
    API key: $VLLM_API_KEY or $OPENAI_API_KEY. Ctrl-C stops early and still writes the partial result.
    """
    from vllmtune.bench.command import BenchError
    from vllmtune.cli.progress import counter
    from vllmtune.commands import bench as cmd

    def say(msg: str) -> None:
        if output == "text":
            printers.note(f"bench: {msg}")

    with counter("bench", args.requests, enabled=output == "text" and not args.find_max_rate) as progress:
        outcome = cmd.bench(args, progress, say)
    _exit(printers.bench(outcome, output))
    if outcome.problem:
        raise BenchError(outcome.problem)


@command(app, CompareArgs)
def compare(args: CompareArgs) -> None:
    """Compare benchmark results: p50/p99 latency, TTFT, tokens per call, output tok/s, quality
    and relative cost (1.00x for the first), with 95% confidence intervals on the deltas.

    \b
    Example:  vllmtune compare base.json prefix.json awq.json spec.json --gpu-hour-usd 2.49
    """
    from vllmtune.commands import bench as cmd

    result = cmd.compare(args)
    printers.warn(result.warnings)
    printers.echo(result.text)
    if args.plot:
        printers.note(f"wrote {args.plot}")


@command(app, DiffArgs, output=True)
def diff(args: DiffArgs, output: str) -> None:
    """What changes between two profiles, as lever changes in words and as a unified diff of
    the rendered output; or between a profile and a committed / hand-edited file. Exit 1 when
    they differ (like diff).

    \b
    Examples:
      vllmtune diff baseline.yaml tuned.yaml -t compose
      vllmtune diff profile.yaml --against deploy/compose.yaml
      vllmtune diff profile.yaml --against k8s/
    """
    from vllmtune.commands import diff as cmd

    if (args.b is None) == (args.against is None):
        raise typer.BadParameter("give a second profile or --against FILE (one of them)")
    _exit(printers.diff(cmd.diff(args), output))


@command(app, RenderCheckArgs, name="render-check", output=True)
def render_check(args: RenderCheckArgs, output: str) -> None:
    """Fail when committed rendered files are stale versus their profiles (the pre-commit
    hook vllmtune-render-check). --fix re-renders them.

    \b
    .vllmtune-render.yaml:
      - {profile: profiles/llama.yaml, target: compose, output: deploy/compose.yaml}
      - {profile: profiles/llama.yaml, target: kubernetes, output: deploy/k8s/}
    """
    from vllmtune.commands import diff as cmd

    _exit(printers.render_check(cmd.render_check(args), args.fix, output))


@command(app, DriftArgs, output=True)
def drift(args: DriftArgs, output: str) -> None:
    """Compare what runs (docker container, local process, or a Kubernetes dump) with the
    profile: image tag, vLLM args, environment, GPUs. Exit 1 on drift."""
    from vllmtune.commands import diff as cmd

    _exit(printers.drift(cmd.drift(args), output))


@command(app, FitArgs, output=True)
def fit(args: FitArgs, output: str) -> None:
    """Will it fit? Weights (target and draft), reserve (with its error band), KV cache bytes per
    token, KV tokens available, concurrent sequences at max_model_len, and a verdict: fits, may
    not fit (inside the error band), does not fit. Exit 1 when it does not fit.

    \b
    Examples:
      vllmtune fit profile.yaml --gpu H100-80GB
      vllmtune fit profile.yaml --gpu-memory 23.58GiB
      vllmtune fit profile.yaml --gpu L4 --suggest
      vllmtune fit profile.yaml --from-log vllm.log
    Model facts come from a local config.json, a built-in catalog, or the Hub when online.
    """
    from vllmtune.commands import fit as cmd

    _exit(printers.fit(cmd.run(args), output))


@command(app, LadderArgs, output=True)
def ladder(args: LadderArgs, output: str) -> None:
    """The five-lever ladder: baseline (every lever off), then + prompt cache, + prefix caching,
    + batching, + quantization, + speculative decoding; each rung brought up, measured with the
    same seeded workload, torn down; then the table: figures with 95% CIs, each change from the
    previous rung as better, worse or no significant change (its CI includes 0), and the relative
    cost in server-busy seconds per successful request (prompt-cache hits cost 0). Rungs the profile does not configure
    are skipped; a rung that cannot start is reported with its reason and its lever is not
    carried to the next rungs.

    \b
    Example:
      vllmtune ladder profile.yaml --workload cases.jsonl -n 300 --gpu-hour-usd 2.49 -o ladder/
    """
    from vllmtune.commands import ladder as cmd

    def say(msg: str) -> None:
        if output == "text":
            printers.note(f"ladder: {msg}")

    summary = cmd.run_ladder(args, say)
    printers.ladder(summary, args.out, output)
    if summary["error_rate_failures"]:
        raise cmd.LadderError(
            "too many requests failed on "
            + ", ".join(summary["error_rate_failures"])
            + f" (above --max-error-rate {args.max_error_rate:.1%}): see the first errors above and in report.md"
        )


@command(app, TuneArgs, output=True)
def tune(args: TuneArgs, output: str) -> None:
    """Search knobs for the most goodput at an SLO: the space (--space, or the profile's levers the
    pinned vLLM has) pruned before any server starts (profile checks and fit), then Optuna's TPE,
    seeded: each trial a profile extending the input, started, measured at the highest rate meeting
    --slo (bench --find-max-rate, bounded), stopped, recorded in OUT/trials.jsonl (--resume repeats
    no finished trial; a failed start is recorded and never retried). Then the table, the winner vs
    the runner-up and vs the input with 95% CIs, OUT/best.yaml (only the changed fields), its diff,
    and a Pareto plot.

    \b
    Example:
      vllmtune tune profile.yaml --workload traffic.jsonl --slo ttft_p99=800ms,itl_p99=60ms \\
        --space batching.max_num_batched_tokens=2048..16384 --space batching.max_num_seqs=64..512 \\
        --space speculative.num_tokens=0..6 --trials 24 -o tune/
    """
    from vllmtune.commands import tune as cmd

    def say(msg: str) -> None:
        if output == "text":
            printers.note(f"tune: {msg}")

    printers.tune(cmd.run(args, say), output)


cache_app = typer.Typer(help="Lever 1, the prompt-result cache proxy.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@command(cache_app, ServeConfig, name="serve")
def _cache_serve(args: ServeConfig) -> None:
    """Serve the cache proxy: clients point at it exactly as at vLLM. Deterministic requests
    (temperature <= --max-temperature, n = 1) are answered from the cache; headers X-Cache
    (HIT/MISS/BYPASS) and Age; Cache-Control no-cache / no-store and a body "cache": false are
    honoured; /metrics and /cache/stats report hits, misses, bypasses and tokens saved.

    \b
    Example:
      vllmtune cache serve --upstream http://localhost:8000 --backend redis --redis-url redis://localhost:6379/0
    """
    from vllmtune.commands import cache as cmd

    cmd.serve(args)


@command(cache_app, StatsArgs, name="stats", output=True)
def cache_stats(args: StatsArgs, output: str) -> None:
    """Hits, misses, bypasses (by reason), hit ratio, tokens and cost saved."""
    from vllmtune.commands import cache as cmd

    _exit(printers.cache_stats(cmd.stats(args), output))


@command(cache_app, BuildImageArgs, name="build-image")
def _cache_build_image(args: BuildImageArgs) -> None:
    """Build the cache-proxy image from the installed package (no downloads but the base image).

    \b
    Examples:
      vllmtune cache build-image
      vllmtune cache build-image --tag registry.example.com/team/cache-proxy:0.1.0 --push
    Then set prompt_cache.image to registry.example.com/team/cache-proxy (or up --cache-image).
    """
    from vllmtune.commands import cache as cmd

    printers.echo(cmd.build_image(args, printers.note))
