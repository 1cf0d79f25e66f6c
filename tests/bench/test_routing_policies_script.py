"""benchmarks/routing_policies.py without vLLM or a router: --help, --dry-run (what each policy
would be sent), a bad --session-header refused, and its measure() against the stub server (as the
one "replica" and the "router"), whose --record-headers shows the tenant header on the wire."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

from benchmarks import routing_policies
from tests.conftest import ROOT
from tests.support.stub import stub
from vllmtune.bench.workloads import shared_prefix

SCRIPT = str(ROOT / "benchmarks" / "routing_policies.py")


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_help_and_dry_run() -> None:
    r = script("--help")
    assert r.returncode == 0 and "--session-header NAME" in r.stdout and "--dry-run" in r.stdout
    r = script("--dry-run", "--tenants", "2", "--requests", "4", "--order", "cyclic")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "policies": ["round_robin", "cache_aware", "consistent_hash"],
        "api": "completions",
        "requests": 4,
        "session_header": "x-tenant-id",
        "header_lines": ["x-tenant-id: tenant-0", "x-tenant-id: tenant-1"],
        "first_tenants": ["tenant-0", "tenant-1", "tenant-0", "tenant-1"],
    }
    # no consistent_hash, no users, or '': no header
    for args in (["--policies", "round_robin", "cache_aware"], ["--no-users"], ["--session-header", ""]):
        r = script("--dry-run", "--requests", "2", *args)
        assert (json.loads(r.stdout)["session_header"], json.loads(r.stdout)["header_lines"]) == (None, [])


def test_a_bad_session_header_is_refused() -> None:
    r = script("--dry-run", "--session-header", "x tenant")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        "error: --session-header 'x tenant' is not an HTTP header name: ' ' (character 2) cannot be in one "
        "(RFC 9110 5.1: letters, digits and !#$%&'*+-.^_`|~ only)\n"
    )


def test_plan_lists_each_tenants_header_line() -> None:
    cases = shared_prefix(3, seed=0, prefixes=3, prefix_words=2, users=True)
    args = argparse.Namespace(policies=["consistent_hash"], api="chat")
    assert routing_policies.plan(args, "X-Tenant-Id", cases)["header_lines"] == [
        "X-Tenant-Id: tenant-0",
        "X-Tenant-Id: tenant-1",
        "X-Tenant-Id: tenant-2",
    ]


def test_measure_sends_each_tenants_header(tmp_path: Path) -> None:
    cases = shared_prefix(6, seed=0, prefixes=3, prefix_words=5, users=True)
    log = tmp_path / "received.jsonl"
    with stub("--record-headers", str(log), "--model", routing_policies.SERVED, seconds=60) as url:
        result = asyncio.run(routing_policies.measure(url, [url], cases, 1, "completions", "x-tenant-id"))
    assert result["errors"] == 0
    got = [[v for k, v in json.loads(line)["headers"] if k == "x-tenant-id"] for line in log.read_text().splitlines()]
    assert got == [["tenant-0"], ["tenant-1"], ["tenant-2"]] * 2


def test_kv_aware_inputs_bind_where_the_router_subscribes() -> None:
    # vLLM binds only a wildcard endpoint (it connects to any other): the router connects to it
    assert json.loads(routing_policies.kv_events_config(5557)) == {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": "tcp://*:5557",
        "topic": "",
    }
    assert routing_policies.kv_aware_args(["http://127.0.0.1:8000", "http://127.0.0.1:8001"], [5557, 5558]) == [
        "--kv-event-source",
        "http://127.0.0.1:8000=tcp://127.0.0.1:5557",
        "--kv-event-source",
        "http://127.0.0.1:8001=tcp://127.0.0.1:5558",
        "--kv-event-block-size",
        "128",
        "--kv-event-model",
        "tiny-llama",
    ]
