"""vllmtune.fit.fromlog.from_log_table: vLLM's logged figures beside the estimate, then the two
verdicts (a result as from_log_report returns it, built here so the table is the only unit)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from vllmtune.fit.fromlog import from_log_table

VERDICT = "fits: 3 concurrent sequences at max_model_len 8,192 (2 to 3 within the error band)"


def result(failure: str | None) -> dict[str, Any]:
    return {
        "log": "logs/l4-llama-8b.log",
        "report": {"device": "L4", "verdict": VERDICT},
        "rows": [  # error: (estimate - logged) / logged; None when vLLM logged 0
            {"figure": "non-torch memory", "logged": 0.0, "estimate": 0.3, "unit": "GiB", "error": None},
            {"figure": "KV cache memory", "logged": 3.1, "estimate": 3.0165, "unit": "GiB", "error": -0.0269},
            {"figure": "KV cache blocks", "logged": 1587, "estimate": 1544, "unit": "blocks", "error": -0.0271},
            {"figure": "max concurrency", "logged": 3.1, "estimate": 3.02, "unit": "x", "error": -0.0258},
        ],
        "failure": failure,
        "notes": ["GPU memory 22.05 GiB from the log"],
    }


def table_text(failure: str | None) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(from_log_table(result(failure)))
    return console.export_text()


def test_a_log_of_a_server_that_started() -> None:
    assert table_text(None) == (
        "logs/l4-llama-8b.log: vLLM's figures beside vllmtune fit's (L4)\n"
        "┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┓\n"
        "┃ figure           ┃ vLLM logged ┃ estimate ┃ difference ┃\n"
        "┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━┩\n"
        "│ non-torch memory │    0.00 GiB │ 0.30 GiB │            │\n"
        "│ KV cache memory  │    3.10 GiB │ 3.02 GiB │      -2.7% │\n"
        "│ KV cache blocks  │       1,587 │    1,544 │      -2.7% │\n"
        "│ max concurrency  │       3.10x │    3.02x │      -2.6% │\n"
        "└──────────────────┴─────────────┴──────────┴────────────┘\n"
        "vLLM: started; vllmtune fit: fits: 3 concurrent sequences at max_model_len 8,192 (2 to 3 within the \n"
        "error band)\n"
        "note: GPU memory 22.05 GiB from the log\n"
    )


def test_a_log_of_a_failed_start_says_the_failure() -> None:
    assert table_text("CUDA out of memory").splitlines()[-3:] == [
        "vLLM: CUDA out of memory; vllmtune fit: fits: 3 concurrent sequences at max_model_len 8,192 (2 to 3 ",
        "within the error band)",
        "note: GPU memory 22.05 GiB from the log",
    ]
