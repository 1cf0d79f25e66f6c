"""Typer commands generated from a command's ``Args`` declaration (:mod:`vllmtune.util.argspec`).

``@command(group, Args)`` turns ``def body(args: Args, output: str) -> None`` into a typer command
whose options are the fields of ``Args``: flag names, help, default and choices as declared
there, nowhere else. The fast paths (:mod:`vllmtune.cli.fast`) read the same declaration.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, Optional

import typer

from vllmtune.cli.printers import OUTPUT_CHOICES, OUTPUT_FLAG, OUTPUT_HELP
from vllmtune.util.argspec import Param, params


def _parameter(p: Param) -> inspect.Parameter:
    s = p.spec
    kind: Any = p.kind
    annotation: Any = list[kind] if s.many else (Optional[kind] if p.optional else kind)  # noqa: UP045
    extra: dict[str, Any] = {"help": s.help}
    if s.metavar:
        extra["metavar"] = s.metavar
    default = ... if p.required or (s.many and not s.flags) else p.default
    if s.many and s.flags:  # a repeatable option: [] when not given
        annotation, default = list[kind], []
    if s.choices:  # typer shows and checks an Enum's values: [docker|local]
        kind = _choices(p.name, s.choices)
        annotation = Optional[kind] if p.optional else kind  # noqa: UP045
        default = kind(default) if isinstance(default, str) else default
    if not s.flags:
        info: Any = typer.Argument(default, **extra)
    else:
        decls = list(s.flags)
        if p.kind is bool and s.negative:
            decls[0] = f"{s.flags[0]}/{s.negative}"
        info = typer.Option(default, *decls, **extra)
    return inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def _choices(name: str, values: tuple[str, ...]) -> Any:
    return enum.Enum(name.title().replace("_", ""), {v: v for v in values}, type=str)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def command(
    group: typer.Typer, cls: type, name: str | None = None, output: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``body(args)`` (``body(args, output)`` with ``output``: the --output text/json
    option) as the command ``name`` of ``group``, its help the body's docstring."""

    def register(body: Callable[..., None]) -> Callable[..., None]:
        declared = [_parameter(p) for p in params(cls)]
        if output:
            kind = _choices("output", OUTPUT_CHOICES)
            out = typer.Option(kind("text"), OUTPUT_FLAG, help=OUTPUT_HELP)
            declared.append(inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=out, annotation=kind))

        def run(**values: Any) -> None:
            fmt = _plain(values.pop("output")) if output else None
            args = cls(**{k: _plain(v) for k, v in values.items()})
            if output:
                body(args, fmt)
            else:
                body(args)

        run.__signature__ = inspect.Signature(declared)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in declared}
        run.__doc__ = body.__doc__
        run.__name__ = body.__name__
        run.__wrapped_args__ = cls  # type: ignore[attr-defined]  # the declaration (tests compare the two)
        group.command(name or body.__name__.replace("_", "-"))(run)
        return body

    return register
