"""False positives and false negatives of the PII filter's phone rule on a fixed prompt set
(issue 13: a request with an order id or an amount must stay cacheable; a real phone number
must never be cached).

    python benchmarks/pii_phone.py                      # the rule in vllmtune/cache/pii.py
    python benchmarks/pii_phone.py --module OLD_PII.py  # another version, e.g. from git show

The set, tests/cache/data/pii_phone_prompts.json, holds prompts with order ids, invoice numbers,
years, amounts, timestamps, ISBNs, versions and other numbers (``no_phone``), and prompts with
phone numbers in common national and international formats (``phone``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "cache" / "data" / "pii_phone_prompts.json"


def rates(find_pii: Callable[[str], list[str]]) -> tuple[float, float, list[str], list[str]]:
    """(false-positive rate, false-negative rate, the false positives, the false negatives)."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    fps = [t for t in data["no_phone"] if "phone" in find_pii(t)]
    fns = [t for t in data["phone"] if "phone" not in find_pii(t)]
    return len(fps) / len(data["no_phone"]), len(fns) / len(data["phone"]), fps, fns


def load(module: str | None) -> Callable[[str], list[str]]:
    if module is None:
        from vllmtune.cache.pii import find_pii

        return find_pii
    spec = importlib.util.spec_from_file_location("pii_under_test", module)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.find_pii  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", help="a pii.py file to measure instead of vllmtune.cache.pii")
    args = ap.parse_args()
    data = json.loads(DATA.read_text(encoding="utf-8"))
    fp, fn, fps, fns = rates(load(args.module))
    print(f"prompts: {len(data['no_phone'])} without a phone number, {len(data['phone'])} with one")
    print(f"false positives: {len(fps)} ({fp:.1%})")
    print(f"false negatives: {len(fns)} ({fn:.1%})")
    for t in fps:
        print(f"  FP {t}")
    for t in fns:
        print(f"  FN {t}")


if __name__ == "__main__":
    main()
