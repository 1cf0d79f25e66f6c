"""util.argspec's public names called directly: Param (what params() resolves from a command's
Args dataclass), add_arguments (the argparse parser it builds, parsed and refused), to_argv (the
sidecar command line built from the cache proxy's ServeConfig; positionals round-trip through the
argparse and typer parsers generated from the same declaration)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from vllmtune.cache.config import ServeConfig
from vllmtune.cli.typed import command
from vllmtune.commands.diff import DiffArgs
from vllmtune.commands.up import LogsArgs
from vllmtune.commands.validate import ValidateArgs
from vllmtune.util.argspec import Param, Spec, add_arguments, arg, from_namespace, opt, params, to_argv


def test_param_resolves_type_optionality_default_and_spelling() -> None:
    assert params(LogsArgs) == [
        Param("name", str, False, dataclasses.MISSING, Spec((), "Server name (see vllmtune ps).")),
        Param("follow", bool, False, False, Spec(("--follow", "-f"), "Keep printing new lines.")),
        Param("tail", int, True, None, Spec(("--tail",), "Only the last N lines.")),
        Param("runtime", str, True, None, Spec(("--runtime", "-r"), "Only this backend.", ("docker", "local"))),
    ]
    name, follow, tail, _ = params(LogsArgs)
    assert (name.required, follow.required, tail.required) == (True, False, False)
    (profiles, _gpu) = params(ValidateArgs)
    assert (profiles.kind, profiles.spec.many, profiles.required) == (str, True, False)


def _parser(cls: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_arguments(parser, cls)
    return parser


def test_add_arguments_parses_flags_short_flags_types_and_positionals() -> None:
    ns = _parser(LogsArgs).parse_args(["srv", "-f", "--tail", "20", "-r", "local"])
    assert from_namespace(LogsArgs, ns) == LogsArgs(name="srv", follow=True, tail=20, runtime="local")
    assert from_namespace(LogsArgs, _parser(LogsArgs).parse_args(["srv"])) == LogsArgs(name="srv")
    ns = _parser(ValidateArgs).parse_args(["a.yaml", "b.yaml"])
    assert from_namespace(ValidateArgs, ns) == ValidateArgs(profiles=["a.yaml", "b.yaml"])


def test_add_arguments_negative_flag_and_required_option() -> None:
    parser = _parser(ServeConfig)
    assert parser.parse_args(["--upstream", "http://v:8000"]).skip_pii is True
    assert parser.parse_args(["--upstream", "http://v:8000", "--no-skip-pii"]).skip_pii is False
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --upstream is required


def test_add_arguments_refuses_a_value_outside_choices() -> None:
    with pytest.raises(argparse.ArgumentError) as e:
        _parser(LogsArgs).parse_args(["srv", "--runtime", "k8s"])
    # the choices' quoting is argparse's own and differs between Python 3.12 releases
    assert str(e.value).startswith("argument --runtime/-r: invalid choice: 'k8s' (choose from ")


def test_to_argv_keeps_required_always_and_changed_fields_in_declaration_order() -> None:
    cfg = ServeConfig(upstream="http://vllm:8000", port=9090, skip_pii=False, ttl=60)
    # upstream has no default, so it is always there; a bool turned off is its negative flag
    assert to_argv(cfg) == ["--upstream", "http://vllm:8000", "--port", "9090", "--ttl", "60", "--no-skip-pii"]
    assert to_argv(cfg, ("host",)) == [
        "--upstream", "http://vllm:8000", "--host", "127.0.0.1", "--port", "9090", "--ttl", "60", "--no-skip-pii",
    ]  # fmt: skip
    # a bool at its default is left out, or spelled with its on flag when asked for; None never appears
    assert to_argv(ServeConfig(upstream="u")) == ["--upstream", "u"]
    assert to_argv(ServeConfig(upstream="u"), ("skip_pii", "redis_url")) == ["--upstream", "u", "--skip-pii"]


@dataclasses.dataclass(frozen=True)
class _TwoPositionals:
    first: str | None = arg(default="a", help="The first.")
    second: str | None = arg(default=None, help="The second.")
    limit: int = opt("--limit", default=1, help="A limit.")


def _typer_parse(cls: type, argv: list[str]) -> object:
    """``argv`` through the typer command that cli.typed generates from the declaration ``cls``."""
    app = typer.Typer()
    seen: list[object] = []
    command(app, cls, name="x")(seen.append)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    (parsed,) = seen
    return parsed


@pytest.mark.parametrize(
    ("obj", "argv"),
    [
        # a positional next to options: options first, then "--" so a leading "-" stays a value
        (LogsArgs(name="-srv", follow=True, tail=20), ["--follow", "--tail", "20", "--", "-srv"]),
        (LogsArgs(name="srv"), ["--", "srv"]),
        # a positional list: one word per item
        (
            ValidateArgs(profiles=["a.yaml", "-b.yaml"], gpu="A100-80GB"),
            ["--gpu", "A100-80GB", "--", "a.yaml", "-b.yaml"],
        ),
        # an optional positional left out when None, written when set
        (DiffArgs(a="p.yaml", target="compose"), ["--target", "compose", "--", "p.yaml"]),
        (DiffArgs(a="p.yaml", b="q.yaml"), ["--", "p.yaml", "q.yaml"]),
        # an optional positional at its default is written when a later one is set
        (_TwoPositionals(second="b", limit=3), ["--limit", "3", "--", "a", "b"]),
        (_TwoPositionals(), []),
    ],
)
def test_to_argv_renders_positionals_and_round_trips_through_argparse_and_typer(obj: object, argv: list[str]) -> None:
    assert to_argv(obj) == argv
    cls = type(obj)
    assert from_namespace(cls, _parser(cls).parse_args(to_argv(obj))) == obj
    assert _typer_parse(cls, to_argv(obj)) == obj


def test_to_argv_refuses_an_unset_positional_before_a_set_one() -> None:
    with pytest.raises(ValueError) as e:
        to_argv(_TwoPositionals(first=None, second="b"))
    assert str(e.value) == "first is None but a later positional argument is set: no command line says that"
def test_a_repeatable_option_collects_every_value_and_defaults_to_none_given() -> None:
    @dataclasses.dataclass
    class Many:
        space: list[str] = opt("--space", many=True, help="a knob")  # noqa: RUF009

    [p] = params(Many)
    assert (p.kind, p.default, p.required, p.spec.many) == (str, [], False, True)
    ap = argparse.ArgumentParser()
    add_arguments(ap, Many)
    assert from_namespace(Many, ap.parse_args([])).space == []
    assert from_namespace(Many, ap.parse_args(["--space", "a=1", "--space", "b=2"])).space == ["a=1", "b=2"]
    assert to_argv(Many(space=["a=1", "b=2"])) == ["--space", "a=1", "--space", "b=2"]
