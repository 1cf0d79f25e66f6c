"""Validate rendered custom resources against their published schemas (tests only).

- KEDA ``keda.sh/v1alpha1 ScaledObject`` and prometheus-operator ``monitoring.coreos.com/v1``
  ``PodMonitor`` / ``ServiceMonitor``: the CRD schemas compiled in the npm packages that
  ``scripts/setup_crd_validators.sh`` installs, run by ``crd_validate.cjs`` (one node process
  for a whole batch), with unknown fields rejected.
- LeaderWorkerSet ``leaderworkerset.x-k8s.io/v1``: no registry package has it, so our own JSON
  Schema (``leaderworkerset-v1.schema.json``, transcribed from the LWS Go types) -- or, once
  someone puts the published CRD at ``../shared/crds/leaderworkerset.x-k8s.io_leaderworkersets.yaml``
  next to the repository, that CRD's openAPIV3Schema. Pod templates are checked as core
  ``PodTemplateSpec`` by kubernetes-validate (strict).

Typical use::

    from tests.support import crds
    require(crds.available(), "CRD validators (scripts/setup_crd_validators.sh)")
    crds.validate_custom(doc)          # raises crds.CrdValidationError
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
NODE_SCRIPT = HERE / "crd_validate.cjs"
LWS_SCHEMA = HERE / "leaderworkerset-v1.schema.json"
PUBLISHED_LWS_CRD = REPO_ROOT.parent / "shared" / "crds" / "leaderworkerset.x-k8s.io_leaderworkersets.yaml"
SETUP_STAMP = ".vllmtune-setup-stamp"  # written by scripts/setup_crd_validators.sh
K8S_VERSION = "1.30"

NODE_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
LWS_KIND = ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
# Gateway API Inference Extension: the published CRDs in ../shared/schemas/ (see its README)
INFERENCE_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas" / "gateway-api-inference-extension"
PUBLISHED_CRDS = {
    ("inference.networking.k8s.io/v1", "InferencePool"): (
        INFERENCE_SCHEMAS / "inference.networking.k8s.io_inferencepools.yaml",
        "v1",
    ),
}
# custom resources in a .k8s.io group (the SIG's own, not a built-in API)
CUSTOM_K8S_IO_GROUPS = {"inference.networking.k8s.io"}


class CrdValidationError(Exception):
    """A custom resource does not match its schema; ``messages`` lists every problem."""

    def __init__(self, kind: str, messages: list[str]) -> None:
        self.kind = kind
        self.messages = messages
        super().__init__(f"{kind}: " + "; ".join(messages))


def install_dir() -> Path:
    """Where scripts/setup_crd_validators.sh installed the npm packages."""
    env = os.environ.get("VLLMTUNE_CRD_VALIDATORS")
    if env:
        return Path(env)
    # Tests pin HOME (tests/conftest.py); the cache lives under the real home.
    home = os.environ.get("VLLMTUNE_REAL_HOME") or str(Path.home())
    return Path(home) / ".cache" / "vllmtune" / "crd-validators"


def available() -> bool:
    """True when every validator can run: node + the npm packages, jsonschema, kubernetes-validate."""
    try:
        import jsonschema  # noqa: F401
        import kubernetes_validate  # noqa: F401
    except ImportError:
        return False
    return shutil.which("node") is not None and (install_dir() / SETUP_STAMP).is_file()


def kubernetes_validate() -> ModuleType:
    """The kubernetes-validate module (the test extra), looked up through require()."""
    from tests.support.require_real import require_module

    return require_module("kubernetes_validate", "kubernetes-validate (pip install -e '.[test]')")


def validate_custom(doc: dict[str, Any]) -> None:
    """Validate one custom resource; raise CrdValidationError with the validator's messages."""
    validate_many([doc])


def validate_many(docs: list[dict[str, Any]]) -> None:
    """Validate several custom resources (one node process for all of them); raise
    CrdValidationError for the first invalid one."""
    keys = [(d.get("apiVersion"), d.get("kind")) for d in docs]
    for key in keys:
        if key not in NODE_KINDS and key != LWS_KIND and key not in PUBLISHED_CRDS:
            known = sorted(f"{a} {k}" for a, k in {*NODE_KINDS, LWS_KIND, *PUBLISHED_CRDS})
            raise CrdValidationError(f"{key[0]} {key[1]}", [f"no validator for this kind; known: {', '.join(known)}"])
    node_docs = [d for d, k in zip(docs, keys, strict=True) if k in NODE_KINDS]
    node_results = iter(_run_node(node_docs) if node_docs else [])
    for doc, key in zip(docs, keys, strict=True):
        if key in NODE_KINDS:
            problems = next(node_results)
        elif key in PUBLISHED_CRDS:
            problems = _published_problems(doc, *PUBLISHED_CRDS[key])  # type: ignore[index]
        else:
            problems = _lws_problems(doc)
        if problems:
            raise CrdValidationError(f"{key[1]} {doc.get('metadata', {}).get('name', '?')}", problems)


