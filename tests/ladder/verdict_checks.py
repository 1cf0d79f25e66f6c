"""One check for every ladder test that ran real servers (the stub or vLLM): each printed verdict
agrees with its own CI (the ratio's CI excludes 1 <=> better/worse), and the table and the lines
under it carry those CIs. No figure is compared with another: load on the machine moves them."""

from __future__ import annotations

import re
from typing import Any

from vllmtune.bench.stats import quantile_ci_min_samples
from vllmtune.ladder_figures import VERDICT_LEVEL

FIGURES = ("e2e_p50_ms", "e2e_p99_ms", "ttft_p50_ms", "cost_ms_per_request")
NAMES = {"e2e_p50_ms": "p50", "e2e_p99_ms": "p99", "ttft_p50_ms": "TTFT p50", "cost_ms_per_request": "cost",
         "server_ttft_p50_ms": "server TTFT"}  # fmt: skip
NUM = r"[+-]?[\d,.]+"
LEVEL = f"{VERDICT_LEVEL:.1%}".replace(".", r"\.")
# the ratio's 95% CI, then the CI its verdict reads (or why there is none)
RATIO = (
    rf"(?P<pct>{NUM})% \((?:95% CI (?P<lo>{NUM})% to (?P<hi>{NUM})%, "
    rf"(?:{LEVEL} CI (?P<jlo>{NUM})% to (?P<jhi>{NUM})%|{LEVEL} CI: too few samples)|95% CI: too few samples)\) "
    r"(?P<verdict>better|worse|no significant change)"
)
PART = re.compile(
    rf"(?P<name>[\w ]+) {NUM} ms \[(?:{NUM}, {NUM}|CI: p(?P<q>\d+) needs (?P<need>\d+) requests a side, "
    rf"(?P<have>\d+) here)\], " + RATIO
)
SERVER = re.compile(r"server TTFT p50 " + RATIO)
RELATIVE = re.compile(rf"(?P<r>{NUM})x \(95% CI (?P<lo>{NUM})-(?P<hi>{NUM})\)")


QUANTILE = {"e2e_p50_ms": 50, "e2e_p99_ms": 99, "ttft_p50_ms": 50}


def expected(ci: list[float] | None) -> str:
    """The rule, written out again: a win or a loss only when the ratio's (verdict-level) CI excludes 1."""
    if ci is None:
        return "no significant change"
    return "better" if ci[1] < 1 else "worse" if ci[0] > 1 else "no significant change"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def check_verdicts(summary: dict[str, Any], table: list[str]) -> None:
    """Raise AssertionError where a verdict disagrees with its CI or a line lacks its CI."""
    measured = [r for r in summary["rows"] if not r.get("failed")]
    assert [r["vs"] for r in measured] == [None, *(r["config"] for r in measured[:-1])]
    for row in measured:
        for key in FIGURES:
            fig = row["figures"][key]
            q = QUANTILE.get(key)
            if q is not None and row["requests_ok"] < quantile_ci_min_samples(q):
                assert fig["ci95"] is None, (row["config"], key, fig)  # too few values for an honest CI
            else:
                lo, hi = fig["ci95"]
                assert lo <= fig["value"] <= hi, (row["config"], key, fig)
            if row["vs"] is None:
                assert "verdict" not in fig
                continue
            judged = fig["ratio_ci_verdict"]
            assert fig["verdict"] == row["verdicts"][key] == expected(judged), (row["config"], key, fig)
            if fig["ratio_ci95"] is not None and judged is not None:  # the verdict's CI is the wider one
                assert judged[0] <= fig["ratio_ci95"][0] <= fig["ratio"] <= fig["ratio_ci95"][1] <= judged[1], (
                    row["config"], key, fig)  # fmt: skip
        change = row.get("server_ttft_change")
        if change:
            judged = change["ratio_ci_verdict"]
            assert change["verdict"] == row["verdicts"]["server_ttft_p50_ms"] == expected(judged)
        if row["vs"] is not None:
            assert row["relative_cost_verdict"] == expected(row["relative_cost_ci_verdict"]), row
    # the table: each later rung's relative cost with its CI, and its verdict cell saying what the JSON says
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in table if line.startswith("| ")}
    for row in measured[1:]:
        cells = lines[row["config"]].strip("| ").split(" | ")
        m = next(RELATIVE.fullmatch(c) for c in cells if RELATIVE.fullmatch(c))
        assert _num(m["r"]) == round(row["relative_cost"], 2)
        lo, hi = row["relative_cost_ci95"]
        assert (_num(m["lo"]), _num(m["hi"])) == (round(lo, 2), round(hi, 2))
        said = {
            name: word for word, names in (p.split(": ") for p in cells[-1].split("; ")) for name in names.split(", ")
        }
        assert said == {NAMES[k]: v for k, v in row["verdicts"].items()}
    # the lines under it: every change with its difference CI, its ratio CI and the ratio's verdict
    changes = [line for line in table if line.startswith("- ") and " vs " in line.split(":")[0]]
    assert [c.split(":")[0] for c in changes] == [f"- {r['config']} vs {r['vs']}" for r in measured[1:]]
    for line, row in zip(changes, measured[1:], strict=True):
        parts = line.split(": ", 1)[1].split("; ")
        for part, key in zip(parts, FIGURES, strict=False):
            m = PART.fullmatch(part)
            assert m, part
            fig = row["figures"][key]
            assert (m["name"], m["verdict"]) == (NAMES[key], fig["verdict"])
            if m["q"]:  # no difference CI: only when there are too few requests for one
                assert int(m["need"]) == quantile_ci_min_samples(int(m["q"])) > int(m["have"]), part
            if fig["ratio_ci95"] is None:
                assert m["lo"] is None, part
                continue
            lo, hi = fig["ratio_ci95"]
            assert _num(m["lo"]) == printed_pct(lo) and _num(m["hi"]) == printed_pct(hi), part
            if fig["ratio_ci_verdict"] is None:
                assert m["jlo"] is None, part
            else:
                jlo, jhi = fig["ratio_ci_verdict"]
                assert _num(m["jlo"]) == printed_pct(jlo) and _num(m["jhi"]) == printed_pct(jhi), part
        if row.get("server_ttft_change"):
            m = SERVER.fullmatch(parts[len(FIGURES)])
            assert m and m["verdict"] == row["server_ttft_change"]["verdict"], parts[len(FIGURES)]
        else:
            assert len(parts) == len(FIGURES)


def printed_pct(ratio: float) -> float:
    """The printed change in %: one decimal below 10%, whole numbers above (as the table prints it)."""
    pct = (ratio - 1) * 100
    return round(pct, 1 if abs(pct) < 10 else 0)
