"""The built-in workloads against the built-in presets: the defaults must work together."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vllmtune.bench import workloads
from vllmtune.profile.loader import load_profile

# Characters per token of the tiny model's byte-level BPE (scripts/make_tiny_model.py), measured
# on these workloads with its tokenizer and chat template: 2.9 (shared-prefix 1,482 tokens, random
# 2,623 tokens at most with max_tokens). 2.5 leaves a margin for the chat template and a worse split.
CHARS_PER_TOKEN = 2.5


@pytest.mark.parametrize("name", workloads.BUILTIN)
def test_bench_default_workloads_fit_cpu_tiny(name: str) -> None:
    max_len = load_profile("preset:cpu-tiny").profile.model.max_model_len
    cases = workloads.build(name, 100, 0)  # bench's defaults: -n 100, --seed 0
    longest = max(sum(len(c) for _, c in case.messages) / CHARS_PER_TOKEN + case.max_tokens for case in cases)
    assert max_len is not None and longest <= max_len, (name, longest, max_len)


DATA = Path(__file__).parent / "data"


def test_sharegpt_first_human_turn_and_the_gpt_reply_length() -> None:
    path = str(DATA / "sharegpt_sample.json")
    loaded = workloads.from_file(path)
    cases = loaded.cases
    assert loaded.format == "sharegpt"
    reply_1 = (
        "It keeps the KV cache of prompt prefixes it has seen so that a new request starting the same way skips "
        "recomputing them."
    )
    # entry 2 has one turn (skipped, as vllm bench serve skips it); entry 3 opens with gpt: the human turn after
    assert [(c.messages, c.max_tokens) for c in cases] == [
        ((("user", "What does prefix caching do in a serving engine?"),), -(-len(reply_1) // 4)),
        ((("user", "Name three HTTP methods."),), 4),  # "GET, POST, PUT." is 15 characters
        (
            (("user", "Summarize: the cache proxy answers repeated prompts from Redis without calling the model."),),
            15,
        ),
    ]
    assert -(-len(reply_1) // 4) == 30
    # --max-tokens overrides the reply's length (vllm bench serve --sharegpt-output-len)
    assert {c.max_tokens for c in workloads.build(path, 5, 0, max_tokens=7)} == {7}
    assert [c.messages for c in workloads.build(path, 5, 0)] == [c.messages for c in (cases + cases)[:5]]


def test_sharegpt_reply_length_is_capped() -> None:
    assert workloads.estimate_tokens("x" * 100_000) == workloads.SHAREGPT_MAX_TOKENS
    assert workloads.estimate_tokens("") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"conversations": []}', 'a JSON workload is a list of ShareGPT entries {"conversations": [...]} '
         "(eval cases and chat requests go one per line, in JSONL)"),
        ('[{"conversations": []}, 3]', 'entry 1: needs "conversations", a list of turns {"from", "value"}'),
        ('[{"id": "x"}]', 'entry 0: needs "conversations", a list of turns {"from", "value"}'),
        ('[{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt"}]}]',
         'entry 0: conversations[1]: each turn needs "from" and "value" strings'),
        ('[{"conversations": [{"from": "gpt", "value": "hi"}]}]', "no entry has a human turn answered by gpt"),
        ('[\n {"conversations": [],}\n]', "2: not valid JSON (Expecting property name enclosed in double quotes at column 23)"),
    ],
)  # fmt: skip
def test_sharegpt_mistakes_name_the_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"  # a .json file is JSON, whatever its first character
    path.write_text(text)
    with pytest.raises(workloads.WorkloadError) as err:
        workloads.from_file(str(path))
    sep = "" if message[0].isdigit() else " "
    assert str(err.value) == f"{path}:{sep}{message}"


def test_openai_chat_jsonl() -> None:
    loaded = workloads.from_file(str(DATA / "chat_sample.jsonl"))
    cases = loaded.cases
    assert loaded.format == "openai-chat"
    assert [(c.messages, c.max_tokens) for c in cases] == [
        ((("system", "You answer in one word."), ("user", "Capital of France?")), 4),
        ((("user", "Write a haiku about batching."),), 64),  # no max_tokens: the JSONL default
        ((("user", "Hi"), ("assistant", "Hello!"), ("user", "Count to five.")), 16),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"messages": []}', '"messages" must be a non-empty list of chat messages {"role", "content"}'),
        ('{"messages": [{"role": "user"}]}', 'messages[0]: each message needs a "content" string'),
        ('{"messages": [{"role": "robot", "content": "x"}]}',
         "messages[0].role: 'robot' is not a chat role (system, user, assistant, developer, tool)"),
        ('{"messages": [{"content": "x"}], "max_tokens": "8"}', "\"max_tokens\" must be a positive whole number, not '8'"),
        ('{"prompt": "x"}', 'each line needs an object with "input" (an eval case) or "messages" (an OpenAI chat request)'),
    ],
)  # fmt: skip
def test_openai_chat_jsonl_mistakes_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "fine"}]}\n\n' + line + "\n")
    with pytest.raises(workloads.WorkloadError) as err:
        workloads.from_file(str(path))
    assert str(err.value) == f"{path}:3: {message}"


def test_jsonl_of_both_kinds(tmp_path: Path) -> None:
    path = tmp_path / "both.jsonl"
    path.write_text('{"input": "a", "expected": "b"}\n{"messages": [{"role": "user", "content": "c"}]}\n')
    loaded = workloads.from_file(str(path))
    cases = loaded.cases
    assert loaded.format == "jsonl"
    assert [(c.messages, c.expected) for c in cases] == [((("user", "a"),), "b"), ((("user", "c"),), None)]


def test_multi_turn_grows_a_shared_prefix_per_conversation() -> None:
    cases = workloads.build("multi-turn", 40, 3)
    assert cases == workloads.build("multi-turn", 40, 3)  # seeded
    assert cases != workloads.build("multi-turn", 40, 4)
    last: dict[str, tuple[tuple[str, str], ...]] = {}
    grew = 0
    for case in cases:
        system = case.messages[0]
        assert system[0] == "system" and case.messages[-1][0] == "user"
        prev = last.get(system[1])
        if prev is not None:  # the same conversation's next turn: the previous prompt, a reply, a question
            assert case.messages[: len(prev)] == prev
            assert [r for r, _ in case.messages[len(prev) :]] == ["assistant", "user"]
            grew += 1
        last[system[1]] = case.messages
    assert grew >= 30  # 4 conversations of up to ~12 turns: most requests continue one
    assert len({c.messages[0] for c in cases[:4]}) == 4  # round robin over the conversations


def test_the_result_identifies_the_workload_by_file_digest() -> None:
    path = DATA / "chat_sample.jsonl"
    _, meta = workloads.build_with_meta(str(path), 4, 0)
    assert meta == {"workload_format": "openai-chat", "workload_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert workloads.build_with_meta("multi-turn", 4, 0)[1] == {"workload_format": "built-in", "workload_sha256": None}
