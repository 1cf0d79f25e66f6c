"""Plan -> a Grafana dashboard (JSON model) for the vLLM server and its prompt-cache proxy.

Every panel is a timeseries of PromQL over a Prometheus datasource chosen by the
``datasource`` variable, filtered by two regex variables: ``namespace`` (default: the plan's
namespace, else any) and ``pod`` (default: ``<name>-.*``, the pods of this plan's Deployment or
LeaderWorkerSet). A Kubernetes scrape (annotations, PodMonitor or ServiceMonitor) attaches
both labels; for docker / compose set ``pod`` to ``.*``.

vLLM renamed some metrics; the names are chosen by ``plan.vllm_version`` (``metric_names``):

=====================  ==========================================  ===========================
what                   name                                         versions
=====================  ==========================================  ===========================
inter-token latency    vllm:time_per_output_token_seconds           < 0.11 (deprecated in 0.11,
                                                                    hidden in 0.12)
                       vllm:inter_token_latency_seconds             >= 0.11
KV cache usage         vllm:gpu_cache_usage_perc                    < 0.10 (deprecated in 0.10)
                       vllm:kv_cache_usage_perc                     >= 0.10
prefix cache hits      vllm:gpu_prefix_cache_hit_rate (gauge, V0)   < 0.8 (V0 engine)
                       vllm:gpu_prefix_cache_{hits,queries}_total   0.8 .. 0.9 (V1 engine; the
                                                                    V0 gauge still with
                                                                    VLLM_USE_V1=0)
                       vllm:prefix_cache_{hits,queries}_total       >= 0.10
=====================  ==========================================  ===========================

TTFT (``vllm:time_to_first_token_seconds``), e2e latency (``vllm:e2e_request_latency_seconds``),
the token counters (``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``) and the
queue gauges (``vllm:num_requests_waiting`` / ``_running``) keep their names in every version.
Sources: vllm/engine/metrics.py (V0) and vllm/v1/metrics/loggers.py (V1) of the releases,
vLLM PRs #14136 (V1 prefix-cache counters), #18354 (gpu_ prefix dropped), #24110 (ITL rename)
and #29330 (removals); 0.32.0's names are checked against a real server by
tests/render/test_grafana.py.
"""

from __future__ import annotations

import json
from typing import Any

from vllmtune.flags import version_key
from vllmtune.plan import DeploymentPlan

# Selectors of the two scraped components. Label values come from dashboard variables only.
VLLM = 'namespace=~"$namespace", pod=~"$pod"'
RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
QUANTILES = (0.5, 0.95)
PANEL_W, PANEL_H = 12, 8


def metric_names(version: str) -> dict[str, str]:
    """The vLLM metric names (or, for the prefix cache, the hit-rate expression) of a version."""
    v = version_key(version)
    sel = "{" + VLLM + "}"
    if v >= (0, 10):
        prefix = (
            f"sum(rate(vllm:prefix_cache_hits_total{sel}[{RATE}]))"
            f" / sum(rate(vllm:prefix_cache_queries_total{sel}[{RATE}]))"
        )
    elif v >= (0, 8):
        prefix = (
            f"(sum(rate(vllm:gpu_prefix_cache_hits_total{sel}[{RATE}]))"
            f" / sum(rate(vllm:gpu_prefix_cache_queries_total{sel}[{RATE}])))"
            f" or avg(vllm:gpu_prefix_cache_hit_rate{sel})"
        )
    else:
        prefix = f"avg(vllm:gpu_prefix_cache_hit_rate{sel})"
    return {
        "itl": "vllm:inter_token_latency_seconds" if v >= (0, 11) else "vllm:time_per_output_token_seconds",
        "kv_cache": "vllm:kv_cache_usage_perc" if v >= (0, 10) else "vllm:gpu_cache_usage_perc",
        "prefix_hit_rate": prefix,
    }


def _quantiles(metric: str, selector: str) -> list[dict[str, str]]:
    return [
        {
            "expr": f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            "legendFormat": f"p{round(q * 100)}",
        }
        for q in QUANTILES
    ]


def _rate(metric: str, selector: str, legend: str, by: str = "") -> dict[str, str]:
    group = f" by ({by})" if by else ""
    return {"expr": f"sum{group}(rate({metric}{{{selector}}}[{RATE}]))", "legendFormat": legend}


def _panel(title: str, description: str, unit: str, targets: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"fillOpacity": 10, "showPoints": "never"}}
    defaults.update(extra)
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [{**t, "refId": chr(ord("A") + i), "datasource": DATASOURCE} for i, t in enumerate(targets)],
    }


