#!/usr/bin/env python3
"""Parse `vllm serve` argument lists with vLLM's REAL CLI parser.

Run with the python of the vLLM venv (see scripts/setup_vllm_cpu.sh):

    echo '[["my/model", "--max-model-len", "1024"], ["m", "--bogus"]]' \
        | $VENV/bin/python scripts/vllm_parse_args.py
    $VENV/bin/python scripts/vllm_parse_args.py '["my/model", "-tp", "2"]'

Input (stdin, or the first argument): JSON, either one argv list (the words that
follow `vllm serve`; model positional or --model) -> one result object, or a
list of argv lists -> a list of results (importing vLLM takes seconds, so batch).

Each result is {"ok": true, "namespace": {...}, "non_default": [...]} or
{"ok": false, "stage": "argparse"|"serve_validate"|"engine_args", "error": "..."}.
"namespace" holds every parsed key (JSON values, anything else as str());
"non_default" lists the keys whose value differs from the parser default.
`--keys a,b,c` restricts "namespace" to those keys.

The parser is built exactly like `vllm serve` (vllm/entrypoints/cli/main.py):
a top-level FlexibleArgumentParser with a "serve" sub-parser made by
ServeSubcommand.subparser_init (make_arg_parser), then parse_args(["serve", *argv]).
After parsing it runs validate_parsed_serve_args (what ServeSubcommand.validate
does) and AsyncEngineArgs.from_cli_args (dataclass __post_init__ checks).
create_engine_config is NOT called (it needs the model files / a device).
Exit status: 0 whenever results were printed, 2 for misuse (bad input).
Only the JSON result goes to stdout; vLLM logging is sent to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time


class ParseFailure(Exception):
    pass


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (bool, int, float, str)) for x in v):
        return list(v)
    if isinstance(v, dict):
        try:
            json.dumps(v)
            return v
        except (TypeError, ValueError):
            pass
    return str(v)


def _usage(msg: str) -> None:
    print(f"vllm_parse_args.py: {msg}", file=sys.stderr)
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    sys.exit(2)


def _read_input(argv: list[str]):
    keys = None
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        if a == "--keys" and i + 1 < len(argv):
            keys = [k for k in argv[i + 1].split(",") if k]
            i += 2
            continue
        if a.startswith("--keys="):
            keys = [k for k in a.split("=", 1)[1].split(",") if k]
            i += 1
            continue
        rest.append(a)
        i += 1
    if len(rest) > 1:
        _usage("expected at most one positional argument (JSON text)")
    text = rest[0] if rest else sys.stdin.read()
    try:
        data = json.loads(text)
    except ValueError as e:
        _usage(f"input is not valid JSON: {e}")
    if not isinstance(data, list):
        _usage("input must be a JSON list")
    if data and all(isinstance(x, str) for x in data):
        return [data], True, keys
    if all(isinstance(x, list) and all(isinstance(y, str) for y in x) for x in data):
        return data, False, keys
    _usage("input must be a list of strings or a list of lists of strings")


def main() -> int:
    argvs, single, keys = _read_input(sys.argv[1:])

    # Everything vLLM (or C extensions) prints goes to stderr; results to real stdout.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")

    t0 = time.monotonic()
    import huggingface_hub.constants
    import vllm
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.cli_args import (
        propagate_flash_late_interaction,
        validate_parsed_serve_args,
    )
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    class NonExitingParser(FlexibleArgumentParser):
        """ArgumentParser.error() ends in self.exit(2, "prog: error: msg"); raise
        instead of sys.exit.  add_subparsers() defaults parser_class to
        type(parent), so the "serve" sub-parser is a NonExitingParser too."""

        def exit(self, status=0, message=None):
            if message:
                raise ParseFailure(message.strip())
            raise ParseFailure(f"parser exited with status {status} (e.g. --help/--version)")

        def error(self, message):
            super().error(message)  # vLLM's override adds hints, then exit()
            raise ParseFailure(message)  # not reached

        def print_usage(self, file=None):  # no usage noise on stderr
            pass

    def build():
        parser = NonExitingParser(prog="vllm", description="vLLM CLI")
        subparsers = parser.add_subparsers(required=False, dest="subparser")
        cmd = ServeSubcommand()
        cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
        return parser, subparsers.choices["serve"]

    def parse_one(argv: list[str]) -> dict:
        parser, serve_parser = build()
        try:
            args = parser.parse_args(["serve", *argv])
        except ParseFailure as e:
            return {"ok": False, "stage": "argparse", "error": str(e)}
        except SystemExit as e:  # should not happen, but never let it escape
            return {"ok": False, "stage": "argparse", "error": f"SystemExit({e.code})"}
        except Exception as e:  # e.g. ValueError raised by FlexibleArgumentParser
            return {"ok": False, "stage": "argparse", "error": f"{type(e).__name__}: {e}"}

        if getattr(args, "model_tag", None) is not None:  # as ServeSubcommand.cmd
            args.model = args.model_tag
        ns = {k: _jsonable(v) for k, v in sorted(vars(args).items()) if k != "dispatch_function"}
        defaults = {a.dest: a.default for a in serve_parser._actions}
        non_default = sorted(k for k in ns if k in defaults and _jsonable(defaults[k]) != ns[k])
        if keys:
            ns = {k: ns.get(k) for k in keys}

        try:
            validate_parsed_serve_args(args)
        except Exception as e:
            return {
                "ok": False,
                "stage": "serve_validate",
                "error": f"{type(e).__name__}: {e}",
                "namespace": ns,
            }
        # With HF_HUB_OFFLINE, EngineArgs.__post_init__ resolves the model id to a
        # local HF-cache snapshot and fails for models not downloaded here; that
        # is not an argument error, so skip that step (hub stays offline otherwise).
        saved_offline = huggingface_hub.constants.HF_HUB_OFFLINE
        huggingface_hub.constants.HF_HUB_OFFLINE = False
        try:
            engine_args = vllm.AsyncEngineArgs.from_cli_args(args)
            propagate_flash_late_interaction(args, engine_args)
        except Exception as e:
            return {
                "ok": False,
                "stage": "engine_args",
                "error": f"{type(e).__name__}: {e}",
                "namespace": ns,
            }
        finally:
            huggingface_hub.constants.HF_HUB_OFFLINE = saved_offline
        return {"ok": True, "namespace": ns, "non_default": non_default}

    t1 = time.monotonic()
    results = [parse_one(list(a)) for a in argvs]
    t2 = time.monotonic()
    print(
        f"vllm_parse_args: import {t1 - t0:.1f}s, {len(argvs)} parse(s) {t2 - t1:.2f}s",
        file=sys.stderr,
    )
    json.dump(results[0] if single else results, out)
    out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
