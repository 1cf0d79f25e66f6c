"""vLLM argument lists compared flag by flag, in words: ``max_num_batched_tokens: 1024 -> 512
(--max-num-batched-tokens)`` rather than ``+512 -1024`` (used by diff, drift and up --replace)."""

from __future__ import annotations

NOT_SET = "(not set)"


def flag_values(args: list[str] | tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """``--flag`` -> (spelling as given, value) in order. ``--x=v`` and ``--x v`` are the same;
    a flag without a value is "on", its ``--no-`` form "off" (one key for both spellings);
    a repeated flag keeps every value, space-separated; words before the first flag are "args"."""
    out: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            prev = out.get("args", ("args", ""))[1]
            out["args"] = ("args", f"{prev} {tok}".strip())
            i += 1
            continue
        flag, eq, value = tok.partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            elif flag.startswith("--no-"):
                flag, value = "--" + flag[5:], "off"
            else:
                value = "on"
        key = flag
        if key in out:
            value = f"{out[key][1]} {value}"
        out[key] = (tok.partition("=")[0], value)
        i += 1
    return out


def arg_changes(
    old: list[str] | tuple[str, ...], new: list[str] | tuple[str, ...], skip: frozenset[str] = frozenset()
) -> list[tuple[str, str, str, str]]:
    """(name, old value, new value, flag as spelt) for every flag that differs, old order then new."""
    a, b = flag_values(old), flag_values(new)
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        if key in skip:
            continue
        va = a[key][1] if key in a else NOT_SET
        vb = b[key][1] if key in b else NOT_SET
        if va != vb:
            spelt = b[key][0] if key in b else a[key][0]
            out.append((key.lstrip("-").replace("-", "_"), va, vb, spelt))
    return out


def describe(
    old: list[str] | tuple[str, ...],
    new: list[str] | tuple[str, ...],
    skip: frozenset[str] = frozenset(),
    old_word: str = "",
    new_word: str = "",
) -> list[str]:
    """One line per changed flag: ``name: old -> new (--flag)``, or with words (drift's
    ``name: running old, profile new (--flag)``); a reordering alone is said as such."""
    lines = []
    for name, va, vb, spelt in arg_changes(old, new, skip):
        change = f"{old_word} {va}, {new_word} {vb}" if old_word else f"{va} -> {vb}"
        lines.append(f"{name}: {change} ({spelt})")
    if not lines and not skip and list(old) != list(new):
        lines.append("vLLM args: the same flags in a different order")
    return lines


def flag_key(flag: str) -> str:
    """The key :func:`flag_values` files a flag under (``--no-x`` -> ``--x``; value dropped)."""
    name = flag.split(" ", 1)[0].partition("=")[0]
    return "--" + name[5:] if name.startswith("--no-") else name
