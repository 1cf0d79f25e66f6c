"""bench.workloads' builders and readers called directly: the seeded built-ins by their
documented shape, from_jsonl / from_sharegpt on in-memory text (whole cases, whole messages
for every refusal), and FileWorkload from from_file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vllmtune.bench.workloads import (
    BUILTINS,
    RAG_DOCUMENT_WORDS,
    RAG_DOCUMENTS,
    SHAREGPT_MAX_TOKENS,
    WORDS,
    Case,
    FileWorkload,
    WorkloadError,
    build,
    build_with_meta,
    from_file,
    from_jsonl,
    from_sharegpt,
    help_text,
    multi_turn,
    rag,
    random_lengths,
    shared_prefix,
)


def _words(text: str) -> list[str]:
    return text.split()


def test_shared_prefix_cycles_a_few_system_prompts_with_unique_questions() -> None:
    cases = shared_prefix(6, seed=1, prefixes=2, prefix_words=5, suffix_words=3, max_tokens=7)
    assert len(cases) == 6
    systems = [c.messages[0] for c in cases]
    assert [s[0] for s in systems] == ["system"] * 6
    assert systems[0] == systems[2] == systems[4] != systems[1] == systems[3] == systems[5]
    assert _words(systems[0][1])[:3] == ["System", "prompt", "0."] and len(_words(systems[0][1])) == 3 + 5
    for i, c in enumerate(cases):
        role, question = c.messages[1]
        assert (role, _words(question)[:2], len(_words(question)), c.max_tokens) == (
            "user",
            ["Question", f"{i}:"],
            5,
            7,
        )
        assert set(_words(question)[2:]) <= set(WORDS)
    assert shared_prefix(6, seed=1, prefixes=2, prefix_words=5, suffix_words=3, max_tokens=7) == cases
    assert shared_prefix(6, seed=2, prefixes=2, prefix_words=5, suffix_words=3, max_tokens=7) != cases


def repeats(cases: list[Case]) -> int:
    """Requests that repeat an earlier one exactly."""
    return len(cases) - len(set(cases))


def test_rag_one_long_shared_prefix_varied_questions_and_exactly_40_percent_repeats() -> None:
    cases = rag(50, seed=4)
    assert len(cases) == 50 and repeats(cases) == 20  # 40% of 50, exactly
    assert {c.messages[0] for c in cases} == {cases[0].messages[0]}  # one system prompt for all
    role, system = cases[0].messages[0]
    # the instructions (20 words), then each document's "Document k." and its words
    assert role == "system" and len(_words(system)) == 20 + RAG_DOCUMENTS * (2 + RAG_DOCUMENT_WORDS) == 868
    assert len(system) == 5865  # ~2,000 tokens of the demo tokenizer (2,222 tokens per 1,000 of these words)
    assert [_words(system)[20 + k * (2 + RAG_DOCUMENT_WORDS)] for k in range(RAG_DOCUMENTS)] == ["Document"] * 4
    questions = [c.messages[1] for c in dict.fromkeys(cases)]
    assert len(questions) == 30 and len(set(questions)) == 30  # the questions differ
    assert all(c.max_tokens == 32 and c.temperature == 0.0 for c in cases)  # deterministic answers: cacheable
    first = {c: i for i, c in reversed(list(enumerate(cases)))}
    for i, c in enumerate(cases):  # a fresh request is numbered by its position; a repeat copies an earlier one
        if first[c] == i:
            assert c.messages[1][0] == "user" and _words(c.messages[1][1])[:2] == ["Question", f"{i}:"]
        assert first[c] <= i
    assert rag(50, seed=4) == cases
    assert rag(50, seed=5) != cases
    assert [repeats(rag(n, seed=0)) for n in (1, 2, 5, 24, 100)] == [0, 1, 2, 10, 40]  # round(0.4 n), at most n - 1


def test_the_builtins_are_declared_once() -> None:
    assert list(BUILTINS) == ["shared-prefix", "duplicates", "mixed", "random", "multi-turn", "rag"]
    assert build("rag", 10, 3, max_tokens=8) == [Case(c.messages, 8) for c in rag(10, 3)]
    assert help_text().startswith(
        "shared-prefix: a few long shared system prompts, unique questions (prefix caching); "
    )
    assert (
        "; rag: one ~2,000-token system prompt of documents, varied questions, 40% exact repeats (the CPU demo); or a file"
        in help_text()
    )


def test_random_lengths_are_bounded_and_seeded() -> None:
    cases = random_lengths(200, seed=3, mean_prompt_words=20, mean_output=500)
    assert len(cases) == 200
    assert all(len(c.messages) == 1 and c.messages[0][0] == "user" for c in cases)
    assert all(len(_words(c.messages[0][1])) >= 1 for c in cases)
    assert all(1 <= c.max_tokens <= 1024 for c in cases)
    assert max(c.max_tokens for c in cases) == 1024  # a mean of 500 reaches the cap in 200 draws
    assert len({c.max_tokens for c in cases}) > 50
    assert random_lengths(200, seed=3, mean_prompt_words=20, mean_output=500) == cases


def test_multi_turn_resends_each_conversation_so_far() -> None:
    cases = multi_turn(6, seed=0, conversations=2, turn_words=3, reply_words=2, max_tokens=5)
    first, third, fifth = cases[0].messages, cases[2].messages, cases[4].messages  # conversation 0
    assert [r for r, _ in first] == ["system", "user"]
    assert [r for r, _ in third] == ["system", "user", "assistant", "user"]
    assert [r for r, _ in fifth] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[:2] == first and fifth[:4] == third
    assert [_words(m)[:2] for r, m in fifth if r == "user"] == [["Turn", "1:"], ["Turn", "2:"], ["Turn", "3:"]]
    assert _words(first[0][1])[:2] == ["Conversation", "0.0."]
    assert _words(cases[1].messages[0][1])[:2] == ["Conversation", "1.0."]
    assert {c.max_tokens for c in cases} == {5}


def test_multi_turn_restarts_a_conversation_before_1000_words() -> None:
    cases = multi_turn(12, seed=0, conversations=1, turn_words=200, reply_words=100)
    sizes = [sum(len(_words(m)) for _, m in c.messages) for c in cases]
    assert max(sizes) <= 1000
    restarted = [i for i, c in enumerate(cases) if len(c.messages) == 2 and i > 0]
    assert restarted == [3, 6, 9]
    assert _words(cases[3].messages[0][1])[:2] == ["Conversation", "0.1."]


def test_from_jsonl_cases_and_kinds() -> None:
    text = (
        '{"input": "2+2?", "expected": 4, "max_tokens": 3}\n'
        "\n"
        '{"input": [{"role": "system", "content": "be brief"}, {"content": "hi"}]}\n'
        '{"messages": [{"role": "user", "content": "q"}], "max_completion_tokens": 9}\n'
    )
    kinds: set[str] = set()
    assert from_jsonl("w.jsonl", default_max_tokens=8, text=text, kinds=kinds) == [
        Case(messages=(("user", "2+2?"),), max_tokens=3, expected="4"),
        Case(messages=(("system", "be brief"), ("user", "hi")), max_tokens=8),
        Case(messages=(("user", "q"),), max_tokens=9),
    ]
    assert kinds == {"eval-cases", "openai-chat"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{bad", "w.jsonl:1: not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (
            "[1]",
            'w.jsonl:1: each line needs an object with "input" (an eval case) or "messages" (an OpenAI chat request)',
        ),
        ('{"input": 3}', 'w.jsonl:1: "input" must be a string or a list of chat messages'),
        ('{"input": "x", "max_tokens": 0}', 'w.jsonl:1: "max_tokens" must be a positive whole number, not 0'),
        ('{"input": "x", "max_tokens": true}', 'w.jsonl:1: "max_tokens" must be a positive whole number, not True'),
        ('{"messages": []}', 'w.jsonl:1: "messages" must be a non-empty list of chat messages {"role", "content"}'),
        ('{"messages": [{"role": "user"}]}', 'w.jsonl:1: messages[0]: each message needs a "content" string'),
        (
            '{"messages": [{"role": "bot", "content": "x"}]}',
            "w.jsonl:1: messages[0].role: 'bot' is not a chat role (system, user, assistant, developer, tool)",
        ),
        ('{"messages": [{"content": "x"}], "user": 7}', 'w.jsonl:1: "user" must be a string (OpenAI\'s end-user id)'),
        ("\n  \n", "w.jsonl: no cases"),
    ],
)
def test_from_jsonl_refusals(line: str, message: str) -> None:
    with pytest.raises(WorkloadError) as err:
        from_jsonl("w.jsonl", text=line)
    assert str(err.value) == message


def test_from_sharegpt_first_answered_human_turn() -> None:
    short, long = "x" * 9, "y" * 100_000
    text = f"""[
      {{"conversations": [{{"from": "system", "value": "s"}}, {{"from": "human", "value": "q1"}},
                          {{"from": "gpt", "value": "{short}"}}, {{"from": "human", "value": "q2"}}]}},
      {{"conversations": [{{"from": "human", "value": "unanswered"}}]}},
      {{"conversations": [{{"from": "User", "value": "q3"}}, {{"from": "ChatGPT", "value": "{long}"}}]}}
    ]"""
    assert from_sharegpt("s.json", text=text) == [
        Case(messages=(("user", "q1"),), max_tokens=3),  # 9 characters at 4 per token, rounded up
        Case(messages=(("user", "q3"),), max_tokens=SHAREGPT_MAX_TOKENS),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[\n{", "s.json:2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (
            "{}",
            's.json: a JSON workload is a list of ShareGPT entries {"conversations": [...]} '
            "(eval cases and chat requests go one per line, in JSONL)",
        ),
        ("[1]", 's.json: entry 0: needs "conversations", a list of turns {"from", "value"}'),
        (
            '[{"conversations": [{"from": "human"}]}]',
            's.json: entry 0: conversations[0]: each turn needs "from" and "value" strings',
        ),
        ('[{"conversations": []}]', "s.json: no entry has a human turn answered by gpt"),
    ],
)
def test_from_sharegpt_refusals(text: str, message: str) -> None:
    with pytest.raises(WorkloadError) as err:
        from_sharegpt("s.json", text=text)
    assert str(err.value) == message


def test_from_file_gives_a_file_workload_with_the_digest_of_its_bytes(tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_bytes(b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}\n')
    assert from_file(str(chat)) == FileWorkload(
        cases=[Case(messages=(("user", "hi"),), max_tokens=2)],
        format="openai-chat",
        sha256=hashlib.sha256(chat.read_bytes()).hexdigest(),
    )
    both = tmp_path / "both.jsonl"
    both.write_text('{"input": "a"}\n{"messages": [{"content": "b"}]}\n')
    assert from_file(str(both)).format == "jsonl"
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"input": "caf\xe9"}\n')
    with pytest.raises(WorkloadError) as err:
        from_file(str(latin))
    assert str(err.value) == f"{latin}: not UTF-8 text"
    with pytest.raises(WorkloadError) as err:
        from_file(str(tmp_path / "missing.jsonl"))
    assert str(err.value) == f"{tmp_path / 'missing.jsonl'}: cannot read: No such file or directory"


def test_the_openai_user_field_is_read_and_sent() -> None:
    from vllmtune.bench.runner import Options, _body

    (case,) = from_jsonl("w.jsonl", text='{"messages": [{"role": "user", "content": "hi"}], "user": "tenant-7"}')
    assert case.user == "tenant-7"
    assert case.chat_body("m") == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "temperature": 0.0,
        "user": "tenant-7",
    }
    chat = json.loads(_body(case, Options(url="http://x", model="m", cases=[case], stream=False)))
    assert chat["user"] == "tenant-7"
    completion = json.loads(_body(case, Options(url="http://x", model="m", cases=[case], api="completions")))
    assert (completion["prompt"], completion["user"]) == ("hi", "tenant-7")
    (plain,) = from_jsonl("w.jsonl", text='{"messages": [{"role": "user", "content": "hi"}]}')
    assert "user" not in plain.chat_body("m")


def test_shared_prefix_names_each_tenant_as_the_user_when_asked() -> None:
    cases = shared_prefix(6, seed=0, prefixes=3, users=True)
    assert [c.user for c in cases] == ["tenant-0", "tenant-1", "tenant-2"] * 2
    assert [c.messages[0] for c in cases[:3]] == [c.messages[0] for c in cases[3:]]
    assert all(c.user is None for c in shared_prefix(3, seed=0))


CHAT = '{"messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(
    ("user", "why"),
    [
        ('"tenant\\r\\nX-Evil: 1"', "it holds the control character U+000D"),
        ('"a\\u0000"', "it holds the control character U+0000"),
        ('"caf\\u00e9"', "it holds the non-ASCII character U+00E9 (session header values are ASCII only)"),
        ('"nel\\u0085"', "it holds the non-ASCII character U+0085 (session header values are ASCII only)"),
        (
            '" padded "',
            "it starts or ends with a space or tab (a server strips them: the router would see another value)",
        ),
        ('""', "it is empty (an empty value names no session)"),
    ],
)
def test_users_that_are_not_header_values_are_refused_with_their_line(user: str, why: str) -> None:
    text = f'{CHAT}, "user": "tenant-0"}}\n\n{CHAT}, "user": {user}}}\n'
    with pytest.raises(WorkloadError) as err:
        from_jsonl("w.jsonl", text=text, session_header="x-tenant-id")
    shown = repr(json.loads(user))
    assert str(err.value) == (
        f'w.jsonl:3: "user" {shown} cannot be sent as the x-tenant-id header: {why}; '
        "change that user, or leave out --session-header"
    )
    # without --session-header the user only goes in the JSON body, where any string is fine
    assert from_jsonl("w.jsonl", text=text)[1].user == json.loads(user)


def test_from_file_and_build_with_meta_check_users_for_the_session_header(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{CHAT}, "user": "tenant-0"}}\n{CHAT}, "user": "tenant\\n1"}}\n')
    expected = (
        f"{path}:2: \"user\" 'tenant\\n1' cannot be sent as the X-User-Id header: it holds the control character "
        "U+000A; change that user, or leave out --session-header"
    )
    with pytest.raises(WorkloadError) as err:
        from_file(str(path), "X-User-Id")
    assert str(err.value) == expected
    with pytest.raises(WorkloadError) as err:
        build_with_meta(str(path), 4, 0, session_header="X-User-Id")
    assert str(err.value) == expected
    assert [c.user for c in build_with_meta(str(path), 3, 0)[0]] == ["tenant-0", "tenant\n1", "tenant-0"]


def test_max_tokens_override_keeps_each_cases_user(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{CHAT}, "user": "tenant-0"}}\n{CHAT}}}\n')
    cases, _ = build_with_meta(str(path), 2, 0, max_tokens=5, session_header="x-tenant-id")
    assert [(c.user, c.max_tokens) for c in cases] == [("tenant-0", 5), (None, 5)]
