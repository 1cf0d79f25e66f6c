"""Seeded workloads that exercise each lever, and user JSONL eval cases.

Every workload is a list of :class:`Case` built from a seed, so two runs (two configs of the
ladder) send exactly the same requests in the same order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from vllmtune.errors import VllmtuneError

WORDS = (
    "the model serves requests with low latency while the cache keeps answers for repeated prompts and the "
    "scheduler batches tokens across sequences so that the accelerator stays busy during decoding of long "
    "outputs policy contract invoice customer support ticket shipment refund account password reset billing "
    "cycle region"
).split()
BUILTIN = ("shared-prefix", "duplicates", "mixed", "random")


class WorkloadError(VllmtuneError):
    """A workload cannot be built (unknown name, bad JSONL line)."""


@dataclass(frozen=True)
class Case:
    """One request: chat messages (or a prompt), its output budget, and what to expect."""

    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    expected: str | None = None
    temperature: float = 0.0

    def chat_body(self, model: str) -> dict[str, object]:
        return {
            "model": model,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def prompt(self) -> str:
        return "\n".join(c for _, c in self.messages)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def shared_prefix(
    n: int, seed: int, prefixes: int = 4, prefix_words: int = 600, suffix_words: int = 20, max_tokens: int = 32
) -> list[Case]:
    """N requests over a few long shared system prompts with unique questions (prefix caching)."""
    rng = random.Random(seed)
    systems = [f"System prompt {i}. " + _text(rng, prefix_words) for i in range(prefixes)]
    return [
        Case(
            messages=(("system", systems[i % prefixes]), ("user", f"Question {i}: " + _text(rng, suffix_words))),
            max_tokens=max_tokens,
        )
        for i in range(n)
    ]


def duplicates(n: int, seed: int, share: float = 0.5, distinct: int = 10, max_tokens: int = 32) -> list[Case]:
    """N deterministic requests of which ``share`` repeat one of ``distinct`` prompts (prompt cache)."""
    rng = random.Random(seed)
    pool = [
        Case(messages=(("user", f"Repeated question {i}: " + _text(rng, 30)),), max_tokens=max_tokens)
        for i in range(distinct)
    ]
    out = []
    for i in range(n):
        if rng.random() < share:
            out.append(pool[rng.randrange(distinct)])
        else:
            out.append(Case(messages=(("user", f"Unique question {i}: " + _text(rng, 30)),), max_tokens=max_tokens))
    return out


def mixed(n: int, seed: int, share: float = 0.3, max_tokens: int = 32) -> list[Case]:
    """shared-prefix requests of which ``share`` repeat an earlier one exactly: prefix caching
    and the prompt cache both have something to win (the five-lever ladder's default)."""
    rng = random.Random(seed)
    fresh = iter(shared_prefix(n, seed, max_tokens=max_tokens))
    out: list[Case] = []
    for _ in range(n):
        out.append(rng.choice(out) if out and rng.random() < share else next(fresh))
    return out


def random_lengths(n: int, seed: int, mean_prompt_words: int = 200, mean_output: int = 64) -> list[Case]:
    """N requests with exponentially distributed prompt and output lengths."""
    rng = random.Random(seed)
    return [
        Case(
            messages=(("user", _text(rng, max(1, int(rng.expovariate(1 / mean_prompt_words))))),),
            max_tokens=max(1, min(1024, int(rng.expovariate(1 / mean_output)))),
        )
        for _ in range(n)
    ]


def from_jsonl(path: str, default_max_tokens: int = 64) -> list[Case]:
    """Eval cases: one JSON object per line with ``input`` (text or chat messages), optional
    ``expected`` and ``max_tokens``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"{path}: not UTF-8 text") from None
    cases = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{no}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or "input" not in obj:
            raise WorkloadError(f'{path}:{no}: each line needs an object with an "input" key')
        inp = obj["input"]
        if isinstance(inp, str):
            messages: tuple[tuple[str, str], ...] = (("user", inp),)
        elif isinstance(inp, list) and all(isinstance(m, dict) and "content" in m for m in inp):
            messages = tuple((str(m.get("role", "user")), str(m["content"])) for m in inp)
        else:
            raise WorkloadError(f'{path}:{no}: "input" must be a string or a list of chat messages')
        max_tokens = obj.get("max_tokens", default_max_tokens)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise WorkloadError(f'{path}:{no}: "max_tokens" must be a positive whole number')
        expected = obj.get("expected")
        cases.append(
            Case(messages=messages, max_tokens=max_tokens, expected=None if expected is None else str(expected))
        )
    if not cases:
        raise WorkloadError(f"{path}: no cases")
    return cases


def build(name: str, n: int, seed: int, max_tokens: int | None = None, duplicate_share: float = 0.5) -> list[Case]:
    """A workload by name (built-in) or path (JSONL), cycled to ``n`` requests."""
    if name == "shared-prefix":
        cases = shared_prefix(n, seed, max_tokens=max_tokens or 32)
    elif name == "duplicates":
        cases = duplicates(n, seed, share=duplicate_share, max_tokens=max_tokens or 32)
    elif name == "mixed":
        cases = mixed(n, seed, share=duplicate_share, max_tokens=max_tokens or 32)
    elif name == "random":
        cases = random_lengths(n, seed)
    elif name.endswith(".jsonl") or Path(name).is_file():
        base = from_jsonl(name)
        cases = [base[i % len(base)] for i in range(n)]
    else:
        raise WorkloadError(f"unknown workload {name!r}: use {', '.join(BUILTIN)} or a JSONL file of eval cases")
    if max_tokens is not None:
        cases = [Case(c.messages, max_tokens, c.expected, c.temperature) for c in cases]
    return cases
