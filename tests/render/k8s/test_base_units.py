"""render.k8s.base called directly: metadata, selectors, the cache claim, secrets from Secret
keys, securityContexts (root vs non-root, read-only root), hardening, Prometheus annotations,
pod template metadata, a Job's stable labels and Kubernetes' $(VAR) escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.render.k8s_expand import expand
from vllmtune import __version__
from vllmtune.plan import DeploymentPlan, Hardening, load_plan
from vllmtune.render.k8s.base import (
    cache_claim_name,
    escape_var_refs,
    harden,
    object_meta,
    plan_secret_env,
    pod_security_context,
    pod_selector,
    scrape_annotations,
    security_context,
    stable_labels,
    template_meta,
)

ROOT_HARDENING = Hardening(
    run_as_user=None,
    read_only_root=False,
    writable_paths=(),
    cpu_request="2",
    memory_request="8Gi",
    memory_limit="16Gi",
)
NON_ROOT = Hardening(
    run_as_user=1000, read_only_root=True, writable_paths=("/tmp",), cpu_request="100m", memory_request="64Mi",
    memory_limit="128Mi",
)  # fmt: skip


def _plan(tmp_path: Path, extra: str = "") -> DeploymentPlan:
    p = tmp_path / "p.yaml"
    p.write_text("extends: all-levers\nname: srv\n" + extra)
    return load_plan(str(p))


def _labels(plan: DeploymentPlan, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "srv",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "vllmtune",
        "vllmtune.io/profile": "srv",
        "vllmtune.io/profile-hash": plan.profile_hash,
        "vllmtune.io/vllm-version": "0.32.0",
        "vllmtune.io/version": __version__,
    }


def test_object_meta_without_namespace(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert object_meta(plan, "srv-x", "download") == {"name": "srv-x", "labels": _labels(plan, "download")}


def test_object_meta_with_namespace_and_extra_labels(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "deploy: {kubernetes: {namespace: ml, labels: {team: a}}}\n")
    assert object_meta(plan, "srv") == {
        "name": "srv",
        "namespace": "ml",
        "labels": {**_labels(plan, "server"), "team": "a"},
    }


def test_pod_selector_keeps_name_instance_component_only(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert pod_selector(_labels(plan, "cache")) == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "srv",
        "app.kubernetes.io/component": "cache",
    }


def test_stable_labels_leave_out_what_changes_with_every_edit(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert stable_labels(_labels(plan, "download")) == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "srv",
        "app.kubernetes.io/component": "download",
        "app.kubernetes.io/managed-by": "vllmtune",
        "vllmtune.io/profile": "srv",
    }


def test_cache_claim_name(tmp_path: Path) -> None:
    assert cache_claim_name(_plan(tmp_path)) == "srv-hf-cache"


def test_plan_secret_env_reads_secret_keys(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "srv-secrets", "key": "hf-token"}}}
    assert plan_secret_env(plan) == [token]
    assert plan_secret_env(plan, only=("HF_TOKEN",)) == [token]
    assert plan_secret_env(plan, only=("OTHER",)) == []


def test_security_context_of_a_root_image() -> None:
    assert security_context(ROOT_HARDENING) == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod_security_context(ROOT_HARDENING) == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_security_context_non_root_read_only() -> None:
    assert security_context(NON_ROOT) == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "readOnlyRootFilesystem": True,
    }
    assert pod_security_context(NON_ROOT) == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
    }


def test_harden_sets_resources_in_place_without_cpu_limit() -> None:
    container: dict[str, Any] = {"name": "vllm", "image": "i"}
    out = harden(container, ROOT_HARDENING, gpus=2)
    assert out is container
    assert container == {
        "name": "vllm",
        "image": "i",
        "resources": {
            "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
            "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "2"},
        },
        "securityContext": security_context(ROOT_HARDENING),
    }
    assert harden({}, NON_ROOT)["resources"] == {
        "limits": {"memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "64Mi"},
    }


def test_scrape_annotations_only_for_annotation_scraping(tmp_path: Path) -> None:
    on = _plan(tmp_path, "deploy: {kubernetes: {monitoring: {scrape: annotations}}}\n")
    assert scrape_annotations(on, 8080) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert scrape_annotations(_plan(tmp_path, "deploy: {kubernetes: {monitoring: {scrape: podmonitor}}}\n"), 8080) == {}


def test_template_meta(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert template_meta(plan, {"a": "b"}, {}) == {"labels": {"a": "b"}}
    assert template_meta(plan, {"a": "b"}, {"x": "y"}) == {"labels": {"a": "b"}, "annotations": {"x": "y"}}


def test_escape_var_refs_doubles_dollar_before_paren_or_dollar_in_containers_only() -> None:
    obj = {
        "metadata": {"name": "$(keep)"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "command": ["bash", "-c", "echo $(date) $$ $HOME"],
                    "args": ["--model", "$(HF_TOKEN)", 3],
                    "env": [{"name": "A", "value": "x$(Y)"}, {"name": "B", "valueFrom": {"fieldRef": {}}}],
                }
            ]
        },
    }
    assert escape_var_refs(obj) is obj
    assert obj == {
        "metadata": {"name": "$(keep)"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "command": ["bash", "-c", "echo $$(date) $$$ $HOME"],  # Kubernetes reads $$ as $
                    "args": ["--model", "$$(HF_TOKEN)", 3],
                    "env": [{"name": "A", "value": "x$$(Y)"}, {"name": "B", "valueFrom": {"fieldRef": {}}}],
                }
            ]
        },
    }


def test_escaped_strings_reach_the_process_as_written() -> None:
    for text in ["$(HF_TOKEN)", "$$", "$$(x)", "a$", "echo $(date) $$ $HOME", "$$$", "$(", "cost: $5"]:
        container = {"name": "c", "image": "i", "args": [text]}
        escape_var_refs(container)
        assert expand(container["args"][0], {}) == text, text  # Kubernetes' rules, no variable defined


def test_service_account_with_role_binds_its_own_account_in_its_namespace() -> None:
    from vllmtune.render.k8s.base import POD_READER, service_account_with_role

    meta = {"name": "x-epp", "namespace": "llm", "labels": {"a": "b"}}
    assert service_account_with_role(meta, [POD_READER]) == [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x-epp"},
            "subjects": [{"kind": "ServiceAccount", "name": "x-epp", "namespace": "llm"}],
        },
    ]
