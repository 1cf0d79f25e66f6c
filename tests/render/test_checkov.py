"""The rendered Kubernetes manifests through a real policy scanner (checkov): every finding must
be one that docs/kubernetes-security.md lists as deliberately not met, with its reason, and
every listed row must still fire (the table is the single list of exceptions)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, require
from vllmtune.plan import load_plan
from vllmtune.render.k8s import render_kubernetes

CHECKOV = Path(os.environ.get("VLLMTUNE_CHECKOV_VENV", Path.home() / ".cache/vllmtune/checkov-venv")) / "bin/checkov"
TABLE = ROOT / "docs/kubernetes-security.md"

REDIS_NETPOL = """\
extends: all-levers
name: llama-8b-shared
prompt_cache:
  backend: redis
deploy:
  kubernetes:
    namespace: llm
    network_policy:
      enabled: true
      allow_from:
        - {app.kubernetes.io/name: prometheus}
"""

# variant -> the table's "when" conditions that hold for it
VARIANTS: dict[str, tuple[str, set[str]]] = {
    "all-levers": ("preset:all-levers", {"always", "no namespace", "network_policy off", "secrets"}),
    "redis-netpol": ("redis-netpol.yaml", {"always", "secrets"}),
    "70b-download-job": (str(ROOT / "profiles/examples/llama-70b-2x8.yaml"), {"always", "secrets"}),
    "two-replicas-routing": (
        str(ROOT / "profiles/examples/two-replicas-routing.yaml"),
        {"always", "no namespace", "network_policy off", "secrets"},
    ),
}


def _table() -> list[tuple[str, set[str], str]]:
    rows = []
    section = TABLE.read_text().split("## Checks deliberately not met", 1)[1]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"CKV2?_K8S_\d+", cells[0]):
            rows.append((cells[0], {c.strip() for c in cells[1].split(",")}, cells[2]))
    return rows


def _component(resource: str) -> str:
    m = re.search(r"app\.kubernetes\.io/component-([a-z-]+)", resource)
    if m:
        return m.group(1)
    name = resource.split(".")[-1]
    for suffix in ("cache", "redis", "router"):
        if name.endswith("-" + suffix):
            return suffix
    if name.endswith("-epp"):
        return "endpoint-picker"
    return "download" if "-download-" in name else "server"


def _findings(manifest: str, tmp: Path) -> set[tuple[str, str]]:
    (tmp / "objects.yaml").write_text(manifest)
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports and all(r["check_type"] == "kubernetes" for r in reports)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 50, "checkov ran no checks"  # a scanner that sees nothing must not pass
    return {(f["check_id"], _component(f["resource"])) for r in reports for f in r["results"]["failed_checks"]}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_documented_checks_fail(variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require(CHECKOV.exists(), "checkov (scripts/setup_checkov.sh)")
    source, conditions = VARIANTS[variant]
    (tmp_path / "redis-netpol.yaml").write_text(REDIS_NETPOL)
    monkeypatch.chdir(tmp_path)
    plan = load_plan(source)
    manifest = render_kubernetes(plan)
    out = tmp_path / "scan"
    out.mkdir()
    found = _findings(manifest, out)
    expected = {(check, comp) for check, comps, when in _table() if when in conditions for comp in comps}
    # "secrets" rows apply to the components that really take a Secret as env here
    with_secrets = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in yaml.safe_load_all(manifest)
        if o["kind"] in ("Deployment", "Job") and "secretKeyRef" in json.dumps(o)
    }
    secret_rows = {c for c, _, when in _table() if when == "secrets"}
    expected = {(c, comp) for c, comp in expected if c not in secret_rows or comp in with_secrets}
    # what the scanner can see of this variant: the LWS is a custom kind (not scanned)
    if plan.multi_node:
        expected = {(c, comp) for c, comp in expected if comp != "server"}
    if not any(s.role == "redis" for s in plan.sidecars):
        expected = {(c, comp) for c, comp in expected if comp != "redis"}
    if not any(s.role == "cache" for s in plan.sidecars):
        expected = {(c, comp) for c, comp in expected if comp != "cache"}
    if not any(s.role == "router" for s in plan.sidecars):
        expected = {(c, comp) for c, comp in expected if comp != "router"}
    if plan.inference_pool is None:
        expected = {(c, comp) for c, comp in expected if comp != "endpoint-picker"}
    if not (plan.k8s_model_download == "job" and plan.downloads):
        expected = {(c, comp) for c, comp in expected if comp != "download"}
    assert sorted(found - expected) == [], "undocumented checkov findings (fix them or add a row with the reason)"
    assert sorted(expected - found) == [], "documented exceptions that no longer fire (remove the row)"


def test_table_lists_each_exception_with_a_reason() -> None:
    rows = _table()
    assert len(rows) >= 10
    reasons = [line for line in TABLE.read_text().splitlines() if line.startswith("| CKV")]
    assert all(len(r.split("|")[4].strip()) > 40 for r in reasons)
