"""The cache proxy's one option declaration (vllmtune.cache.config): the command line the plan and
the ladder give the proxy is read back by the proxy's own parser as the same settings."""

from __future__ import annotations

from vllmtune.cache.command import parser
from vllmtune.cache.config import ServeConfig, sidecar_argv
from vllmtune.util.argspec import from_namespace


def test_the_sidecar_command_line_reads_back_as_the_same_settings() -> None:
    cfg = ServeConfig(
        upstream="http://{vllm}:8000",
        host="0.0.0.0",
        port=8080,
        backend="redis",
        ttl=3600,
        max_temperature=0.0,
        skip_pii=False,
        redis_url="redis://{redis}:6379/0",
    )
    argv = sidecar_argv(cfg)
    assert argv == [
        "--upstream",
        "http://{vllm}:8000",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--backend",
        "redis",
        "--ttl",
        "3600",
        "--max-temperature",
        "0.0",
        "--no-skip-pii",
        "--redis-url",
        "redis://{redis}:6379/0",
    ]
    assert from_namespace(ServeConfig, parser().parse_args(argv)) == cfg


def test_defaults_are_left_out_but_the_launch_still_reads_complete() -> None:
    argv = sidecar_argv(ServeConfig(upstream="http://127.0.0.1:9"))
    assert argv == [
        "--upstream",
        "http://127.0.0.1:9",
        "--host",
        "127.0.0.1",
        "--port",
        "8080",
        "--backend",
        "memory",
        "--ttl",
        "86400",
        "--max-temperature",
        "0.1",
    ]
    changed = ServeConfig(upstream="u", share_across_tenants=True, redis_l1_bytes=0)
    assert sidecar_argv(changed)[-3:] == ["--share-across-tenants", "--redis-l1-bytes", "0"]
    assert from_namespace(ServeConfig, parser().parse_args(sidecar_argv(changed))) == changed
