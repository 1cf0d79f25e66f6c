"""argdiff's public functions called directly: arg_changes (the tuples describe() words) and
flag_key (the key a flag is filed under)."""

from __future__ import annotations

from vllmtune.argdiff import NOT_SET, arg_changes, flag_key, flag_values


def test_arg_changes_tuples_in_old_then_new_order() -> None:
    old = ["serve", "m", "--max-num-seqs", "8", "--enforce-eager", "--dtype=half"]
    new = ["serve", "m2", "--dtype", "half", "--max-num-seqs=16", "--no-enforce-eager", "--seed", "1"]
    assert arg_changes(old, new) == [
        ("args", "serve m", "serve m2", "args"),
        ("max_num_seqs", "8", "16", "--max-num-seqs"),
        ("enforce_eager", "on", "off", "--no-enforce-eager"),  # spelt as the new args spell it
        ("seed", NOT_SET, "1", "--seed"),
    ]


def test_arg_changes_removed_flag_keeps_old_spelling_and_skip_drops_keys() -> None:
    old = ("--no-enable-prefix-caching", "--max-model-len", "4096")
    new = (
        "--max-model-len",
        "2048",
    )
    assert arg_changes(old, new) == [
        ("enable_prefix_caching", "off", "(not set)", "--no-enable-prefix-caching"),
        ("max_model_len", "4096", "2048", "--max-model-len"),
    ]
    assert arg_changes(old, new, skip=frozenset({"--enable-prefix-caching"})) == [
        ("max_model_len", "4096", "2048", "--max-model-len"),
    ]
    assert arg_changes(old, old) == []
    assert arg_changes(["--a", "1", "--b"], ["--b", "--a", "1"]) == []  # order alone is no change


def test_flag_key_is_the_key_flag_values_files_under() -> None:
    assert flag_key("--no-enable-prefix-caching") == "--enable-prefix-caching"
    assert flag_key("--max-num-seqs=8") == "--max-num-seqs"
    assert flag_key("--max-num-seqs 8") == "--max-num-seqs"
    assert flag_key("--enforce-eager") == "--enforce-eager"
    for spelling in ("--no-x", "--x=1", "--x"):
        assert list(flag_values([spelling])) == [flag_key(spelling)]