def _run_node(docs: list[dict[str, Any]]) -> list[list[str]]:
    node = shutil.which("node")
    if node is None or not (install_dir() / SETUP_STAMP).is_file():
        raise RuntimeError("CRD validators are not installed: run scripts/setup_crd_validators.sh")
    proc = subprocess.run(
        [node, str(NODE_SCRIPT), str(install_dir())],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"crd_validate.cjs failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
    results = json.loads(proc.stdout)
    if not isinstance(results, list) or len(results) != len(docs):
        raise RuntimeError(f"unexpected output from crd_validate.cjs: {proc.stdout[:2000]}")
    return results


def _where(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path)


@functools.cache
def _published_validator(path: Path, version: str) -> Any:
    import jsonschema

    schema = published_crd_schema(path, version)
    return jsonschema.validators.validator_for(schema)(schema)


def _published_problems(doc: dict[str, Any], path: Path, version: str) -> list[str]:
    """Problems of a custom resource against its published CRD (unknown fields rejected)."""
    validator = _published_validator(path, version)
    return [
        f"{_where(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    ]


def _lws_problems(doc: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = lws_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{_where(e.absolute_path)}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    template = doc.get("spec", {}).get("leaderWorkerTemplate", {}) if isinstance(doc.get("spec"), dict) else {}
    if isinstance(template, dict):
        for key in ("leaderTemplate", "workerTemplate"):
            if isinstance(template.get(key), dict):
                problems += _k8s_problems(
                    {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": template[key]},
                    f"/spec/leaderWorkerTemplate/{key}",
                    drop=1,
                )
        for i, claim in enumerate(template.get("volumeClaimTemplates") or []):
            if isinstance(claim, dict):
                problems += _k8s_problems(
                    {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim},
                    f"/spec/leaderWorkerTemplate/volumeClaimTemplates/{i}",
                    drop=0,
                )
    # the published CRD (shared/crds) embeds the pod schema too: one problem, said once
    return list(dict.fromkeys(problems))


def _k8s_problems(wrapped: dict[str, Any], where: str, drop: int) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(wrapped, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        inner = list(e.absolute_path)[drop:]
        return [f"{where}{_where(inner) if inner else ''}: {e.message}"]
    return []


@functools.cache
def lws_schema() -> dict[str, Any]:
    """The published CRD's schema when ../shared/crds has it, else our transcription."""
    if PUBLISHED_LWS_CRD.is_file():
        return published_crd_schema(PUBLISHED_LWS_CRD, "v1")
    schema: dict[str, Any] = json.loads(LWS_SCHEMA.read_text(encoding="utf-8"))
    return schema


def published_crd_schema(path: Path, version: str) -> dict[str, Any]:
    """A CRD file's openAPIV3Schema for ``version`` as a strict JSON Schema: unknown fields
    are rejected where the schema is structural (what the API server's Strict field
    validation does) and int-or-string is spelled out."""
    import yaml

    for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        for v in crd["spec"]["versions"]:
            if v["name"] == version:
                schema: dict[str, Any] = _strict(v["schema"]["openAPIV3Schema"])
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                return schema
    raise ValueError(f"{path}: no CustomResourceDefinition version {version}")


def _strict(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _strict(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_strict(sub) for sub in value]
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def is_custom(doc: dict[str, Any]) -> bool:
    """A custom resource (checked here), not a built-in kind (checked by kubernetes-validate):
    built-in groups have no dot or end in .k8s.io (networking.k8s.io); x-k8s.io groups are SIGs'
    CRDs (leaderworkerset.x-k8s.io)."""
    group = doc["apiVersion"].rpartition("/")[0]
    if group in CUSTOM_K8S_IO_GROUPS:
        return True
    return "." in group and (group.endswith(".x-k8s.io") or not group.endswith(".k8s.io"))
