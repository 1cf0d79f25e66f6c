"""sse's public functions called directly, against vLLM's chunk shape (OpenAI streaming:
``chat.completion.chunk`` deltas, a final ``choices: []`` usage chunk under
``stream_options.include_usage``) and the SSE framing of the HTML living standard
(events end at a blank line, LF or CRLF; ``data:`` lines carry the payload)."""

from __future__ import annotations

import json

from vllmtune.cache.sse import FrameCollector, assemble, is_usage_frame, synthesize_frames, with_usage

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 7,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "reasoning_content": "think"},
            "logprobs": None,
            "finish_reason": "stop",
            "stop_reason": 2,  # vLLM: the stop token id (int), a stop string, or null
        }
    ],
    "usage": USAGE,
}


def _chunk(delta: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "created": 7,
        "model": "m",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None, **extra}],
    }


def test_synthesize_frames_chat_in_vllm_chunk_shape() -> None:
    frames = synthesize_frames(CHAT)
    assert frames is not None
    assert [json.loads(f) for f in frames] == [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "think"}),
        _chunk({"content": "hi"}),
        _chunk({"content": ""}, finish_reason="stop", stop_reason=2),
        {"id": "chatcmpl-1", "created": 7, "model": "m", "object": "chat.completion.chunk", "choices": [],
         "usage": USAGE},
    ]  # fmt: skip
    assert frames[0] == (
        '{"id":"chatcmpl-1","created":7,"model":"m","object":"chat.completion.chunk",'
        '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}'
    )
    assert assemble(frames) == CHAT  # the round trip restores the full answer


def test_synthesize_frames_tool_calls_and_text_completion() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    full = {"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": None,
            "tool_calls": [call]}, "finish_reason": "tool_calls"}]}  # fmt: skip
    frames = synthesize_frames(full)
    assert frames is not None
    base = {"id": "cached", "created": 0, "model": ""}
    assert [json.loads(f) for f in frames] == [
        {**_chunk({"role": "assistant", "content": ""}), **base},
        {**_chunk({"tool_calls": [{"index": 0, **call}]}), **base},
        {**_chunk({"content": ""}, finish_reason="tool_calls"), **base},
    ]
    text = {"id": "cmpl-2", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": "ab", "logprobs": None, "finish_reason": "length"}]}  # fmt: skip
    assert synthesize_frames(text) == [
        '{"id":"cmpl-2","created":1,"model":"m","object":"text_completion",'
        '"choices":[{"index":0,"text":"ab","logprobs":null,"finish_reason":"length"}]}'
    ]


def test_synthesize_frames_refuses_what_it_cannot_replay_faithfully() -> None:
    assert synthesize_frames({"object": "chat.completion", "choices": []}) is None
    two = [{"message": {"content": "a"}}, {"message": {"content": "b"}}]
    assert synthesize_frames({"object": "chat.completion", "choices": two}) is None
    with_logprobs = [{"message": {"content": "a"}, "logprobs": {"content": []}}]
    assert synthesize_frames({"object": "chat.completion", "choices": with_logprobs}) is None
    assert synthesize_frames({"object": "embedding", "choices": [{"text": "a"}]}) is None


def test_is_usage_frame() -> None:
    assert is_usage_frame('{"id":"x","choices":[],"usage":{"total_tokens":1}}') is True
    assert is_usage_frame('{"id":"x","choices":[{"text":"a"}],"usage":{"total_tokens":1}}') is False
    assert is_usage_frame('{"id":"x","choices":[]}') is False


def test_with_usage_drops_keeps_or_adds_the_usage_chunk() -> None:
    body_frame = '{"id":"a","object":"text_completion","created":1,"model":"m","choices":[{"text":"x"}]}'
    usage_frame = '{"id":"a","choices":[],"usage":{"total_tokens":5}}'
    assert with_usage([body_frame, usage_frame], None, want_usage=False) == [body_frame]
    assert with_usage([body_frame, usage_frame], '{"usage":{"total_tokens":9}}', want_usage=True) == [
        body_frame,
        usage_frame,
    ]
    assert with_usage([body_frame], json.dumps({"usage": USAGE}), want_usage=True) == [
        body_frame,
        '{"id":"a","object":"text_completion","created":1,"model":"m","choices":[],'
        '"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    ]
    assert with_usage([body_frame], '{"choices":[]}', want_usage=True) == [body_frame]  # no usage to add
    assert with_usage([body_frame], None, want_usage=True) == [body_frame]


def test_frame_collector_lf_crlf_split_pieces_and_done() -> None:
    c = FrameCollector()
    c.feed(b'data: {"a":1}\n')
    assert (c.frames, c.done, c.buf) == ([], False, b'data: {"a":1}\n')  # event not ended yet
    c.feed(b'\n: a comment\r\nevent: x\r\ndata:{"b":2}\r\n\r\ndata: ')
    assert c.frames == ['{"a":1}', '{"b":2}']
    c.feed(b"\n\ndata: [DO")
    assert c.frames == ['{"a":1}', '{"b":2}']  # an empty data line is no frame
    c.feed(b"NE]\n\n")
    assert (c.frames, c.done, c.buf) == (['{"a":1}', '{"b":2}'], True, b"")


def test_frame_collector_replaces_invalid_utf8() -> None:
    c = FrameCollector()
    c.feed(b"data: \xff\xfeok\n\n")
    assert c.frames == ["\ufffd\ufffdok"]
