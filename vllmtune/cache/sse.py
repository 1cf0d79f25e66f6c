"""Streamed <-> full answers: a streamed (SSE) answer assembled into the full response it stands
for, a full response replayed as vLLM-shaped SSE frames, and the framing of both on the wire.

Pure functions over JSON text and bytes: imports nothing of the proxy but :mod:`vllmtune.cache.wire`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from vllmtune.cache.wire import mark_cached

# Fields of a streamed chat delta the proxy can assemble into a full message.
DELTA_KEYS = frozenset({"role", "content", "reasoning_content", "reasoning", "tool_calls"})


def assemble(frames: list[str]) -> dict[str, Any] | None:
    """The full (non-streamed) response of a streamed answer, or None when it cannot be rebuilt
    faithfully (logprobs, several choices, delta fields the proxy does not know)."""
    text: list[str] = []
    reasoning: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    role, finish, stop_reason, usage = "assistant", None, None, None
    base: dict[str, Any] = {}
    chat: bool | None = None
    for f in frames:
        obj = json.loads(f)
        if not isinstance(obj, dict):
            return None
        base = base or obj
        for c in obj.get("choices") or ():
            if c.get("index", 0) != 0 or c.get("logprobs") is not None:
                return None
            if "delta" in c:
                chat = True
                d = c["delta"] or {}
                if not DELTA_KEYS.issuperset(d):
                    return None
                role = d.get("role") or role
                text.append(d.get("content") or "")
                reasoning.append(d.get("reasoning_content") or d.get("reasoning") or "")
                for tc in d.get("tool_calls") or ():
                    slot = tools.setdefault(int(tc.get("index", 0)), {"function": {"name": "", "arguments": ""}})
                    for k in ("id", "type"):
                        if tc.get(k):
                            slot[k] = tc[k]
                    fn = tc.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
            elif "text" in c:
                chat = False
                text.append(c.get("text") or "")
            finish = c.get("finish_reason") or finish
            stop_reason = c.get("stop_reason", stop_reason)
        usage = obj.get("usage") or usage
    if chat is None:
        return None
    out: dict[str, Any] = {"id": base.get("id", "cached"), "created": base.get("created", int(time.time()))}
    out["model"] = base.get("model", "")
    if chat:
        msg: dict[str, Any] = {"role": role, "content": "".join(text)}
        if any(reasoning):
            msg["reasoning_content"] = "".join(reasoning)
        if tools:
            msg["tool_calls"] = [{"type": "function", **tools[i]} for i in sorted(tools)]
            if not msg["content"]:
                msg["content"] = None
        out["object"] = "chat.completion"
        choice: dict[str, Any] = {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}
    else:
        out["object"] = "text_completion"
        choice = {"index": 0, "text": "".join(text), "logprobs": None, "finish_reason": finish}
    if stop_reason is not None:
        choice["stop_reason"] = stop_reason
    out["choices"] = [choice]
    if usage:
        out["usage"] = usage
    return out


def synthesize_frames(full: dict[str, Any]) -> list[str] | None:
    """SSE data payloads, in vLLM's chunk shape, for a streamed request served from a full
    answer (None when that cannot be done faithfully, e.g. with logprobs)."""
    choices = full.get("choices") or []
    if len(choices) != 1 or choices[0].get("logprobs") is not None:
        return None
    choice = choices[0]
    base = {"id": full.get("id", "cached"), "created": full.get("created", 0), "model": full.get("model", "")}
    end: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
    if "stop_reason" in choice:
        end["stop_reason"] = choice["stop_reason"]
    frames: list[dict[str, Any]] = []
    if full.get("object") == "chat.completion":
        kind = "chat.completion.chunk"
        msg = choice.get("message") or {}

        def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
            c = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None, **extra}
            return {**base, "object": kind, "choices": [c]}

        frames.append(chunk({"role": msg.get("role", "assistant"), "content": ""}))
        if msg.get("reasoning_content"):
            frames.append(chunk({"reasoning_content": msg["reasoning_content"]}))
        if msg.get("content"):
            frames.append(chunk({"content": msg["content"]}))
        for i, tc in enumerate(msg.get("tool_calls") or ()):
            frames.append(chunk({"tool_calls": [{"index": i, **tc}]}))
        frames.append(chunk({"content": ""}, **end))
    elif full.get("object") == "text_completion":
        kind = "text_completion"
        frames.append(
            {**base, "object": kind, "choices": [{"index": 0, "text": choice.get("text", ""), "logprobs": None, **end}]}
        )
    else:
        return None
    if full.get("usage"):
        frames.append({**base, "object": kind, "choices": [], "usage": full["usage"]})
    return [json.dumps(f, separators=(",", ":"), ensure_ascii=False) for f in frames]


def is_usage_frame(frame: str) -> bool:
    return '"choices":[]' in frame and '"usage"' in frame


def with_usage(frames: list[str], body: str | None, want_usage: bool) -> list[str]:
    """The frames to replay for a request that does (or does not) ask for the usage chunk
    (``stream_options.include_usage``): the stored one dropped, or one added from ``body``."""
    if not want_usage:
        return [f for f in frames if not is_usage_frame(f)]
    if body and not any(is_usage_frame(f) for f in frames):
        usage = json.loads(body).get("usage")
        if usage:
            last = json.loads(frames[-1]) if frames else {}
            extra = {k: last.get(k) for k in ("id", "object", "created", "model")}
            return [*frames, json.dumps({**extra, "choices": [], "usage": usage}, separators=(",", ":"))]
    return frames


def replay(frames: list[str], head: bytes, http10: bool) -> bytes:
    """A whole SSE response from a cache hit: status line, ``head`` (ready header lines), each
    frame marked cached, then ``[DONE]``; chunked, or close-delimited for an HTTP/1.0 client."""
    start = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
    if http10:  # no chunked coding for HTTP/1.0: the body ends when the proxy closes
        parts = [start + b"connection: close\r\n" + head + b"\r\n"]
        parts += [b"data: " + mark_cached(f) + b"\n\n" for f in frames]
        parts.append(b"data: [DONE]\n\n")
    else:
        parts = [start + b"transfer-encoding: chunked\r\n" + head + b"\r\n"]
        for f in frames:
            data = b"data: " + mark_cached(f) + b"\n\n"
            parts.append(b"%x\r\n%s\r\n" % (len(data), data))
        parts.append(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    return b"".join(parts)


class FrameCollector:
    """The ``data:`` payloads of an SSE body fed piece by piece (events end at a blank line,
    LF or CRLF); ``done`` once ``data: [DONE]`` was seen."""

    __slots__ = ("buf", "done", "frames")

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.buf = b""
        self.done = False

    def feed(self, piece: bytes) -> None:
        buf = self.buf + piece if self.buf else piece
        if b"\n\n" not in buf and b"\r\n\r\n" not in buf:
            self.buf = buf
            return
        *events, self.buf = buf.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        self.done = True
                    elif payload:
                        self.frames.append(payload.decode("utf-8", "replace"))
