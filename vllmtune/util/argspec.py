"""One declaration per command: dataclass fields carrying their command-line spelling.

A command's ``Args`` dataclass is the only place that knows its options: each field is declared
with :func:`opt` (an option) or :func:`arg` (a positional argument), holding the flag names, the
help text, the default and the choices. From it are derived

- the argparse parsers (:func:`add_arguments`, :func:`from_namespace`): the fast paths of
  ``render`` and ``validate`` and ``python -m vllmtune.cache``;
- the typer options (:mod:`vllmtune.cli.typed`, the only module that imports typer for it);
- command lines built for another process (:func:`to_argv`: the cache proxy's sidecar).

Standard library only: the cache-proxy image imports this (stdlib + h11 + redis).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

KEY = "vllmtune.option"


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one field is spelled on a command line."""

    flags: tuple[str, ...]  # ("--workload", "-w"); () for a positional argument
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    negative: str | None = None  # a bool's "off" flag: --no-stream; "" for a bool with only its on flag
    many: bool = False  # a positional taking one or more values, or a repeatable option (list[str])


def opt(
    *flags: str,
    default: Any = dataclasses.MISSING,
    help: str,
    choices: Iterable[str] | None = None,
    metavar: str | None = None,
    negative: str | None = None,
    many: bool = False,
) -> Any:
    """A field that is an option: ``--long`` (and ``-s``) spelled, ``help`` shown in --help
    (``many``: repeatable, a list of every value given, empty by default)."""
    spec = Spec(tuple(flags), help, tuple(choices) if choices is not None else None, metavar, negative, many)
    if many:
        return dataclasses.field(default_factory=list, metadata={KEY: spec})
    return dataclasses.field(default=default, metadata={KEY: spec})


def arg(*, default: Any = dataclasses.MISSING, help: str, metavar: str | None = None, many: bool = False) -> Any:
    """A field that is a positional argument (``many``: one or more values, a list)."""
    if many:
        return dataclasses.field(default_factory=list, metadata={KEY: Spec((), help, None, metavar, None, True)})
    return dataclasses.field(default=default, metadata={KEY: Spec((), help, None, metavar)})


@dataclasses.dataclass(frozen=True)
class Param:
    """A declared field, resolved: its name, base type, default and spelling."""

    name: str
    kind: type  # str, int, float, bool (the type without "| None"; list[str] -> str with spec.many)
    optional: bool  # "X | None"
    default: Any  # dataclasses.MISSING when required
    spec: Spec

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING and not self.spec.many


def params(cls: type) -> list[Param]:
    """The declared fields of the dataclass ``cls``, in declaration order (undeclared ones skipped)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(KEY)
        if spec is None:
            continue
        kind, optional = _base(hints[f.name])
        default = [] if spec.many and spec.flags else f.default  # a repeatable option: none given
        out.append(Param(f.name, kind, optional, default, spec))
    return out


def _base(tp: Any) -> tuple[type, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _base(rest[0])[0], True
    if typing.get_origin(tp) is list:
        return args[0], False
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add the options and arguments declared on ``cls`` to ``parser`` (dest = field name)."""
    for p in params(cls):
        s = p.spec
        if not s.flags:
            if s.many:
                parser.add_argument(p.name, nargs="+", help=s.help, metavar=s.metavar)
            elif p.required:
                parser.add_argument(p.name, help=s.help, metavar=s.metavar)
            else:
                parser.add_argument(p.name, nargs="?", default=p.default, help=s.help, metavar=s.metavar)
            continue
        if s.many:
            parser.add_argument(*s.flags, dest=p.name, action="append", type=p.kind, default=[], help=s.help)
            continue
        if p.kind is bool:
            parser.add_argument(*s.flags, dest=p.name, action="store_true", default=p.default, help=s.help)
            if s.negative:
                parser.add_argument(s.negative, dest=p.name, action="store_false", help=f"the opposite of {s.flags[0]}")
            continue
        parser.add_argument(
            *s.flags,
            dest=p.name,
            type=p.kind,
            default=None if p.required else p.default,
            required=p.required,
            choices=s.choices,
            help=s.help,
            metavar=s.metavar,
        )


def from_namespace(cls: type, ns: argparse.Namespace, **extra: Any) -> Any:
    """An instance of ``cls`` from what :func:`add_arguments` parsed (``extra``: other fields)."""
    return cls(**{p.name: getattr(ns, p.name) for p in params(cls)}, **extra)


def to_argv(obj: Any, always: Iterable[str] = ()) -> list[str]:
    """The command line that asks another process for ``obj``'s settings: the fields named in
    ``always`` and every other field that differs from its default, in declaration order; None
    is left out, a bool is its on or off flag. Positional arguments come last, after ``--`` (so a
    value starting with ``-`` stays a value), each list item one word; an optional positional at
    its default is written when a later positional is."""
    keep = set(always)
    argv: list[str] = []
    positionals: list[tuple[Param, Any, bool]] = []  # (param, value, asked for)
    for p in params(type(obj)):
        value = getattr(obj, p.name)
        wanted = value is not None and (p.name in keep or value != p.default)
        if not p.spec.flags:
            positionals.append((p, value, wanted))
            continue
        if not wanted:
            continue
        if p.kind is bool:
            flag = p.spec.flags[0] if value else p.spec.negative
            if flag:
                argv.append(flag)
            continue
        if p.spec.many:
            for item in value:
                argv += [p.spec.flags[0], str(item)]
            continue
        argv += [p.spec.flags[0], str(value)]
    last = max((i for i, (_, _, wanted) in enumerate(positionals) if wanted), default=-1)
    words: list[str] = []
    for p, value, _ in positionals[: last + 1]:
        if value is None:
            raise ValueError(f"{p.name} is None but a later positional argument is set: no command line says that")
        words += [str(v) for v in value] if p.spec.many else [str(value)]
    return [*argv, "--", *words] if words else argv
