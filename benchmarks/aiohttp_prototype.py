"""The aiohttp cache-proxy prototype the real proxy is measured against (issue 13: memory hits at
c=1 must stay >= 0.8x of this). Deliberately minimal: an in-process dict, the same eligibility
rule (temperature 0, n 1), the key over the tenant and the canonical JSON body.

    python benchmarks/aiohttp_prototype.py --upstream http://127.0.0.1:8000 --port 8080
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

PATHS = ("/v1/chat/completions", "/v1/completions")


def make_app(upstream: str) -> web.Application:
    cache: dict[str, bytes] = {}
    app = web.Application()

    async def session_ctx(app: web.Application) -> Any:
        app["session"] = ClientSession(timeout=ClientTimeout(total=600))
        yield
        await app["session"].close()

    app.cleanup_ctx.append(session_ctx)

    async def forward(request: web.Request, body: bytes) -> tuple[int, bytes, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with request.app["session"].request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as r:
            return r.status, await r.read(), r.headers.get("content-type", "application/json")

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        key = None
        if request.method == "POST" and request.path in PATHS:
            try:
                req = json.loads(body)
            except ValueError:
                req = None
            if isinstance(req, dict) and req.get("temperature") == 0 and req.get("n", 1) == 1 and not req.get("stream"):
                canon = json.dumps(req, sort_keys=True, separators=(",", ":"))
                tenant = request.headers.get("authorization", "")
                key = hashlib.sha256(f"{tenant}\0{request.path}\0{canon}".encode()).hexdigest()
                hit = cache.get(key)
                if hit is not None:
                    return web.Response(body=hit, content_type="application/json", headers={"x-cache": "HIT"})
        status, data, ctype = await forward(request, body)
        if key is not None and status == 200:
            cache[key] = data
        return web.Response(
            body=data, status=status, headers={"content-type": ctype, "x-cache": "MISS" if key else "BYPASS"}
        )

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=8080)
    a = ap.parse_args()
    web.run_app(make_app(a.upstream.rstrip("/")), host="127.0.0.1", port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
