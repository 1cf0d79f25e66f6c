"""How fast can `vllmtune bench`'s client go? Starts the instant stub server in another process
and runs bounded loads against it (issue 4 goal: >= 4,000 req/s non-streaming at c=16 and
>= 2,500 req/s streaming 16-token answers at c=64 on a 2-core machine).

    python benchmarks/bench_client_ceiling.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from vllmtune.bench import runner
from vllmtune.bench.http import get
from vllmtune.bench.workloads import Case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--port", type=int, default=18765)
    a = ap.parse_args()
    stub = subprocess.Popen(
        [sys.executable, "-m", "vllmtune.bench.stub", "--port", str(a.port), "--tokens", "16", "--seconds", "600"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while asyncio.run(get(f"http://127.0.0.1:{a.port}/health"))[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit("stub did not start")
            time.sleep(0.05)
        case = Case(messages=(("user", "hi"),), max_tokens=16)
        for label, c, stream, goal in (
            ("non-streaming", 16, False, 4000),
            ("non-streaming", 64, False, None),
            ("streaming 16 tok", 16, True, None),
            ("streaming 16 tok", 64, True, 2500),
        ):
            n = a.requests if not stream else a.requests // 2
            opts = runner.Options(
                url=f"http://127.0.0.1:{a.port}/v1",
                model="stub-model",
                cases=[case] * n,
                concurrency=c,
                stream=stream,
                warmup=500,
            )
            records, wall = asyncio.run(runner.run(opts))
            ok = sum(r.error is None for r in records)
            e2e = sorted((r.end - r.start) * 1000 for r in records if r.error is None)
            verdict = "" if goal is None else (f"  goal >= {goal:,}: " + ("met" if ok / wall >= goal else "MISSED"))
            print(
                f"{label:<17} c={c:<3} {ok:>6} ok in {wall:5.2f} s: {ok / wall:7,.0f} req/s  "
                f"p50 {e2e[len(e2e) // 2]:.2f} ms{verdict}"
            )
    finally:
        stub.terminate()
        stub.wait(5)


if __name__ == "__main__":
    main()
