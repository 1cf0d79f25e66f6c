"""The command line: parse options, call one function, map errors to exit codes.

Exit codes: 0 ok, 1 a problem you can fix (the message says how), 2 wrong usage,
3 a bug in vllmtune (please report it), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer

from vllmtune import __version__
from vllmtune.errors import ProfileError, VllmtuneError

# [project.urls] labels, best first, for "where to report a bug"
REPORT_LABELS = ("issues", "issue tracker", "bug tracker", "bugs", "tracker", "homepage", "source", "repository")
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


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


ProfileArg = Annotated[
    str, typer.Argument(help="Profile YAML file, or preset:NAME for a built-in preset.", metavar="PROFILE")
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", help="text for people, json for scripts.")]


def _echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _warn(lines: list[str] | tuple[str, ...]) -> None:
    for line in lines:
        sys.stderr.write(f"warning: {line}\n")


def _version(value: bool) -> None:
    if value:
        _echo(f"vllmtune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Turn declarative YAML profiles into running, tuned vLLM servers."""


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Name of the new profile (lowercase, digits, '-').")],
    preset: Annotated[str, typer.Option("--preset", "-p", help="Built-in preset to start from.")] = "all-levers",
) -> None:
    """Print a new profile, fully written out from a preset.

    \b
    Example:  vllmtune init llama-8b --preset all-levers > profile.yaml
    Presets:  baseline, prefix-cache, awq, speculative, all-levers, cpu-tiny.
    """
    from vllmtune.scaffold import new_profile

    _echo(new_profile(name, preset))


