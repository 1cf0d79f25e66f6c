"""A stand-in ``vllm serve`` for local-runtime tests (the real one runs in test_local_real_vllm.py):
``stub_vllm.py serve MODEL [--host H] [--port P] [--served-model-name N] [other flags ignored]``
serves /health, /v1/models and a fixed /v1/completions + /v1/chat/completions answer.
STUB_VLLM_DELAY=<s> waits before listening; STUB_VLLM_CRASH=<msg> prints it and exits 1.

    stub_executable(tmp_path)  ->  a path for VLLMTUNE_VLLM
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def stub_executable(where: Path) -> Path:
    """An executable ``vllm`` that runs this stub with the interpreter running the tests."""
    exe = where / "vllm"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "$@"\n')
    exe.chmod(0o755)
    return exe


def _opt(argv: list[str], flag: str, default: str) -> str:
    return argv[argv.index(flag) + 1] if flag in argv else default


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "serve":
        print("stub vllm: only `vllm serve`", file=sys.stderr)
        return 2
    model = argv[1]
    host, port = _opt(argv, "--host", "127.0.0.1"), int(_opt(argv, "--port", "8000"))
    name = _opt(argv, "--served-model-name", model)
    print(f"INFO stub vLLM: serving {name}", flush=True)
    time.sleep(float(os.environ.get("STUB_VLLM_DELAY", "0")))
    if os.environ.get("STUB_VLLM_CRASH"):
        print(os.environ["STUB_VLLM_CRASH"], file=sys.stderr, flush=True)
        return 1

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": name, "object": "model"}]})
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            usage = {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}
            if self.path == "/v1/completions":
                choice = {"index": 0, "text": "Hello from the stub.", "finish_reason": "stop"}
                self._json(
                    200,
                    {
                        "id": "cmpl-stub",
                        "object": "text_completion",
                        "model": name,
                        "choices": [choice],
                        "usage": usage,
                    },
                )
            elif self.path == "/v1/chat/completions":
                msg = {"role": "assistant", "content": "Hello from the stub."}
                choice = {"index": 0, "message": msg, "finish_reason": "stop"}
                self._json(
                    200,
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "model": name,
                        "choices": [choice],
                        "usage": usage,
                    },
                )
            else:
                self._json(404, {"detail": "Not Found"})

        def log_message(self, fmt: str, *args: object) -> None:
            print(f'INFO:     - "{self.requestline}" {args[1] if len(args) > 1 else ""}', flush=True)

    server = ThreadingHTTPServer((host, port), Handler)
    print(f"INFO Starting vLLM API server on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
