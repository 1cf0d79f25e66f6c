"""``vllmtune render``: a profile rendered for one target, to stdout, a file or a directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vllmtune.commands.common import PROFILE_HELP
from vllmtune.render.registry import BY_NAME, target_help
from vllmtune.util.argspec import arg, opt


@dataclass(frozen=True)
class RenderArgs:
    profile: str = arg(help=PROFILE_HELP, metavar="PROFILE")
    target: str = opt("--target", "-t", default="docker", help=target_help())
    out: str | None = opt(
        "--out",
        "-o",
        default=None,
        help="Write here instead of stdout. kubernetes with a directory (k8s/): one file per object; '-' is stdout.",
    )
    no_cache: bool = opt("--no-cache", default=False, help="Do not use or fill the render cache (~/.cache/vllmtune).")
    strict: bool = opt(
        "--strict",
        default=False,
        help="Other stacks' formats (vllm-config, production-stack, kserve, llm-d): a profile field the "
        "target cannot express is an error (without it: a warning, and a comment in the file).",
    )


@dataclass(frozen=True)
class RenderResult:
    warnings: list[str]
    text: str | None = None  # for stdout (None: written to files)
    wrote: list[Path] = field(default_factory=list)


def run(args: RenderArgs) -> RenderResult:
    """Render (from the render cache when the profile chain is unchanged); files are written here."""
    from vllmtune import rendercache
    from vllmtune.render import is_directory_output, render_files, resolve_target, write_files

    target = resolve_target(args.target)
    out = args.out
    to_file = out is not None and out != "-"
    to_dir = to_file and is_directory_output(str(out))
    # --strict judges the plan itself: never answered from the cache
    use_cache = not args.no_cache and not args.strict and not to_dir and rendercache.enabled()
    entry = rendercache.lookup(args.profile, target) if use_cache else None
    if entry is not None:
        warnings = list(entry["warnings"])
        text = str(entry["text"])
    else:
        from vllmtune.plan import build_plan
        from vllmtune.profile.loader import load_profile
        from vllmtune.render import export_warnings, render
        from vllmtune.render.coverage import refuse_if_strict

        loaded = load_profile(args.profile)
        plan = build_plan(loaded)
        unexpressed = export_warnings(plan, target)
        refuse_if_strict(target, unexpressed, args.strict)
        warnings = [*plan.warnings, *unexpressed]
        if to_dir:
            files = render_files(plan, target, str(out))
            write_files(files)
            return RenderResult(warnings, wrote=list(files))
        text = render(plan, target)
        if use_cache:
            rendercache.store(args.profile, target, loaded.chain, text, warnings)
    if not to_file:
        return RenderResult(warnings, text=text)
    path = Path(str(out))
    write_files({path: text}, mode=BY_NAME[target].mode)
    return RenderResult(warnings, wrote=[path])