@app.command()
def validate(
    profiles: Annotated[list[str], typer.Argument(help="One or more profile files.", metavar="PROFILE...")],
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="Also fail when the model does not fit this GPU (default: resources.gpu_type)."),
    ] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Check profiles: schema, cross-field rules, and that the pinned vLLM version can
    express every lever (every target the profile deploys to is rendered in memory).

    Example:  vllmtune validate profile.yaml profiles/*.yaml
    """
    from vllmtune.validate import validate_many

    results = validate_many(profiles, gpu)
    ok = all(r["ok"] for r in results)
    if output is OutputFormat.json:
        _echo(json.dumps(results, indent=2))
    else:
        for r in results:
            _warn(r["warnings"])
            if r["ok"]:
                _echo(f"ok: {r['file']} ({r['name']}, vLLM {r['vllm_version']}, {r['served_name']})")
            else:
                sys.stderr.write("\n".join(r["errors"]) + "\n")
    if not ok:
        raise typer.Exit(1)


@app.command()
def render(
    profile: ProfileArg,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="docker (a docker run script), compose, or kubernetes (k8s); companions: quantize-job "
            "(Kubernetes Job producing quantization.checkpoint), quantize-script (the same as docker run), "
            "grafana (dashboard JSON).",
        ),
    ] = "docker",
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write here instead of stdout. kubernetes with a directory (k8s/): one file per "
            "object; '-' is stdout.",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not use or fill the render cache (~/.cache/vllmtune).")
    ] = False,
) -> None:
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
    from vllmtune.render_cmd import render_command

    render_command(profile, target, out, no_cache)


@app.command()
def explain(profile: ProfileArg, output: OutputOpt = OutputFormat.text) -> None:
    """Show each lever: its state, the vLLM flags it renders to, what it buys, warnings."""
    from vllmtune.explain import explain_data, explain_table
    from vllmtune.plan import load_plan

    plan = load_plan(profile)
    if output is OutputFormat.json:
        _echo(json.dumps(explain_data(plan), indent=2))
        return
    from rich.console import Console

    console = Console()
    # the title as a plain line: rich's table title would restyle it (it capitalised "my-llm")
    console.print(f"{plan.name}: vLLM {plan.vllm_version}, {plan.served_name}", markup=False, highlight=False)
    console.print(explain_table(plan))
    console.print(f"image {plan.image}; entrypoint {' '.join(plan.entrypoint)}")
    for w in plan.warnings:
        console.print(f"warning: {w}", style="yellow", markup=False, highlight=False)


@app.command()
def presets(output: OutputOpt = OutputFormat.text) -> None:
    """List the built-in presets: name, the levers each turns on, what it is.

    Use one with vllmtune init NAME --preset PRESET, or preset:PRESET wherever a profile goes
    (vllmtune up preset:cpu-tiny, extends: cpu-tiny).
    """
    from vllmtune.presets import preset_rows

    rows = preset_rows()
    if output is OutputFormat.json:
        _echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "LEVERS ON", "DESCRIPTION")] + [
        (r["name"], ",".join(r["levers_on"]) or "-", r["description"]) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for row in table:
        _echo(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())


@app.command()
def schema() -> None:
    """Print the profile JSON Schema (for yaml-language-server and other editors).

    Example:  vllmtune schema > profile.schema.json, then start profiles with
    # yaml-language-server: $schema=./profile.schema.json
    """
    from vllmtune.profile.schema import profile_schema

    _echo(json.dumps(profile_schema(), indent=2))


@app.command()
def flags(
    vllm: Annotated[str, typer.Option("--vllm", help="vLLM version to list.")] = "0.32.0",
    diff: Annotated[
        str | None, typer.Option("--diff", help="Show what changed from this older version to --vllm.")
    ] = None,
    entrypoint: Annotated[
        str, typer.Option("--entrypoint", help="serve (vllm serve) or api_server (the image entrypoint up to 0.11.0).")
    ] = "serve",
    grep: Annotated[str | None, typer.Option("--grep", help="Only flags whose name or help contains this.")] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """List the flags a vLLM version accepts, or what changed between two versions.

    \b
    Examples:  vllmtune flags --vllm 0.32.0 --grep prefix
               vllmtune flags --vllm 0.32.0 --diff 0.11.0
    """
    from vllmtune.flags.report import diff_flags, list_flags

    if entrypoint not in ("serve", "api_server"):
        raise typer.BadParameter("serve or api_server", param_hint="--entrypoint")
    ep: Any = entrypoint
    if diff:
        data: Any = diff_flags(diff, vllm, ep)
        if output is OutputFormat.json:
            _echo(json.dumps(data, indent=2))
            return
        _echo(f"vLLM {diff} -> {vllm} ({entrypoint})")
        for n in data["added"]:
            _echo(f"+ {n}")
        for n in data["removed"]:
            _echo(f"- {n}")
        for c in data["changed"]:
            _echo(f"~ {c['flag']}: {c['change']}")
        for v in data["values"]:
            _echo(f"~ {v['set']}: +{','.join(v['added']) or '-'} -{','.join(v['removed']) or '-'}")
        return
    rows = list_flags(vllm, ep, grep)
    if output is OutputFormat.json:
        _echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        spell = "/".join(r.get("spellings", [r["flag"]]))
        choices = f" {{{','.join(r['choices'])}}}" if r.get("choices") else ""
        _echo(f"{spell}{choices}  [{r['kind']}]  {r['help'][:100]}")


class Runtime(str, Enum):
    docker = "docker"
    local = "local"


class _Progress:
    """Start-up progress on stderr: a live line on a terminal, one line per phase otherwise."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled
        self.live: Any = None
        self.start = 0.0
        self.phase = "starting"

    def __enter__(self) -> _Progress:
        import time

        self.start = time.monotonic()
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner

            self._spinner = Spinner("dots", text=self._text())
            self.live = Live(self._spinner, console=Console(stderr=True), refresh_per_second=4, transient=True)
            self.live.__enter__()
            import threading

            self._stop = threading.Event()
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _text(self) -> str:
        import time

        return f"{self.name}: {self.phase} ({time.monotonic() - self.start:.0f} s)"

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._spinner.update(text=self._text())

    def __call__(self, phase: str, elapsed: float) -> None:
        self.phase = phase
        if not self.enabled:
            return
        if self.live is not None:
            self._spinner.update(text=self._text())
        else:
            sys.stderr.write(f"{self.name}: {phase} ({elapsed:.1f} s)\n")

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self._stop.set()
            self.live.__exit__(None, None, None)


@app.command()
def up(
    profile: ProfileArg,
    runtime: Annotated[
        Runtime, typer.Option("--runtime", "-r", help="docker (Docker SDK) or local (a vllm serve process).")
    ] = Runtime.docker,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus", help="all, a count (2) or device ids (0,1), as docker run --gpus. Default: resources.gpus."
        ),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Serve on this port instead of server.port.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (local runtime default 127.0.0.1).")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once healthy and leave it running.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for health (big models download for a while).")
    ] = 1800.0,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a running server whose launch differs.")] = False,
    keep_on_failure: Annotated[
        bool, typer.Option("--keep-on-failure", help="Leave a failed server in place to inspect it.")
    ] = False,
    cache_image: Annotated[
        str | None,
        typer.Option(
            "--cache-image",
            help="The cache-proxy image (REGISTRY/NAME:TAG) instead of prompt_cache.image:VERSION "
            "(built here when missing).",
        ),
    ] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Start a vLLM server from a profile and wait until it answers: with prompt_cache
    enabled, the whole stack (vLLM, the cache proxy, Redis for backend redis).

    \b
    Examples:
      vllmtune up profile.yaml --gpus all -d
      vllmtune up preset:cpu-tiny --runtime local -d --port 8011
    Without --detach the log streams until Ctrl-C, which stops the server.
    """
    from vllmtune.runtime.up import UpOptions, follow_until_interrupted
    from vllmtune.runtime.up import up as do_up

    opts = UpOptions(
        runtime=runtime.value,
        gpus=gpus,
        host=host,
        port=port,
        timeout=timeout,
        replace=replace,
        keep_on_failure=keep_on_failure,
        cache_image=cache_image,
    )
    from vllmtune.profile.loader import load_profile

    # phase lines name the server (as ps, down and logs do), not the file or preset: argument
    server_name = load_profile(profile).profile.name
    with _Progress(server_name, enabled=output is OutputFormat.text) as progress:
        result = do_up(profile, opts, progress)
    estimate = _kv_estimate(profile) if result.kv_cache else None
    if output is OutputFormat.json:
        _echo(json.dumps({**result.to_json(), "kv_cache_estimate_tokens": estimate}, indent=2))
    else:
        what = {"unchanged": "already running, unchanged", "replaced": "replaced and ready", "started": "ready"}[
            result.status
        ]
        t = result.timings
        extra = f" in {t['total_s']:.1f} s (server {t['server_start_s']:.1f} s)" if t else ""
        _echo(
            f"{result.name}: {what}{extra}: {result.endpoint} (model {result.model}, {result.backend} {result.ident})"
        )
        if result.vllm_endpoint and result.vllm_endpoint != result.endpoint:
            _echo(f"  through the prompt-cache proxy; vLLM itself: {result.vllm_endpoint}")
        if result.kv_cache:
            kv = result.kv_cache
            est = f" (vllmtune fit estimated {estimate:,})" if estimate is not None else ""
            _echo(
                f"  vLLM reports KV cache {int(kv.get('kv_cache_tokens', 0)):,} tokens{est}, max "
                f"concurrency {kv.get('max_concurrency', 0):.2f}x at "
                f"{int(kv.get('max_concurrency_tokens_per_request', 0)):,} tokens/request"
            )
    if not detach:
        _echo("streaming logs; Ctrl-C stops the server")
        follow_until_interrupted(result.name, runtime.value)


def _kv_estimate(profile: str) -> int | None:
    """vllmtune fit's KV-token estimate, shown beside what vLLM reports (None if unknown)."""
    try:
        from vllmtune.fit import fit_report

        report = fit_report(profile, None, False)
    except VllmtuneError:
        return None
    block = report.get("cpu") or report.get("per_gpu") or {}
    return int(block["kv_tokens"]) if "kv_tokens" in block else None


@app.command()
def down(
    target: Annotated[
        str, typer.Argument(help="Server name, or the profile file it came from.", metavar="NAME|PROFILE")
    ],
    runtime: Annotated[
        Runtime | None, typer.Option("--runtime", "-r", help="Only this backend (default: both).")
    ] = None,
) -> None:
    """Stop and remove a server: with the prompt cache every part (vLLM, the proxy, Redis) and the
    network. For a profile whose server is not running there is nothing to stop (exit 0); a NAME
    that matches no server exits 1 and lists the servers that exist."""
    from vllmtune.runtime.manage import down as do_down

    _echo(do_down(target, runtime.value if runtime else None))


@app.command()
def ps(
    runtime: Annotated[
        Runtime | None, typer.Option("--runtime", "-r", help="Only this backend (default: both).")
    ] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """List servers vllmtune started: profile, backend, port, state, health, uptime, served models;
    a stack's parts (role, container or pid, state, port) below it."""
    from vllmtune.runtime.manage import ps_rows

    rows = ps_rows(runtime.value if runtime else None)
    if output is OutputFormat.json:
        _echo(json.dumps(rows, indent=2))
        return
    if not rows:
        _echo("no servers started by vllmtune")
        return
    # MODELS: every name the server answers to (base model, then LoRA adapters).
    header = ("NAME", "BACKEND", "PORT", "STATE", "HEALTH", "UPTIME", "ID", "MODELS")
    table = [header] + [
        (
            r["name"],
            r["backend"],
            str(r["port"]),
            r["state"],
            r["health"],
            r["uptime"],
            r["ident"],
            ",".join(r["served_models"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    _echo("  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip())
    for row, r in zip(table[1:], rows, strict=True):
        _echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        parts = r.get("parts") or []
        if len(parts) > 1:  # a stack: vLLM and its sidecars, one line each (role, container/pid, state)
            width = max(len(str(p["name"])) for p in parts)
            for p in parts:
                port = f"port {p['port']}" if p.get("port") else ""
                _echo(f"  {p['role']:<7} {p['name']!s:<{width}}  {p['state']:<8} {port}".rstrip())


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Server name (see vllmtune ps).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
    runtime: Annotated[Runtime | None, typer.Option("--runtime", "-r", help="Only this backend.")] = None,
) -> None:
    """Print a server's log (container or process)."""
    from vllmtune.runtime.manage import logs as do_logs

    for line in do_logs(name, follow, tail, runtime.value if runtime else None):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@app.command()
def bench(
    target: Annotated[
        str,
        typer.Argument(
            help="http://HOST:PORT[/v1] of any OpenAI-compatible server, or a profile.", metavar="URL|PROFILE"
        ),
    ] = "",
    workload: Annotated[
        str,
        typer.Option(
            "--workload",
            "-w",
            help="shared-prefix (prefix caching), duplicates (prompt cache), mixed, random, multi-turn "
            "(conversations growing turn by turn), or a file: JSONL of eval cases {input, expected?, max_tokens?} "
            "or OpenAI chat requests {messages, max_tokens?}, or ShareGPT JSON [{conversations: [...]}].",
        ),
    ] = "shared-prefix",
    requests: Annotated[int, typer.Option("--requests", "-n", help="Measured requests (after warm-up).")] = 100,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight at most.")] = 16,
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Open loop: requests per second (default: closed loop at --concurrency)."),
    ] = None,
    poisson: Annotated[bool, typer.Option("--poisson", help="Poisson arrivals at --rate (default constant).")] = False,
    duration: Annotated[float | None, typer.Option("--duration", help="Stop sending after this many seconds.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Requests sent first and left out of the figures.")] = 0,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Streaming (measures TTFT and inter-token latency) or not.")
    ] = True,
    api: Annotated[
        str, typer.Option("--api", help="chat (/v1/chat/completions) or completions (/v1/completions).")
    ] = "chat",
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Output budget per request (default: the workload's).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Workload and arrival seed: same seed, same requests.")] = 0,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model name (default: the profile's served name, or the server's first)."),
    ] = None,
    label: Annotated[str | None, typer.Option("--label", "-l", help="Name of this config in compare tables.")] = None,
    duplicate_share: Annotated[
        float, typer.Option("--duplicate-share", help="duplicates workload: share of repeated requests.")
    ] = 0.5,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write the result JSON here (for vllmtune compare).")
    ] = None,
    max_error_rate: Annotated[
        float,
        typer.Option("--max-error-rate", help="Exit 1 when more than this share of requests fails (0.05 = 5%)."),
    ] = 0.05,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate", help="Measure this client's own ceiling against an instant stub, and remember it."),
    ] = False,
    burstiness: Annotated[
        float | None,
        typer.Option(
            "--burstiness",
            help="Gamma arrivals at --rate with this shape (vllm bench serve's): 1 = Poisson, below 1 burstier.",
        ),
    ] = None,
    save_requests: Annotated[
        str | None,
        typer.Option("--save-requests", help="Write one JSON line per measured request here (times, tokens, errors)."),
    ] = None,
    find_max_rate: Annotated[
        bool,
        typer.Option(
            "--find-max-rate",
            help="Search the highest request rate meeting --slo: a closed-loop run, then bisection (--max-trials).",
        ),
    ] = False,
    max_trials: Annotated[int, typer.Option("--max-trials", help="--find-max-rate: runs at most.")] = 6,
    slo: Annotated[
        str | None,
        typer.Option(
            "--slo",
            help="Service-level objectives, e.g. ttft_p99=500ms,itl_p99=50ms,e2e_p99=5s (also tpot): reports "
            "goodput, the requests/s meeting every bound (vllm bench serve --goodput), and whether the run meets them.",
        ),
    ] = None,
    ignore_eos: Annotated[
        bool,
        typer.Option("--ignore-eos", help="Ask vLLM to ignore end-of-sequence: every answer runs to its max_tokens."),
    ] = False,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Load-test an endpoint and report latency, TTFT, inter-token latency, throughput,
    tokens per call, server-side prefix-cache counters and quality.

    \b
    Examples:
      vllmtune bench http://localhost:8000 --workload shared-prefix -n 500 -c 32 -o base.json
      vllmtune bench profile.yaml --workload cases.jsonl --rate 20 --poisson -o awq.json
      vllmtune bench --calibrate
    API key: $VLLM_API_KEY or $OPENAI_API_KEY. Ctrl-C stops early and still writes the partial result.
    """
    from vllmtune.bench.command import BenchArgs, BenchError, error_rate_problem, write_result
    from vllmtune.bench.command import calibrate as do_calibrate

    if calibrate:
        figures = do_calibrate()
        if output is OutputFormat.json:
            _echo(json.dumps(figures, indent=2))
        else:
            _echo(
                "client ceiling on this machine: "
                f"{figures['non_streaming_c16_req_s']:,.0f} req/s non-streaming (c=16), "
                f"{figures['streaming_c64_req_s']:,.0f} req/s streaming 16 tokens (c=64)"
            )
        return
    if not target:
        raise BenchError("give an endpoint URL or a profile (or --calibrate)")
    if api not in ("chat", "completions"):
        raise typer.BadParameter("chat or completions", param_hint="--api")
    args = BenchArgs(
        target=target,
        workload=workload,
        requests=requests,
        concurrency=concurrency,
        rate=rate,
        poisson=poisson,
        duration=duration,
        warmup=warmup,
        stream=stream,
        api=api,
        max_tokens=max_tokens,
        seed=seed,
        model=model,
        label=label,
        duplicate_share=duplicate_share,
        slo=slo,
        burstiness=burstiness,
        save_requests=save_requests,
        ignore_eos=ignore_eos,
    )
    if find_max_rate:
        from vllmtune.bench.command import find_max_rate as search

        def say(msg: str) -> None:
            if output is OutputFormat.text:
                sys.stderr.write(f"bench: {msg}\n")

        result = search(args, max_trials, say)
    else:
        result = _run_with_progress(args, enabled=output is OutputFormat.text)
    if save_requests:
        sys.stderr.write(f"wrote {save_requests}" + (" (the best trial's requests)\n" if find_max_rate else "\n"))
    if out:
        write_result(result, out)
        sys.stderr.write(f"wrote {out}\n")
    _warn(result["warnings"])
    if result["partial"]:
        _warn(["interrupted: the result is partial"])
    if output is OutputFormat.json:
        _echo(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2, default=str))
    else:
        _echo(_bench_text(result))
    if result["partial"]:
        raise typer.Exit(130)
    problem = error_rate_problem(result, max_error_rate)
    if problem:
        raise BenchError(problem)


def _run_with_progress(args: Any, enabled: bool) -> Any:
    from vllmtune.bench.command import run_bench

    if not enabled or not sys.stderr.isatty():
        return run_bench(args)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("bench", total=args.requests)
        return run_bench(args, lambda done, total: bar.update(task, completed=done))


def _bench_text(r: dict[str, Any]) -> str:
    s = r["summary"]
    c = r["config"]

    def pct(key: str) -> str:
        m = s[key]
        if not m.get("count"):
            return "-"
        return f"p50 {m['p50']:,.1f}  p90 {m['p90']:,.1f}  p99 {m['p99']:,.1f}  mean {m['mean']:,.1f}"

    lines = [
        f"{r['label']}: {c['workload']} x {s['requests_sent']} requests, c={c['concurrency']}"
        + (f", rate {c['rate']:g}/s {c['arrivals']}" if c["rate"] else "")
        + (", streaming" if c["stream"] else ""),
        f"  ok {s['requests_ok']}/{s['requests_sent']}  errors "
        + (", ".join(f"{kind} {n}" for kind, n in sorted(r["errors"].items())) or "0"),
        f"  throughput   {s['request_throughput']:,.2f} req/s, {s['output_token_throughput']:,.1f} output tok/s, "
        f"{s['tokens_per_call']:.1f} tokens/call",
        f"  e2e ms       {pct('e2e_ms')}",
        f"  TTFT ms      {pct('ttft_ms')}",
        f"  ITL ms/token {pct('itl_token_ms')}",
        f"  tokens/chunk {s['tokens_per_chunk'].get('mean', 0) or 0:.2f}",
    ]
    sm = r["server_metrics"]
    # vLLM >= 0.8 names them prefix_cache_*, older ones gpu_prefix_cache_*; 0 hits is a value, not "absent"
    prefix = "vllm:prefix_cache_" if "vllm:prefix_cache_queries_total" in sm else "vllm:gpu_prefix_cache_"
    q = sm.get(prefix + "queries_total")
    h = sm.get(prefix + "hits_total", 0.0)
    if q:
        lines.append(f"  server prefix cache: {h:,.0f} of {q:,.0f} prompt tokens hit ({h / q:.1%})")
    if r.get("slo"):
        g = r["slo"]
        lines.append(
            f"  goodput      {g['goodput']:,.2f} req/s: {g['good_requests']} of {g['requests_sent']} requests "
            f"({g['good_share']:.1%}) within every bound; SLO " + ("met" if g["met"] else "NOT met")
        )
        for o in g["objectives"]:
            lines.append(
                f"    {o['objective']:<10} {o['observed_ms']:,.1f} ms (limit {o['limit_ms']:,.1f}): "
                + ("ok" if o["met"] else "over")
                + f", {o['requests_within']} requests within"
            )
    if r.get("find_max_rate"):
        f = r["find_max_rate"]
        best, tried = f["max_rate"], len(f["trials"])
        lines.append(
            f"  max rate     {best:,.2f} req/s meets the SLO ({tried} trials; the figures above are that run's)"
            if best is not None
            else f"  max rate     none of {tried} trials met the SLO (the figures above are the last run's)"
        )
    if r["quality"]:
        lines.append(
            f"  quality      {r['quality']['normalized']:.3f} normalized match over {r['quality']['cases']} cases "
            f"(exact {r['quality']['exact']:.3f})"
        )
    return "\n".join(lines)


@app.command()
def compare(
    results: Annotated[
        list[str],
        typer.Argument(help="Result files from vllmtune bench -o; the first is the reference.", metavar="RESULT..."),
    ],
    gpu_hour_usd: Annotated[
        float | None,
        typer.Option("--gpu-hour-usd", help="GPU price per hour: adds $ per 1k requests and per 1M output tokens."),
    ] = None,
    fmt: Annotated[str, typer.Option("--output", help="text, markdown, csv or json.")] = "text",
    plot: Annotated[
        str | None, typer.Option("--plot", help="Write latency CDFs and the cost chart to this PNG.")
    ] = None,
    quality_drop: Annotated[
        float, typer.Option("--quality-drop", help="Flag a quality drop larger than this (0.01 = 1 point).")
    ] = 0.01,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse (exit 1) results that ran different workloads, instead of warning."),
    ] = False,
) -> None:
    """Compare benchmark results: p50/p99 latency, TTFT, tokens per call, output tok/s, quality
    and relative cost (1.00x for the first), with 95% confidence intervals on the deltas.

    \b
    Example:  vllmtune compare base.json prefix.json awq.json spec.json --gpu-hour-usd 2.49
    """
    from vllmtune.bench.command import compare as do_compare

    if fmt not in ("text", "markdown", "csv", "json"):
        raise typer.BadParameter("text, markdown, csv or json", param_hint="--output")
    text, warnings = do_compare(results, gpu_hour_usd, fmt, plot, quality_drop, strict)
    _warn(warnings)
    _echo(text)
    if plot:
        sys.stderr.write(f"wrote {plot}\n")


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="A profile.", metavar="PROFILE")],
    b: Annotated[str | None, typer.Argument(help="Another profile.", metavar="[OTHER]")] = None,
    against: Annotated[
        str | None, typer.Option("--against", help="Compare the rendering with this file or k8s/ directory instead.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", "-t", help="docker, compose or kubernetes (default: docker; with --against: guessed)."
        ),
    ] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """What changes between two profiles, as lever changes in words and as a unified diff of
    the rendered output; or between a profile and a committed / hand-edited file. Exit 1 when
    they differ (like diff).

    \b
    Examples:
      vllmtune diff baseline.yaml tuned.yaml -t compose
      vllmtune diff profile.yaml --against deploy/compose.yaml
      vllmtune diff profile.yaml --against k8s/
    """
    from vllmtune.diffing import diff_against, diff_profiles

    if (b is None) == (against is None):
        raise typer.BadParameter("give a second profile or --against FILE (one of them)")
    result = diff_against(a, against, target) if against else diff_profiles(a, str(b), target or "docker")
    if output is OutputFormat.json:
        _echo(json.dumps(result, indent=2))
    else:
        for change in result["changes"]:
            _echo(f"* {change}")
        if result["diff"]:
            sys.stdout.write(result["diff"] if result["diff"].endswith("\n") else result["diff"] + "\n")
        elif not result["changes"]:
            _echo("no differences")
    if result["changes"] or result["diff"]:
        raise typer.Exit(1)


@app.command("render-check")
def render_check(
    map_file: Annotated[
        str, typer.Option("--map", help="YAML list of {profile, target, output}, paths relative to it.")
    ] = ".vllmtune-render.yaml",
    fix: Annotated[bool, typer.Option("--fix", help="Rewrite stale outputs instead of failing.")] = False,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Fail when committed rendered files are stale versus their profiles (the pre-commit
    hook vllmtune-render-check). --fix re-renders them.

    \b
    .vllmtune-render.yaml:
      - {profile: profiles/llama.yaml, target: compose, output: deploy/compose.yaml}
      - {profile: profiles/llama.yaml, target: kubernetes, output: deploy/k8s/}
    """
    from vllmtune.diffing import render_check as do_check

    results = do_check(map_file, fix)
    stale = [r for r in results if r["stale"]]
    if output is OutputFormat.json:
        _echo(json.dumps(results, indent=2))
    else:
        for r in results:
            state = "stale" if r["stale"] else "up to date"
            if r["fixed"]:
                state = "re-rendered"
            _echo(f"{r['output']}: {state} ({r['profile']}, {r['target']})")
    if stale and not fix:
        sys.stderr.write(
            "rendered files are stale: run vllmtune render-check --fix (or vllmtune render) and commit them\n"
        )
        raise typer.Exit(1)


@app.command()
def drift(
    profile: ProfileArg,
    k8s: Annotated[
        str | None,
        typer.Option("--k8s", help="A manifest dump (kubectl get deploy NAME -o yaml > FILE) to compare instead."),
    ] = None,
    runtime: Annotated[Runtime | None, typer.Option("--runtime", "-r", help="Only this backend.")] = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Compare what runs (docker container, local process, or a Kubernetes dump) with the
    profile: image tag, vLLM args, environment, GPUs. Exit 1 on drift."""
    from vllmtune.drift import drift as do_drift

    result = do_drift(profile, k8s, runtime.value if runtime else None)
    if output is OutputFormat.json:
        _echo(json.dumps(result, indent=2))
    else:
        _echo(f"{result['source']}: " + ("no drift" if not result["drift"] else "DRIFT"))
        for d in result["drift"]:
            _echo(f"  {d}")
    if result["drift"]:
        raise typer.Exit(1)


@app.command()
def fit(
    profile: ProfileArg,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="GPU model, e.g. H100-80GB, A100-40GB, L4 (default: resources.gpu_type)."),
    ] = None,
    gpu_memory: Annotated[
        str | None,
        typer.Option(
            "--gpu-memory",
            help="One GPU's total memory as torch reports it, e.g. 23.58GiB: any GPU, in the catalog or not "
            "(default: resources.gpu_memory; with --gpu: that GPU's kernels, this memory).",
            metavar="SIZE",
        ),
    ] = None,
    from_log: Annotated[
        str | None,
        typer.Option(
            "--from-log", help="A vLLM start-up log: print each figure it states beside the estimate.", metavar="LOG"
        ),
    ] = None,
    suggest: Annotated[
        bool, typer.Option("--suggest", help="Also list changes that make it fit or fit more sequences.")
    ] = False,
    output: OutputOpt = OutputFormat.text,
) -> None:
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
    from vllmtune.fit import fit_report, fit_table
    from vllmtune.fit.models import FitError
    from vllmtune.fit.sizes import parse_size
    from vllmtune.profile.loader import load_profile

    memory: int | None = None
    if gpu_memory is not None:
        try:
            memory = parse_size(gpu_memory)
        except ValueError as exc:
            raise FitError(f"--gpu-memory: {exc}") from None
    if gpu is None and not profile.startswith("preset:"):
        gpu = load_profile(profile).profile.resources.gpu_type
    if from_log is not None:
        from vllmtune.fit.fromlog import from_log_report, from_log_table

        result = from_log_report(profile, from_log, gpu, memory)
        if output is OutputFormat.json:
            _echo(json.dumps(result, indent=2))
        else:
            from rich.console import Console

            Console().print(from_log_table(result))
        return
    report = fit_report(profile, gpu, suggest, memory)
    if output is OutputFormat.json:
        _echo(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        Console().print(fit_table(report))
    if report["fit"] == "does not fit":
        raise typer.Exit(1)


@app.command()
def ladder(
    profile: ProfileArg,
    out: Annotated[
        str, typer.Option("--out", "-o", help="Directory for rung profiles, results, report.md, ladder.png.")
    ] = "ladder",
    workload: Annotated[
        str,
        typer.Option(
            "--workload",
            "-w",
            help="mixed (shared prefixes + repeats: every lever has work), shared-prefix, duplicates, random, "
            "or a JSONL eval file.",
        ),
    ] = "mixed",
    requests: Annotated[int, typer.Option("--requests", "-n", help="Measured requests per rung.")] = 100,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Requests in flight.")] = 4,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Output budget per request.")] = None,
    duplicate_share: Annotated[
        float, typer.Option("--duplicate-share", help="Share of repeated requests (mixed/duplicates).")
    ] = 0.3,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same requests on every rung.")] = 0,
    gpu_hour_usd: Annotated[
        float | None,
        typer.Option("--gpu-hour-usd", help="GPU price per hour: adds $ per 1k requests and per 1M output tokens."),
    ] = None,
    runtime: Annotated[Runtime, typer.Option("--runtime", "-r", help="docker or local.")] = Runtime.docker,
    port: Annotated[int | None, typer.Option("--port", help="Serve every rung on this port.")] = None,
    rungs: Annotated[
        str | None, typer.Option("--rungs", help="Only these rungs (baseline always): cache,prefix,batch,quant,spec.")
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeats",
            "--repeat",
            help="Interleaved rounds: every rung once per round (A B A B ...), each brought up again; the "
            "rounds' requests are pooled into each figure's 95% CI.",
        ),
    ] = 1,
    warmup: Annotated[
        int,
        typer.Option("--warmup", help="Requests sent to each rung's server before measuring (excluded)."),
    ] = 2,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted ladder from its last finished rung.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds each rung may take to start.")] = 1800.0,
    max_error_rate: Annotated[
        float,
        typer.Option(
            "--max-error-rate",
            help="A rung whose requests fail more often than this (0.05 = 5%) is a failed rung; the ladder "
            "goes on and exits 1.",
        ),
    ] = 0.05,
    output: OutputOpt = OutputFormat.text,
) -> None:
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
    from vllmtune.ladder import LadderArgs, run_ladder

    args = LadderArgs(
        profile=profile,
        out=out,
        workload=workload,
        requests=requests,
        concurrency=concurrency,
        max_tokens=max_tokens,
        duplicate_share=duplicate_share,
        seed=seed,
        gpu_hour_usd=gpu_hour_usd,
        runtime=runtime.value,
        port=port,
        rungs=rungs.split(",") if rungs else None,
        repeat=repeat,
        warmup=warmup,
        resume=resume,
        timeout=timeout,
        max_error_rate=max_error_rate,
    )

    def say(msg: str) -> None:
        if output is OutputFormat.text:
            sys.stderr.write(f"ladder: {msg}\n")

    summary = run_ladder(args, say)
    if output is OutputFormat.json:
        _echo(json.dumps(summary, indent=2, default=str))
    else:
        _echo("\n".join(summary["table_markdown"]))
        sys.stderr.write(ladder_wrote(out) + "\n")
    if summary["error_rate_failures"]:
        from vllmtune.ladder import LadderError

        raise LadderError(
            "too many requests failed on "
            + ", ".join(summary["error_rate_failures"])
            + f" (above --max-error-rate {max_error_rate:.1%}): see the first errors above and in report.md"
        )


def ladder_wrote(out: str) -> str:
    """What ``ladder`` wrote, with the paths as the user's shell spells them (``-o ladder/`` too)."""
    base = out.rstrip("/") or "/"
    return "wrote " + ", ".join(
        f"{base}/{name}".replace("//", "/") for name in ("report.md", "ladder.json", "ladder.png", "rungs/*.yaml")
    )


cache_app = typer.Typer(help="Lever 1, the prompt-result cache proxy.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@cache_app.command("serve")
def cache_serve(
    upstream: Annotated[
        str, typer.Option("--upstream", help="The OpenAI-compatible server, e.g. http://localhost:8000.")
    ],
    port: Annotated[int, typer.Option("--port", help="Port clients use instead of the server's.")] = 8080,
    host: Annotated[str, typer.Option("--host", help="Bind address (0.0.0.0 to expose it).")] = "127.0.0.1",
    backend: Annotated[str, typer.Option("--backend", help="memory (in-process LRU) or redis.")] = "memory",
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="redis://HOST:6379/0 (default: $VLLMTUNE_REDIS_URL).")
    ] = None,
    ttl: Annotated[int, typer.Option("--ttl", help="Seconds an answer stays cached.")] = 86400,
    max_temperature: Annotated[
        float, typer.Option("--max-temperature", help="Only cache requests at or below this temperature.")
    ] = 0.1,
    skip_pii: Annotated[bool, typer.Option("--skip-pii/--no-skip-pii", help="Never cache what looks like PII.")] = True,
    usd_per_1k_tokens: Annotated[float, typer.Option("--usd-per-1k-tokens", help="For the cost-saved metric.")] = 0.0,
    upstream_timeout: Annotated[
        float, typer.Option("--upstream-timeout", help="Seconds to connect, and of silence within an answer.")
    ] = 600.0,
    max_bytes: Annotated[int, typer.Option("--max-bytes", help="Memory backend size bound, bytes.")] = 256 << 20,
) -> None:
    """Serve the cache proxy: clients point at it exactly as at vLLM. Deterministic requests
    (temperature <= --max-temperature, n = 1) are answered from the cache; headers X-Cache
    (HIT/MISS/BYPASS) and Age; Cache-Control no-cache / no-store and a body "cache": false are
    honoured; /metrics and /cache/stats report hits, misses, bypasses and tokens saved.

    \b
    Example:
      vllmtune cache serve --upstream http://localhost:8000 --backend redis --redis-url redis://localhost:6379/0
    """
    from vllmtune.cache.command import serve_config as do_serve
    from vllmtune.cache.proxy import ProxyConfig

    if backend not in ("memory", "redis"):
        raise typer.BadParameter("memory or redis", param_hint="--backend")
    do_serve(
        ProxyConfig(
            upstream=upstream,
            host=host,
            port=port,
            ttl=ttl,
            max_temperature=max_temperature,
            skip_pii=skip_pii,
            usd_per_1k_tokens=usd_per_1k_tokens,
            upstream_timeout=upstream_timeout,
        ),
        backend,
        redis_url,
        max_bytes=max_bytes,
    )


@cache_app.command("stats")
def cache_stats(
    url: Annotated[str, typer.Option("--url", help="The proxy, e.g. http://localhost:8080.")] = "http://127.0.0.1:8080",
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Hits, misses, bypasses (by reason), hit ratio, tokens and cost saved."""
    from vllmtune.cache.command import stats

    data = stats(url)
    if output is OutputFormat.json:
        _echo(json.dumps(data, indent=2))
        return
    _echo(
        f"hits {data['hits']:,}  misses {data['misses']:,}  bypasses {data['bypasses']:,}  "
        f"hit ratio {data['hit_ratio']:.1%}"
    )
    _echo(
        f"tokens saved {data['tokens_saved']:,}  (${data['usd_saved']:.2f})  "
        f"upstream errors {data['upstream_errors']}  "
        f"{data['backend']} errors {data['backend_errors']}"
    )
    for reason, n in sorted(data["bypass"].items()):
        _echo(f"  bypass {reason}: {n:,}")


@cache_app.command("build-image")
def cache_build_image(
    tag: Annotated[
        str | None, typer.Option("--tag", help="Image name:tag (default vllmtune/cache-proxy:VERSION).")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Base image with python3 >= 3.10 (default python:3.12-slim)."),
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the image to its registry afterwards.")] = False,
) -> None:
    """Build the cache-proxy image from the installed package (no downloads but the base image).

    \b
    Examples:
      vllmtune cache build-image
      vllmtune cache build-image --tag registry.example.com/team/cache-proxy:0.1.0 --push
    Then set prompt_cache.image to registry.example.com/team/cache-proxy (or up --cache-image).
    """
    from vllmtune.runtime.docker_backend import DockerBackend
    from vllmtune.runtime.proxy_image import build_image, default_base, default_tag, push_image

    client = DockerBackend().client
    image = tag or default_tag()

    def say(msg: str) -> None:
        sys.stderr.write(msg + "\n")

    build_image(client, image, base or default_base(), say)
    if push:
        push_image(client, image, say)
    _echo(image)


def report_where() -> str:
    """Where to report a bug: the installed package's ``[project.urls]`` (Issues first), or,
    when it declares none, its maintainers (never an address nobody set up)."""
    from importlib import metadata

    try:
        entries = metadata.metadata("vllmtune").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        entries = []
    urls = {}
    for entry in entries:
        label, _, url = str(entry).partition(",")
        if url.strip():
            urls[label.strip().lower()] = url.strip()
    for label in REPORT_LABELS:
        if label in urls:
            return f"at {urls[label]}"
    return "to the maintainers of this installation"


def _fail(message: str, code: int) -> int:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    return code


def _run(argv: list[str] | None, fast: bool = True) -> int:
    from vllmtune.render_cmd import fast_render

    # `render` runs in loops and pre-commit hooks: serve it without building the typer app.
    result = fast_render(sys.argv[1:] if argv is None else argv) if fast else None
    if result is not None:
        return result
    command = typer.main.get_command(app)
    result = command.main(args=argv, prog_name="vllmtune", standalone_mode=False)
    if result == 130:  # typer turns Ctrl-C into exit code 130 without a word
        return _fail("interrupted", 130)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None, fast: bool = True) -> int:
    """Entry point: run the app and map errors to exit codes (no tracebacks for users).
    (The console script is :func:`vllmtune.entry.main`: render's fast path without typer.)"""
    try:
        return _run(argv, fast)
    except Exception as exc:
        return handle(exc)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def handle(exc: BaseException) -> int:
    """The exit code (and message) for an exception that reached the top; call it from an
    ``except`` block (a bug's traceback is the one being handled)."""
    if isinstance(exc, VllmtuneError):
        # Profile problems already read "file:line: key.path: message", one per line.
        return _fail(str(exc) if isinstance(exc, ProfileError) else f"error: {exc}", exc.exit_code)
    if isinstance(exc, typer.Exit):
        if exc.exit_code == 130:  # typer's own handling of Ctrl-C
            return _fail("interrupted", 130)
        return int(exc.exit_code)
    if isinstance(exc, (typer.Abort, KeyboardInterrupt)):
        return _fail("interrupted", 130)
    if isinstance(exc, BrokenPipeError):
        return 0
    if not isinstance(exc, Exception):  # SystemExit, GeneratorExit: not ours to map
        raise exc
    # Usage errors (click's, vendored by typer): they know how to show themselves.
    code = getattr(exc, "exit_code", None)
    if hasattr(exc, "show") and isinstance(code, int):
        exc.show()
        return code
    # Anything else is a bug: say so, with what to report.
    import traceback

    tb = traceback.format_exc()
    return _fail(
        f"{tb}\nvllmtune {__version__}: internal error ({type(exc).__name__}: {exc}).\n"
        f"This is a bug in vllmtune, not in your input: please report it with the "
        f"text above {report_where()}",
        3,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
