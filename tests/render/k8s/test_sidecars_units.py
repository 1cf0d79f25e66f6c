"""render.k8s.sidecars called directly: the cache proxy's Deployment and Service (whole, against
the reviewed all-levers golden) and, with a network policy, the proxy admitting nobody but its clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.render.k8s._golden import golden_objects
from vllmtune.plan import load_plan
from vllmtune.render.k8s.base import escape_var_refs
from vllmtune.render.k8s.sidecars import sidecar_objects


def test_sidecar_objects_are_the_golden_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    plan = load_plan("preset:all-levers")
    (sc,) = plan.sidecars
    golden = golden_objects("all-levers")
    name = "llama-8b-all-levers-cache"
    assert escape_var_refs(sidecar_objects(plan, sc)) == [golden[("Deployment", name)], golden[("Service", name)]]


def test_sidecar_objects_redis_admits_only_the_proxy(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("extends: all-levers\nname: stk\nprompt_cache: {enabled: true, backend: redis}\n")
    plan = load_plan(str(p))
    redis = next(sc for sc in plan.sidecars if sc.role == "redis")
    objects = sidecar_objects(plan, redis)
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "NetworkPolicy"]
    assert objects[2]["spec"]["ingress"] == [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "vllm",
                            "app.kubernetes.io/instance": "stk",
                            "app.kubernetes.io/component": "cache",
                        }
                    }
                }
            ],
            "ports": [{"port": redis.port, "protocol": "TCP"}],
        }
    ]
    assert objects[1]["spec"]["type"] == "ClusterIP"
