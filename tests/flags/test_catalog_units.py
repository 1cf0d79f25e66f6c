"""flags.catalog's and flags.report's public functions called directly, checked against the vLLM
parser dumps beside the checkout (../shared/vllm-flags: every argparse action of every release,
an oracle independent of catalog.json), and by the catalog's documented facts."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from tests.conftest import ROOT, require
from vllmtune.errors import FlagError
from vllmtune.flags import Flag, FlagSet, flag_help, known_versions, versions_with_flag, versions_with_value
from vllmtune.flags.catalog import versions_where
from vllmtune.flags.report import diff_flags, list_flags

SHARED = ROOT.parent / "shared" / "vllm-flags"


@cache
def _dump(version: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((SHARED / "serve" / f"{version}.json").read_text())
    return data


@pytest.fixture
def dumps() -> None:
    require(SHARED.is_dir(), f"the vLLM flag dumps ({SHARED}, beside the checkout)")


def _long_options(version: str) -> set[str]:
    return {o for a in _dump(version) for o in a["opts"] if o.startswith("--") and a["action"] != "_HelpAction"}


def test_flag_takes_value_by_kind() -> None:
    def flag(kind: str) -> Flag:
        return Flag(name="--x", kind=kind, dest="x", group=("--x",), choices=None, deprecated=False)

    taking = {k for k in ("switch", "bool", "optbool", "value", "multi", "optvalue", "append") if flag(k).takes_value}
    assert taking == {"value", "multi", "append", "optvalue", "optbool"}


def test_flagset_refuses_an_unknown_version() -> None:
    with pytest.raises(FlagError) as err:
        FlagSet("0.9.9")
    assert str(err.value) == "unknown vLLM version '0.9.9': vllmtune knows 0.6.0 .. 0.33.0; did you mean 0.9.2?"
    with pytest.raises(FlagError) as err:
        FlagSet("latest", "api_server")
    assert str(err.value) == "unknown vLLM version 'latest': vllmtune knows 0.6.0 .. 0.33.0"


def test_versions_where_expands_run_lists() -> None:
    versions = known_versions()
    assert versions_where([[0, 1, 7], [5, 5, 2]]) == [versions[0], versions[1], versions[5]]
    assert versions_where([]) == []


@pytest.mark.usefixtures("dumps")
def test_versions_with_flag_matches_every_parser_dump() -> None:
    versions = known_versions()
    every = set().union(*(_long_options(v) for v in versions))
    assert len(every) > 500
    for name in sorted(every):
        assert versions_with_flag(name) == [v for v in versions if name in _long_options(v)], name
    assert versions_with_flag("--disable-prefix-caching") == ["0.33.0"]
    assert versions_with_flag("--no-such-flag") == []


def test_versions_with_value() -> None:
    versions = known_versions()
    assert versions_with_value("quantization", "fp8") == versions
    squeeze = versions_with_value("quantization", "squeezellm")
    assert (
        squeeze == versions[: len(squeeze)]
        and versions_with_value("quantization", "modelopt")[0] == versions[len(squeeze)]
    )
    assert versions_with_value("speculative_methods", "medusa")[-1] == "0.32.0"  # removed in 0.33.0
    assert versions_with_value("kv_cache_dtype", "no-such-dtype") == []


@pytest.mark.usefixtures("dumps")
def test_flag_help_is_the_first_paragraph_of_the_newest_help() -> None:
    versions = known_versions()
    for name in ("--max-num-seqs", "--quantization", "--enable-prefix-caching", "--speculative-model"):
        helps = [a["help"] for v in versions for a in _dump(v) if name in a["opts"] and a["help"]]
        assert flag_help(name) == " ".join(helps[-1].split("\n\n")[0].split()), name
    assert flag_help("--max-num-seqs") == "Maximum number of sequences to be processed in a single iteration."
    assert flag_help("--no-such-flag") == ""


def test_list_flags_rows_whole() -> None:
    assert list_flags("0.9.2", grep="MAX-NUM-SEQS") == [
        {"flag": "--max-num-seqs", "kind": "value", "dest": "max_num_seqs",
         "help": "Maximum number of sequences to be processed in a single iteration."},
    ]  # fmt: skip
    (row,) = [r for r in list_flags("0.33.0", grep="prefix-caching") if r["flag"] == "--enable-prefix-caching"]
    assert row == {
        "flag": "--enable-prefix-caching",
        "kind": "bool",
        "dest": "enable_prefix_caching",
        "spellings": ["--enable-prefix-caching", "--disable-prefix-caching"],
        "help": flag_help("--enable-prefix-caching"),
    }
    rows = list_flags("0.9.2")
    assert [r["flag"] for r in rows] == sorted(r["flag"] for r in rows)
    assert not any(r["flag"].startswith("--no-") for r in rows)  # one row per option group
    assert list_flags("0.9.2", grep="nothing-matches-this") == []


@pytest.mark.usefixtures("dumps")
@pytest.mark.parametrize(("old", "new"), [("0.8.2", "0.8.3"), ("0.9.2", "0.10.0"), ("0.32.0", "0.33.0")])
def test_diff_flags_added_and_removed_match_the_dumps(old: str, new: str) -> None:
    d = diff_flags(old, new)
    assert d["added"] == sorted(_long_options(new) - _long_options(old))
    assert d["removed"] == sorted(_long_options(old) - _long_options(new))


def test_diff_flags_changes_and_value_sets() -> None:
    assert diff_flags("0.8.2", "0.8.3")["changed"] == [{"flag": "--reasoning-parser", "change": "choices +granite"}]
    later = diff_flags("0.9.2", "0.10.0")
    choices = {c["flag"]: c["change"] for c in later["changed"] if "choices" in c["change"]}
    # --uvicorn-log-level and --chat-template-content-format only list the same choices in another order
    assert sorted(choices) == [
        "--kv-cache-dtype",
        "--prefix-caching-hash-algo",
        "--reasoning-parser",
        "--tool-call-parser",
    ]
    assert choices["--reasoning-parser"] == "choices +glm4_moe,hunyuan_a13b,mistral"
    assert choices["--tool-call-parser"].startswith("choices now enforced by argparse: deepseek_v3,glm4_moe,granite,")
    assert later["values"] == [
        {"set": "quantization", "added": ["inc"], "removed": []},
        {"set": "kv_cache_dtype", "added": ["fp8_inc"], "removed": []},
    ]
    # 0.33.0 lists no kv-cache dtypes (any registered one is accepted): none was removed
    assert diff_flags("0.32.0", "0.33.0")["values"] == [
        {"set": "speculative_methods", "added": ["step5_mtp"], "removed": ["medusa", "mlp_speculator"]},
    ]
    assert diff_flags("0.9.2", "0.9.2") == {"added": [], "removed": [], "changed": [], "values": []}
