"""bench.stub.StubProtocol driven directly through asyncio's Protocol calls over a recording
transport (no sockets): the untimed answers, written at once, in vLLM's shapes and wording."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from vllmtune.bench.stub import StubConfig, StubProtocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))


def _post(path: str, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body).encode()
    return b"POST %s HTTP/1.1\r\nHost: s\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(raw), raw)


def _answers(cfg: StubConfig, *pieces: bytes) -> list[tuple[int, bytes]]:
    proto, t = StubProtocol(cfg), _Transport()
    proto.connection_made(t)
    for piece in pieces:
        proto.data_received(piece)
    out = []
    for raw in t.out:
        head, _, body = raw.partition(b"\r\n\r\n")
        out.append((int(head.split(b" ")[1]), body))
    return out


def test_health_models_404_and_pipelining_split_across_reads() -> None:
    cfg = StubConfig(model="org/m")
    got = _answers(cfg, b"GET /health HTTP/1.1\r\n\r\nGET /v1/mod", b"els HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
    assert got == [
        (200, b""),
        (200, b'{"object": "list", "data": [{"id": "org/m", "object": "model"}]}'),
        (404, b'{"error":"not found"}'),
    ]


def test_full_answers_chat_and_completions() -> None:
    cfg = StubConfig(model="m", tokens=3, text="ab")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    (status, raw), (status2, raw2) = _answers(
        cfg, _post("/v1/chat/completions", body), _post("/v1/completions", {"prompt": "x"})
    )
    prompt_tokens = len(json.dumps(body)) // 4
    assert (status, json.loads(raw)) == (200, {
        "id": "stub", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "abab"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 2, "total_tokens": prompt_tokens + 2},
    })  # fmt: skip
    assert (status2, json.loads(raw2)["choices"]) == (200, [{"index": 0, "text": "ababab", "finish_reason": "length"}])
    assert cfg.counters["requests"] == 2


def test_streamed_instant_answer_is_chunked_sse_ending_in_done() -> None:
    cfg = StubConfig(model="m", tokens=2, text="z")
    ((status, raw),) = _answers(cfg, _post("/v1/completions", {"prompt": "p", "stream": True}))
    assert status == 200
    payload, rest = b"", raw
    while True:  # RFC 9112 7.1: size in hex, CRLF, data, CRLF; a zero size ends the body
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            break
        payload, rest = payload + rest[:size], rest[size + 2 :]
    events = [e.removeprefix(b"data: ") for e in payload.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    texts = [c["text"] for e in events[:-1] for c in json.loads(e)["choices"]]
    assert "".join(texts) == "zz"
    usage = [json.loads(e).get("usage") for e in events[:-1]]
    assert usage[-1]["completion_tokens"] == 2


def test_faults_500_every_nth_and_vllm_context_length_400() -> None:
    cfg = StubConfig(fail_every=2)
    got = _answers(cfg, _post("/v1/completions", {"prompt": "a"}), _post("/v1/completions", {"prompt": "a"}))
    assert [s for s, _ in got] == [200, 500]
    assert got[1][1] == b'{"error":{"message":"stub failure","type":"InternalServerError"}}'
    body = {"prompt": "x" * 40, "max_tokens": 30}
    ((status, raw),) = _answers(StubConfig(max_model_len=32), _post("/v1/completions", body))
    prompt_tokens = len(json.dumps(body)) // 4
    assert (status, json.loads(raw)) == (400, {
        "object": "error",
        "message": f"This model's maximum context length is 32 tokens. However, you requested {prompt_tokens + 30} "
        f"tokens ({prompt_tokens} in the messages, 30 in the completion). Please reduce the length of the messages "
        "or completion.",
        "type": "BadRequestError", "param": None, "code": 400,
    })  # fmt: skip


def test_record_headers_appends_each_posts_path_and_headers(tmp_path: Path) -> None:
    log = tmp_path / "headers.jsonl"
    cfg = StubConfig(model="m", record_headers=str(log))
    raw = b'{"prompt": "x"}'
    post = b"POST /v1/completions HTTP/1.1\r\nHost: s\r\nX-Tenant-Id:  tenant-1 \r\nContent-Length: %d\r\n\r\n%s"
    got = _answers(cfg, b"GET /health HTTP/1.1\r\n\r\n", post % (len(raw), raw), _post("/v1/chat/completions", {}))
    assert [status for status, _ in got] == [200, 200, 200]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [  # GETs are not recorded; values as a server reads them (RFC 9110 5.5: no outer spaces)
        {"path": "/v1/completions", "headers": [["Host", "s"], ["X-Tenant-Id", "tenant-1"], ["Content-Length", "15"]]},
        {"path": "/v1/chat/completions", "headers": [["Host", "s"], ["Content-Length", "2"]]},
    ]
    assert not StubConfig().record_headers  # off by default: nothing written
