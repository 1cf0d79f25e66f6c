"""cache.metrics.Metrics called directly: the /metrics page in the Prometheus text exposition
format 0.0.4 (HELP, TYPE, cumulative ``_bucket{le=...}`` ending at ``+Inf`` = ``_count``, then
``_sum`` and ``_count``), linted by the real promtool, and the /cache/stats document."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.require_real import require
from vllmtune.cache import metrics as metrics_mod
from vllmtune.cache.metrics import BUCKETS, Metrics

PAGE = Path(__file__).parent / "data" / "metrics_page.prom"


def _metrics() -> Metrics:
    m = Metrics(usd_per_1k_tokens=2.0, hits=3, misses=1, collapsed=1, stored=1, upstream_errors=2, tokens_saved=500)
    for reason in ("temperature", "n_not_1", "temperature"):
        m.bypassed(reason)
    for seconds in (0.001, 0.2, 500.0):  # on a bucket bound, inside one, beyond the last
        m.observe(seconds)
    return m


def test_observe_files_each_call_in_its_first_bucket() -> None:
    m = _metrics()
    assert m.latency_buckets == [1, 0, 0, 0, 0, 0, 1] + [0] * (len(BUCKETS) - 7)  # 500 s: only in +Inf
    assert (m.latency_count, m.latency_sum) == (3, pytest.approx(500.201))
    assert m.bypass == {"temperature": 2, "n_not_1": 1}


def test_prometheus_page_whole() -> None:
    assert _metrics().prometheus("memory", 0, 7) == PAGE.read_text()
    without_entries = _metrics().prometheus("redis", 4)
    assert "vllmtune_cache_entries" not in without_entries
    assert 'vllmtune_cache_backend_errors_total{backend="redis"} 4\n' in without_entries
    assert "vllmtune_cache_redis_errors_total 4\n" in without_entries


def test_prometheus_page_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool")
    assert promtool is not None
    for page in (_metrics().prometheus("memory", 0, 7), Metrics().prometheus("redis", 0)):
        done = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_stats_document_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _metrics()
    m.started = 100.0
    monkeypatch.setattr(metrics_mod.time, "time", lambda: 160.5)
    buckets = {str(b): n for b, n in zip(BUCKETS, [1] * 6 + [2] * 9, strict=True)}
    assert m.stats("redis", 4) == {
        "hits": 3,
        "misses": 1,
        "bypasses": 3,
        "bypass": {"n_not_1": 1, "temperature": 2},
        "hit_ratio": 0.75,
        "collapsed": 1,
        "stored": 1,
        "tokens_saved": 500,
        "usd_saved": 1.0,
        "usd_per_1k_tokens": 2.0,
        "upstream_errors": 2,
        "upstream_latency": {"count": 3, "sum_s": m.latency_sum, "mean_s": m.latency_sum / 3, "buckets": buckets},
        "backend": "redis",
        "backend_errors": 4,
        "redis_errors": 4,
        "entries": None,
        "uptime_s": 60.5,
    }
    empty = Metrics(started=160.5).stats("memory", 0, 0)
    assert (empty["hit_ratio"], empty["upstream_latency"]["mean_s"], empty["redis_errors"]) == (0.0, 0.0, 0)