def _vllm_panels(plan: DeploymentPlan) -> list[dict[str, Any]]:
    names = metric_names(plan.vllm_version)
    ratio = {"min": 0, "max": 1}
    return [
        _panel(
            "Time to first token",
            "Queueing + prefill: what prefix caching and batching move.",
            "s",
            _quantiles("vllm:time_to_first_token_seconds", VLLM),
        ),
        _panel(
            "Inter-token latency",
            f"Decode speed per token ({names['itl']}): what speculative decoding and quantization move.",
            "s",
            _quantiles(names["itl"], VLLM),
        ),
        _panel(
            "End-to-end request latency",
            "Arrival to last token.",
            "s",
            _quantiles("vllm:e2e_request_latency_seconds", VLLM),
        ),
        _panel(
            "Tokens per second",
            "Prompt tokens prefilled and tokens generated, all pods.",
            "short",
            [
                _rate("vllm:prompt_tokens_total", VLLM, "prompt"),
                _rate("vllm:generation_tokens_total", VLLM, "generation"),
            ],
        ),
        _panel(
            "Prefix cache hit rate",
            "Share of prompt tokens found in the KV prefix cache (lever 2).",
            "percentunit",
            [{"expr": names["prefix_hit_rate"], "legendFormat": "hit rate"}],
            **ratio,
        ),
        _panel(
            "KV cache usage",
            f"Share of KV cache blocks in use, per server ({names['kv_cache']}). Near 1: preemptions.",
            "percentunit",
            [{"expr": f"{names['kv_cache']}{{{VLLM}}}", "legendFormat": "{{pod}} {{instance}}"}],
            **ratio,
        ),
        _panel(
            "Requests running and waiting",
            "Waiting > 0 for long: the servers are saturated (the autoscaling queue signal).",
            "short",
            [
                {"expr": f"sum(vllm:num_requests_running{{{VLLM}}})", "legendFormat": "running"},
                {"expr": f"sum(vllm:num_requests_waiting{{{VLLM}}})", "legendFormat": "waiting"},
            ],
        ),
    ]


def _proxy_panels() -> list[dict[str, Any]]:
    # Names from vllmtune/cache/metrics.py. Shown even without a proxy: the row stays empty.
    sel = VLLM
    hits = f"sum(rate(vllmtune_cache_hits_total{{{sel}}}[{RATE}]))"
    misses = f"sum(rate(vllmtune_cache_misses_total{{{sel}}}[{RATE}]))"
    return [
        _panel(
            "Prompt cache hit ratio",
            "hits / (hits + misses) of cacheable requests (lever 1); bypassed requests are not counted.",
            "percentunit",
            [{"expr": f"{hits} / ({hits} + {misses})", "legendFormat": "hit ratio"}],
            min=0,
            max=1,
        ),
        _panel(
            "Prompt cache requests by outcome",
            "Requests per second answered from the cache, sent upstream, collapsed onto an in-flight "
            "miss, or bypassed (by reason).",
            "reqps",
            [
                _rate("vllmtune_cache_hits_total", sel, "hit"),
                _rate("vllmtune_cache_misses_total", sel, "miss"),
                _rate("vllmtune_cache_collapsed_total", sel, "collapsed"),
                _rate("vllmtune_cache_bypass_total", sel, "bypass {{reason}}", by="reason"),
                _rate("vllmtune_cache_upstream_errors_total", sel, "upstream error"),
            ],
        ),
        _panel(
            "Prompt cache upstream latency",
            "Time the proxy waited for vLLM on misses (request sent to last byte).",
            "s",
            _quantiles("vllmtune_cache_upstream_seconds", sel),
        ),
    ]


def _layout(rows: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Rows of panels two abreast, with stable ids and grid positions."""
    out: list[dict[str, Any]] = []
    y = 0
    for title, panels in rows:
        out.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        y += 1
        for i, panel in enumerate(panels):
            panel["gridPos"] = {"h": PANEL_H, "w": PANEL_W, "x": (i % 2) * PANEL_W, "y": y + (i // 2) * PANEL_H}
            out.append(panel)
        y += (len(panels) + 1) // 2 * PANEL_H
    for i, panel in enumerate(out, start=1):
        panel["id"] = i
    return out


def _textbox(name: str, label: str, default: str, description: str) -> dict[str, Any]:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": default,
        "current": {"text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
    }


def dashboard(plan: DeploymentPlan) -> dict[str, Any]:
    """The dashboard as plain data (the Kubernetes renderer puts it in a ConfigMap)."""
    vllm = _vllm_panels(plan)
    rows = [
        ("Latency", vllm[:3]),
        ("Throughput and caches", vllm[3:]),
        (f"Prompt cache proxy ({'deployed' if plan.sidecars else 'not deployed by this profile'})", _proxy_panels()),
    ]
    variables = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Prometheus",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        _textbox(
            "namespace",
            "Namespace (regex)",
            plan.k8s_namespace or ".*",
            "Kubernetes namespace of the pods; .* for any (and for docker / compose scrapes).",
        ),
        _textbox(
            "pod",
            "Pod (regex)",
            f"{plan.name}-.*",
            "Pods of this deployment (the proxy's are <name>-cache-...); .* for docker / compose scrapes.",
        ),
    ]
    return {
        # Stable across profile edits, so that re-provisioning replaces the same dashboard.
        "uid": f"vllmtune-{plan.name}"[:40],
        "title": f"vLLM {plan.name}",
        "description": f"vLLM {plan.vllm_version} serving {plan.served_name}, rendered by vllmtune.",
        "tags": ["vllm", "vllmtune"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": _layout(rows),
    }


def render_grafana(plan: DeploymentPlan) -> str:
    """The dashboard as JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
