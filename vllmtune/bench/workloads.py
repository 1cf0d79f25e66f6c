"""Seeded workloads that exercise each lever, and the user's own files.

Every workload is a list of :class:`Case` built from a seed (or read from a file, in its order),
so two runs (two configs of the ladder) send exactly the same requests in the same order.

Files, told apart by shape (:func:`from_file`):

- a JSON list in the ShareGPT shape, ``[{"conversations": [{"from": "human", "value": ...},
  {"from": "gpt", "value": ...}, ...]}, ...]``: the first human turn is the prompt and the gpt
  turn after it sets ``max_tokens`` (its length in tokens, estimated), as ``vllm bench serve
  --dataset-name sharegpt`` does with the model's tokenizer;
- JSONL, one object per line: an eval case ``{"input", "expected"?, "max_tokens"?}`` or an
  OpenAI chat request ``{"messages": [...], "max_tokens"?}``.

Nothing here touches the network; this module imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vllmtune.bench.headers import value_problem
from vllmtune.errors import WorkloadError

WORDS = (
    "the model serves requests with low latency while the cache keeps answers for repeated prompts and the "
    "scheduler batches tokens across sequences so that the accelerator stays busy during decoding of long "
    "outputs policy contract invoice customer support ticket shipment refund account password reset billing "
    "cycle region"
).split()
# ShareGPT replies carry no token count: their length in tokens is estimated at this many
# characters per token (English text with a BPE tokenizer; vllm bench serve counts with the model's
# tokenizer). --max-tokens overrides it, as vllm bench serve's --sharegpt-output-len does.
SHAREGPT_CHARS_PER_TOKEN = 4
SHAREGPT_MAX_TOKENS = 1024  # a reply longer than this is cut to it (vllm bench serve skips prompts of 1,024+)
HUMAN = ("human", "user")
GPT = ("gpt", "chatgpt", "assistant", "bard", "bing")


@dataclass(frozen=True)
class Case:
    """One request: chat messages (or a prompt), its output budget, and what to expect."""

    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    expected: str | None = None
    temperature: float = 0.0
    # OpenAI's end-user id (the request's "user"): a router's consistent_hash keys on it
    user: str | None = None

    def chat_body(self, model: str) -> dict[str, object]:
        body: dict[str, object] = {
            "model": model,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.user is not None:
            body["user"] = self.user
        return body

    def prompt(self) -> str:
        return "\n".join(c for _, c in self.messages)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def shared_prefix(
    n: int,
    seed: int,
    prefixes: int = 4,
    prefix_words: int = 600,
    suffix_words: int = 20,
    max_tokens: int = 32,
    users: bool = False,
) -> list[Case]:
    """N requests over a few long shared system prompts with unique questions (prefix caching);
    ``users``: each request names its prompt's tenant as its OpenAI ``user`` (``tenant-I``)."""
    rng = random.Random(seed)
    systems = [f"System prompt {i}. " + _text(rng, prefix_words) for i in range(prefixes)]
    return [
        Case(
            messages=(("system", systems[i % prefixes]), ("user", f"Question {i}: " + _text(rng, suffix_words))),
            max_tokens=max_tokens,
            user=f"tenant-{i % prefixes}" if users else None,
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


def multi_turn(
    n: int, seed: int, conversations: int = 4, turn_words: int = 40, reply_words: int = 30, max_tokens: int = 32
) -> list[Case]:
    """N requests from a few conversations that grow turn by turn: each request re-sends its
    conversation so far (a system prompt, every earlier question and a canned reply) plus a new
    question, so each turn's prompt starts with the whole previous one (prefix caching, the way
    chat traffic exercises it). The conversations take turns, round robin; a conversation that
    would outgrow ~1,000 words starts again with a fresh system prompt."""
    rng = random.Random(seed)

    def system(c: int, k: int) -> tuple[str, str]:
        return ("system", f"Conversation {c}.{k}. You are a support assistant. " + _text(rng, 60))

    talks: list[list[tuple[str, str]]] = [[system(c, 0)] for c in range(conversations)]
    restarts = [0] * conversations
    out = []
    for i in range(n):
        c = i % conversations
        words = sum(len(text.split()) for _, text in talks[c])
        if words + turn_words + reply_words > 1000:
            restarts[c] += 1
            talks[c] = [system(c, restarts[c])]
        talks[c].append(("user", f"Turn {len(talks[c]) // 2 + 1}: " + _text(rng, turn_words)))
        out.append(Case(messages=tuple(talks[c]), max_tokens=max_tokens))
        talks[c].append(("assistant", _text(rng, reply_words)))
    return out


RAG_DOCUMENTS = 4
RAG_DOCUMENT_WORDS = 210  # 4 x 210 words + the instructions: ~2,000 tokens of the demo tokenizer
RAG_DUPLICATE_SHARE = 0.4


def rag(
    n: int,
    seed: int,
    documents: int = RAG_DOCUMENTS,
    document_words: int = RAG_DOCUMENT_WORDS,
    share: float = RAG_DUPLICATE_SHARE,
    max_tokens: int = 32,
) -> list[Case]:
    """Retrieval-augmented questions: every request carries the same long system prompt (the
    instructions and a few retrieved documents, ~2,000 tokens) and a varied question; exactly
    ``round(share * n)`` requests (at most n - 1) repeat an earlier request exactly, at positions
    drawn from the seed. Deterministic (temperature 0): a repeat is a prompt-cache hit, and every
    request after the first shares the prefix (prefix caching)."""
    rng = random.Random(seed)
    docs = "\n\n".join(f"Document {d + 1}.\n" + _text(rng, document_words) for d in range(documents))
    system = (
        "You are a support assistant. Answer the question from the documents below only, briefly, and name "
        "the document you used.\n\n" + docs
    )
    repeats = set(rng.sample(range(1, n), min(max(0, round(share * n)), n - 1))) if n > 1 else set()
    out: list[Case] = []
    for i in range(n):
        if i in repeats:
            out.append(out[rng.randrange(i)])
        else:
            question = f"Question {i}: what do the documents say about " + _text(rng, 12) + "?"
            out.append(Case(messages=(("system", system), ("user", question)), max_tokens=max_tokens))
    return out


@dataclass(frozen=True)
class _Builtin:
    """A built-in workload: what it exercises (the CLI help) and how it is built from
    (n, seed, max_tokens or None, duplicate share)."""

    help: str
    make: Callable[[int, int, int | None, float], list[Case]]


# The one declaration of the built-in workloads: bench's and the ladder's help read it.
BUILTINS: dict[str, _Builtin] = {
    "shared-prefix": _Builtin(
        "a few long shared system prompts, unique questions (prefix caching)",
        lambda n, seed, mt, _share: shared_prefix(n, seed, max_tokens=mt or 32),
    ),
    "duplicates": _Builtin(
        "--duplicate-share of the requests repeat one of ten prompts (prompt cache)",
        lambda n, seed, mt, share: duplicates(n, seed, share=share, max_tokens=mt or 32),
    ),
    "mixed": _Builtin(
        "shared-prefix with --duplicate-share exact repeats (prefix caching and the prompt cache)",
        lambda n, seed, mt, share: mixed(n, seed, share=share, max_tokens=mt or 32),
    ),
    "random": _Builtin(
        "exponentially distributed prompt and output lengths",
        lambda n, seed, _mt, _share: random_lengths(n, seed),
    ),
    "multi-turn": _Builtin(
        "conversations growing turn by turn",
        lambda n, seed, mt, _share: multi_turn(n, seed, max_tokens=mt or 32),
    ),
    "rag": _Builtin(
        "one ~2,000-token system prompt of documents, varied questions, 40% exact repeats (the CPU demo)",
        lambda n, seed, mt, _share: rag(n, seed, max_tokens=mt or 32),
    ),
}
BUILTIN = tuple(BUILTINS)
FILES_HELP = (
    "a file: JSONL of eval cases {input, expected?, max_tokens?} or OpenAI chat requests {messages, max_tokens?}, "
    "or ShareGPT JSON [{conversations: [...]}]"
)


def help_text() -> str:
    """The --workload help: every built-in with what it exercises, then the files."""
    return "; ".join(f"{name}: {b.help}" for name, b in BUILTINS.items()) + "; or " + FILES_HELP + "."


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror}") from None


def _decode(path: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkloadError(f"{path}: not UTF-8 text") from None


def _read(path: str) -> str:
    return _decode(path, _read_bytes(path))


def _messages(where: str, value: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise WorkloadError(f'{where}: "{key}" must be a non-empty list of chat messages {{"role", "content"}}')
    out = []
    for k, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise WorkloadError(f'{where}: {key}[{k}]: each message needs a "content" string')
        role = m.get("role", "user")
        if role not in ("system", "user", "assistant", "developer", "tool"):
            raise WorkloadError(
                f"{where}: {key}[{k}].role: {role!r} is not a chat role (system, user, assistant, developer, tool)"
            )
        out.append((str(role), m["content"]))
    return tuple(out)


def _max_tokens(where: str, obj: dict[str, object], default: int) -> int:
    value = obj.get("max_tokens", obj.get("max_completion_tokens", default))
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WorkloadError(f'{where}: "max_tokens" must be a positive whole number, not {value!r}')
    return value


def from_jsonl(
    path: str,
    default_max_tokens: int = 64,
    text: str | None = None,
    kinds: set[str] | None = None,
    session_header: str | None = None,
) -> list[Case]:
    """One JSON object per line: an eval case ``{"input": text or messages, "expected"?,
    "max_tokens"?}`` or an OpenAI chat request ``{"messages": [...], "max_tokens"?, "user"?}``; the
    kinds met are added to ``kinds`` (``eval-cases``, ``openai-chat``). With ``session_header``
    (bench --session-header) each ``user`` must be sendable as that header's value."""
    kinds = set() if kinds is None else kinds
    lines = (_read(path) if text is None else text).splitlines()
    cases = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(obj, dict) and "messages" in obj and "input" not in obj:
            kinds.add("openai-chat")
            user = obj.get("user")
            if user is not None and not isinstance(user, str):
                raise WorkloadError(f'{where}: "user" must be a string (OpenAI\'s end-user id)')
            why = value_problem(user) if user is not None and session_header else None
            if why:
                raise WorkloadError(
                    f'{where}: "user" {user!r} cannot be sent as the {session_header} header: {why}',
                    hint="change that user, or leave out --session-header",
                )
            cases.append(
                Case(
                    messages=_messages(where, obj["messages"], "messages"),
                    max_tokens=_max_tokens(where, obj, default_max_tokens),
                    user=user,
                )
            )
            continue
        if not isinstance(obj, dict) or "input" not in obj:
            raise WorkloadError(
                f'{where}: each line needs an object with "input" (an eval case) or "messages" (an OpenAI chat request)'
            )
        inp = obj["input"]
        if isinstance(inp, str):
            messages: tuple[tuple[str, str], ...] = (("user", inp),)
        elif isinstance(inp, list) and all(isinstance(m, dict) and "content" in m for m in inp):
            messages = tuple((str(m.get("role", "user")), str(m["content"])) for m in inp)
        else:
            raise WorkloadError(f'{where}: "input" must be a string or a list of chat messages')
        expected = obj.get("expected")
        kinds.add("eval-cases")
        cases.append(
            Case(
                messages=messages,
                max_tokens=_max_tokens(where, obj, default_max_tokens),
                expected=None if expected is None else str(expected),
            )
        )
    if not cases:
        raise WorkloadError(f"{path}: no cases")
    return cases


def estimate_tokens(text: str) -> int:
    """A reply's length in tokens, estimated from its characters (see SHAREGPT_CHARS_PER_TOKEN)."""
    return max(1, min(SHAREGPT_MAX_TOKENS, -(-len(text) // SHAREGPT_CHARS_PER_TOKEN)))


def from_sharegpt(path: str, text: str | None = None) -> list[Case]:
    """A ShareGPT-shaped JSON list: per entry, the first human turn as the prompt and the gpt turn
    right after it for ``max_tokens`` (its estimated token count). Entries without a human turn
    answered by gpt are skipped, as vllm bench serve skips entries of fewer than two turns; a
    malformed entry is an error naming its index."""
    raw = _read(path) if text is None else text
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, list):
        raise WorkloadError(
            f'{path}: a JSON workload is a list of ShareGPT entries {{"conversations": [...]}} '
            "(eval cases and chat requests go one per line, in JSONL)"
        )
    cases = []
    for k, entry in enumerate(data):
        where = f"{path}: entry {k}"
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list):
            raise WorkloadError(f'{where}: needs "conversations", a list of turns {{"from", "value"}}')
        for t, turn in enumerate(turns):
            if (
                not isinstance(turn, dict)
                or not isinstance(turn.get("from"), str)
                or not isinstance(turn.get("value"), str)
            ):
                raise WorkloadError(f'{where}: conversations[{t}]: each turn needs "from" and "value" strings')
        for t in range(len(turns) - 1):
            if turns[t]["from"].lower() in HUMAN and turns[t + 1]["from"].lower() in GPT:
                prompt, reply = turns[t]["value"], turns[t + 1]["value"]
                cases.append(Case(messages=(("user", prompt),), max_tokens=estimate_tokens(reply)))
                break
    if not cases:
        raise WorkloadError(f"{path}: no entry has a human turn answered by gpt")
    return cases


@dataclass(frozen=True)
class FileWorkload:
    """A workload file's cases, its format and the sha256 of the bytes they were read from."""

    cases: list[Case]
    format: str  # sharegpt | openai-chat | eval-cases | jsonl (both JSONL kinds)
    sha256: str


def from_file(path: str, session_header: str | None = None) -> FileWorkload:
    """The file's cases, told apart by shape: ShareGPT (a JSON list, or any ``.json`` file), or
    JSONL of OpenAI chat requests and/or eval cases; with the digest of the bytes read
    (``session_header``: see :func:`from_jsonl`)."""
    raw = _read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(path, raw)
    if text.lstrip()[:1] == "[" or path.endswith(".json"):
        return FileWorkload(from_sharegpt(path, text), "sharegpt", digest)
    kinds: set[str] = set()
    cases = from_jsonl(path, text=text, kinds=kinds, session_header=session_header)
    return FileWorkload(cases, kinds.pop() if len(kinds) == 1 else "jsonl", digest)


def build(name: str, n: int, seed: int, max_tokens: int | None = None, duplicate_share: float = 0.5) -> list[Case]:
    """A workload by name (built-in) or path (JSONL or ShareGPT JSON), cycled to ``n`` requests."""
    return build_with_meta(name, n, seed, max_tokens, duplicate_share)[0]


def build_with_meta(
    name: str,
    n: int,
    seed: int,
    max_tokens: int | None = None,
    duplicate_share: float = 0.5,
    session_header: str | None = None,
) -> tuple[list[Case], dict[str, str | None]]:
    """:func:`build`, and what identifies the workload in the result: ``workload_format`` and, for
    a file, ``workload_sha256`` (a built-in is identified by its name and seed). With
    ``session_header`` a file's users are checked as that header's values (:func:`from_jsonl`)."""
    meta: dict[str, str | None] = {"workload_format": "built-in", "workload_sha256": None}
    if name in BUILTINS:
        cases = BUILTINS[name].make(n, seed, max_tokens, duplicate_share)
    elif name.endswith((".jsonl", ".json")) or Path(name).is_file():
        loaded = from_file(name, session_header)
        meta = {"workload_format": loaded.format, "workload_sha256": loaded.sha256}
        cases = [loaded.cases[i % len(loaded.cases)] for i in range(n)]
    else:
        raise WorkloadError(
            f"unknown workload {name!r}",
            hint=f"use {', '.join(BUILTIN)}, a JSONL file (eval cases or OpenAI chat requests) or a ShareGPT JSON file",
            sep=": ",
        )
    if max_tokens is not None:
        cases = [dataclasses.replace(c, max_tokens=max_tokens) for c in cases]  # the user kept
    return cases, meta
