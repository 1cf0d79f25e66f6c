"""Plan -> Kubernetes objects as dicts: the model cache claim, the server (a Deployment, or a
LeaderWorkerSet when it spans nodes), its Service, sidecars, and the optional download Job,
autoscaler (KEDA ScaledObject or HPA), Prometheus monitor and Grafana dashboard ConfigMap."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from vllmtune.containers import image_build_hint
from vllmtune.plan import CONTAINER_HF_CACHE, LABEL_PREFIX, DeploymentPlan, Hardening, SecretEnv, Sidecar, k8s_quantity
from vllmtune.profile.yamlio import dump_yaml

# Pods of the server, of each sidecar and of the download Job differ by component: every
# selector includes it, so no Service or controller ever picks another component's pods.
SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
ROLE_LABEL = "vllmtune.io/role"  # leader | worker, in a LeaderWorkerSet

# Fixed programs run in the vLLM image (which has python3 and huggingface_hub). User data
# (repository ids, paths) reaches them as arguments and environment, never as code.
DOWNLOAD_PY = """\
import os, sys, time
from huggingface_hub import HfApi, snapshot_download
start = time.time()
for spec in sys.argv[1:]:
    repo, _, rev = spec.partition("@")
    files = HfApi().list_repo_files(repo, revision=rev or None)
    # What vLLM reads: safetensors when there are any (never both formats), configs, tokenizer;
    # not the original/ or consolidated* copies some repositories carry as well.
    weights = ["*.safetensors"] if any(f.endswith(".safetensors") for f in files) else ["*.bin", "*.pt"]
    patterns = [*weights, "*.json", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja"]
    hf_format = [f for f in files if f.endswith(".safetensors") and not f.startswith(("original/", "consolidated"))]
    skip = ["original/*"] + (["consolidated*"] if hf_format else [])
    print(f"vllmtune: downloading {spec}", flush=True)
    path = snapshot_download(repo, revision=rev or None, allow_patterns=patterns, ignore_patterns=skip)
    print(f"vllmtune: {spec} -> {path} ({time.time() - start:.0f}s)", flush=True)
marker = os.environ.get("VLLMTUNE_MARKER")
if marker:
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, "w") as fh:
        fh.write("\\n".join(sys.argv[1:]) + "\\n")
print(f"vllmtune: weights ready in {time.time() - start:.0f}s", flush=True)
"""
WAIT_PY = """\
import os, time
marker, start = os.environ["VLLMTUNE_MARKER"], time.time()
while not os.path.exists(marker):
    print(f"vllmtune: waiting for Job {os.environ['VLLMTUNE_JOB']} ({time.time() - start:.0f}s)", flush=True)
    time.sleep(15)
print("vllmtune: weights ready", flush=True)
"""
# Multi-node: the leader pod is the Ray head and runs vLLM once every node has joined; the
# workers join the head (LWS_LEADER_ADDRESS is set by LeaderWorkerSet) and block.
LEADER_SH = """\
set -eu
ray start --head --port="$VLLMTUNE_RAY_PORT" --disable-usage-stats
deadline=$(( $(date +%s) + VLLMTUNE_RAY_WAIT_SECONDS ))
while :; do
  alive=$(python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); \
print(sum(1 for n in ray.nodes() if n["Alive"]))' 2>/dev/null || echo 0)
  [ "$alive" -ge "$VLLMTUNE_NODES" ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "vllmtune: $alive of $VLLMTUNE_NODES nodes joined the Ray cluster in ${VLLMTUNE_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  echo "vllmtune: $alive of $VLLMTUNE_NODES nodes in the Ray cluster"
  sleep 5
done
exec "$@"
"""
WORKER_SH = """\
set -eu
head="$LWS_LEADER_ADDRESS:$VLLMTUNE_RAY_PORT"
deadline=$(( $(date +%s) + VLLMTUNE_RAY_WAIT_SECONDS ))
while :; do
  # While the head is absent one probe blocks ~40s (Ray's GCS connect timeout): give it at
  # most what is left of the deadline, so that the deadline holds.
  left=$(( deadline - $(date +%s) ))
  timeout "$(( left > 1 ? left : 1 ))" ray health-check --address="$head" >/dev/null 2>&1 && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "vllmtune: the Ray head $head did not answer in ${VLLMTUNE_RAY_WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
done
exec ray start --address="$head" --block --disable-usage-stats
"""


def object_meta(plan: DeploymentPlan, name: str, component: str = "server") -> dict[str, Any]:
    """metadata of one object: name, namespace, the plan's labels with this component."""
    labels = dict(plan.labels)
    labels["app.kubernetes.io/component"] = component
    labels.update(plan.k8s_extra_labels)
    meta: dict[str, Any] = {"name": name}
    if plan.k8s_namespace:
        meta["namespace"] = plan.k8s_namespace
    meta["labels"] = labels
    return meta


def _selector(labels: dict[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in SELECTOR_KEYS}


def cache_claim_name(plan: DeploymentPlan) -> str:
    """The PVC holding the Hugging Face cache."""
    return f"{plan.name}-hf-cache"


def lws_name(plan: DeploymentPlan) -> str:
    """The LeaderWorkerSet's name. Not the Service's: the LWS controller creates a headless
    Service named after the LWS for its pods' DNS (LWS_LEADER_ADDRESS), and skips it when a
    Service of that name already exists -- the workers would never find the leader."""
    return f"{plan.name}-group"


def downloads_digest(plan: DeploymentPlan) -> str:
    """Short digest of what is downloaded: names the download Job and its marker file."""
    return hashlib.sha256("\n".join(plan.downloads).encode()).hexdigest()[:10]


def download_job_name(plan: DeploymentPlan) -> str:
    """A Job's pod template is immutable: a new set of downloads is a new Job."""
    return f"{plan.name}-download-{downloads_digest(plan)}"


def download_marker(plan: DeploymentPlan) -> str:
    """File the download Job writes when done; named after what it downloaded, so that a
    changed model waits for a new download."""
    return f"{CONTAINER_HF_CACHE}/.vllmtune/{plan.name}-{downloads_digest(plan)}.done"


def secret_env(secrets: Iterable[SecretEnv]) -> list[dict[str, Any]]:
    """Container env entries reading secrets from their Kubernetes Secret keys."""
    return [{"name": s.name, "valueFrom": {"secretKeyRef": {"name": s.k8s_secret, "key": s.k8s_key}}} for s in secrets]


def _secret_env(plan: DeploymentPlan, only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    return secret_env(s for s in plan.secret_env if only is None or s.name in only)


def _server_env(plan: DeploymentPlan) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plan.env]
    if plan.k8s_hf_offline:
        # The Job downloaded everything: never let a replica start a second download.
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
    if plan.multi_node:
        if plan.multi_node.host_ip_from_pod:
            env.append({"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        env += [{"name": k, "value": v} for k, v in plan.multi_node.socket_env]
        env += [
            {"name": "VLLMTUNE_NODES", "value": str(plan.multi_node.nodes)},
            {"name": "VLLMTUNE_RAY_PORT", "value": str(plan.multi_node.ray_port)},
            {"name": "VLLMTUNE_RAY_WAIT_SECONDS", "value": str(plan.multi_node.ray_wait_seconds)},
        ]
    return env + _secret_env(plan)


def _volumes(plan: DeploymentPlan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumeMounts, volumes) of a server pod: /dev/shm, the HF cache claim, local dirs."""
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}}
    ]
    for i, m in enumerate(plan.mounts):
        if m.target == CONTAINER_HF_CACHE:
            mounts.append({"name": "hf-cache", "mountPath": m.target})
            volumes.append({"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}})
        else:  # a local model or adapter directory: it must exist on the node
            name = f"model-{i}"
            mounts.append({"name": name, "mountPath": m.target, "readOnly": m.read_only})
            volumes.append({"name": name, "hostPath": {"path": m.source, "type": "Directory"}})
    return mounts, volumes


def _resources(h: Hardening, gpus: int = 0) -> dict[str, Any]:
    """Requests and limits; no CPU limit (CFS throttling stalls an engine or event loop)."""
    requests: dict[str, str] = {"cpu": h.cpu_request, "memory": h.memory_request}
    limits: dict[str, str] = {"memory": h.memory_limit}
    if gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(gpus)
    return {"limits": limits, "requests": requests}


def security_context(h: Hardening) -> dict[str, Any]:
    """A container's securityContext: no privilege escalation, no capabilities, the runtime's
    seccomp profile; non-root and a read-only root where the image allows (the plan says)."""
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if h.run_as_user is not None:
        ctx["runAsNonRoot"] = True
        ctx["runAsUser"] = h.run_as_user
        ctx["runAsGroup"] = h.run_as_user
    if h.read_only_root:
        ctx["readOnlyRootFilesystem"] = True
    return ctx


def pod_security_context(h: Hardening) -> dict[str, Any]:
    """The pod's securityContext, matching its main container's."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if h.run_as_user is not None:
        ctx.update(runAsNonRoot=True, runAsUser=h.run_as_user, runAsGroup=h.run_as_user, fsGroup=h.run_as_user)
    return ctx


def harden(container: dict[str, Any], h: Hardening, gpus: int = 0) -> dict[str, Any]:
    """``container`` with its resources and securityContext (in place, returned)."""
    container["resources"] = _resources(h, gpus)
    container["securityContext"] = security_context(h)
    return container


def _probes(plan: DeploymentPlan) -> dict[str, Any]:
    h = plan.health
    probe = {"httpGet": {"path": h.path, "port": "http"}, "periodSeconds": h.period_seconds}
    # The startup probe gives a first start (download unless done before + load + warm-up)
    # its whole budget; liveness/readiness only begin once it has passed.
    return {
        "startupProbe": {**probe, "failureThreshold": h.startup_failures},
        "readinessProbe": {**probe, "failureThreshold": h.readiness_failures},
        "livenessProbe": {
            **probe,
            "failureThreshold": h.liveness_failures,
            "timeoutSeconds": h.liveness_timeout_seconds,
        },
    }


def _download_container(plan: DeploymentPlan, marker: bool) -> dict[str, Any]:
    env = [{"name": "VLLMTUNE_MARKER", "value": download_marker(plan)}] if marker else []
    env += _secret_env(plan, only=("HF_TOKEN",))
    container: dict[str, Any] = {
        "name": "download",
        "image": plan.image,
        "command": ["python3", "-c", DOWNLOAD_PY],
        "args": list(plan.downloads),
    }
    if env:
        container["env"] = env
    container["volumeMounts"] = [{"name": "hf-cache", "mountPath": CONTAINER_HF_CACHE}]
    return harden(container, plan.k8s_download_hardening)


def _init_containers(plan: DeploymentPlan) -> list[dict[str, Any]]:
    if not plan.downloads or plan.k8s_model_download == "server":
        return []
    if plan.k8s_model_download == "init-container":
        return [_download_container(plan, marker=False)]
    wait = {
        "name": "wait-for-model",
        "image": plan.image,
        "command": ["python3", "-c", WAIT_PY],
        "env": [
            {"name": "VLLMTUNE_MARKER", "value": download_marker(plan)},
            {"name": "VLLMTUNE_JOB", "value": download_job_name(plan)},
        ],
        "volumeMounts": [{"name": "hf-cache", "mountPath": CONTAINER_HF_CACHE}],
    }
    return [harden(wait, plan.k8s_download_hardening)]


def _scrape_annotations(plan: DeploymentPlan, port: int) -> dict[str, str]:
    if plan.monitoring.scrape != "annotations":
        return {}
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def _pod_spec(plan: DeploymentPlan, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = {  # vLLM never calls the API server
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(plan.k8s_server_hardening),
    }
    init = _init_containers(plan)
    if init:
        spec["initContainers"] = init
    spec["containers"] = containers
    spec["volumes"] = volumes
    if plan.k8s_node_selector:
        spec["nodeSelector"] = dict(plan.k8s_node_selector)
    if plan.gpus and plan.k8s_tolerations:
        spec["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    return spec


def _server_container(plan: DeploymentPlan) -> dict[str, Any]:
    env = _server_env(plan)
    mounts, _ = _volumes(plan)
    container: dict[str, Any] = {"name": "vllm", "image": plan.image}
    if plan.multi_node:
        container["command"] = ["bash", "-c", LEADER_SH, "vllmtune-leader"]
        args = [*plan.entrypoint, *plan.args]
    else:
        args = list(plan.args)
    container["args"] = args
    container["ports"] = [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}]
    if env:
        container["env"] = env
    harden(container, plan.k8s_server_hardening, plan.gpus)
    container["volumeMounts"] = mounts
    container.update(_probes(plan))
    return container


def _template_meta(plan: DeploymentPlan, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _annotations(plan: DeploymentPlan) -> dict[str, str]:
    return {"vllmtune.io/startup-budget": plan.startup_budget}


def deployment(plan: DeploymentPlan) -> dict[str, Any]:
    """The vLLM Deployment (one node per replica)."""
    _, volumes = _volumes(plan)
    meta = object_meta(plan, plan.name)
    meta["annotations"] = _annotations(plan)
    labels = dict(meta["labels"])
    spec: dict[str, Any] = {}
    if plan.autoscaling is None:  # else the autoscaler owns the count: apply must not reset it
        spec["replicas"] = plan.k8s_replicas
    # GPUs and a ReadWriteOnce cache cannot be held by two pods at once: a rolling
    # update would wait forever for the new pod, so replace instead.
    spec["strategy"] = {"type": "Recreate"}
    spec["selector"] = {"matchLabels": _selector(labels)}
    spec["template"] = {
        "metadata": _template_meta(plan, labels, _scrape_annotations(plan, plan.port)),
        "spec": _pod_spec(plan, [_server_container(plan)], volumes),
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def leader_worker_set(plan: DeploymentPlan) -> dict[str, Any]:
    """One server across ``nodes`` pods: a LeaderWorkerSet whose leader is the Ray head and
    runs vLLM (pipeline parallel across the group's pods, tensor parallel inside each)."""
    mn = plan.multi_node
    assert mn is not None
    _, volumes = _volumes(plan)
    meta = object_meta(plan, lws_name(plan))
    meta["annotations"] = _annotations(plan)
    leader_labels = {**meta["labels"], ROLE_LABEL: "leader"}
    worker_labels = {**meta["labels"], ROLE_LABEL: "worker"}
    mounts, _ = _volumes(plan)
    worker: dict[str, Any] = {
        "name": "ray-worker",
        "image": plan.image,
        "command": ["bash", "-c", WORKER_SH, "vllmtune-worker"],
        "env": _server_env(plan),
        "volumeMounts": mounts,
    }
    harden(worker, plan.k8s_server_hardening, plan.gpus)
    spec: dict[str, Any] = {}
    if plan.autoscaling is None:
        spec["replicas"] = plan.k8s_replicas
    spec["leaderWorkerTemplate"] = {
        "size": mn.nodes,
        # A lost pod breaks the whole Ray group: restart the group together.
        "restartPolicy": "RecreateGroupOnPodRestart",
        "leaderTemplate": {
            "metadata": _template_meta(plan, leader_labels, _scrape_annotations(plan, plan.port)),
            "spec": _pod_spec(plan, [_server_container(plan)], volumes),
        },
        "workerTemplate": {
            "metadata": {"labels": worker_labels},
            "spec": _pod_spec(plan, [worker], volumes),
        },
    }
    # Workers are created with the leader (not after it is ready: the leader waits for them).
    spec["startupPolicy"] = "LeaderCreated"
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta, "spec": spec}


def service(plan: DeploymentPlan) -> dict[str, Any]:
    """The Service in front of the server (the leader pods of a multi-node server)."""
    meta = object_meta(plan, plan.name)
    selector = _selector(meta["labels"])
    if plan.multi_node:
        selector[ROLE_LABEL] = "leader"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": plan.k8s_service_type,
            "selector": selector,
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pvc(plan: DeploymentPlan) -> dict[str, Any]:
    """The model cache claim."""
    spec: dict[str, Any] = {
        "accessModes": [plan.k8s_pvc_access_mode],
        "resources": {"requests": {"storage": plan.k8s_pvc_size}},
    }
    if plan.k8s_pvc_storage_class:
        spec["storageClassName"] = plan.k8s_pvc_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(plan, cache_claim_name(plan), "model-cache"),
        "spec": spec,
    }


def download_job(plan: DeploymentPlan) -> dict[str, Any]:
    """One Job that fills the shared cache; server pods wait for its marker file."""
    meta = object_meta(plan, download_job_name(plan), "download")
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(plan.k8s_download_hardening),
        "restartPolicy": "OnFailure",
        "containers": [_download_container(plan, marker=True)],
        "volumes": [{"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}}],
    }
    if plan.k8s_node_selector:  # GPU nodes are usually tainted: tolerate what the servers do
        pod["nodeSelector"] = dict(plan.k8s_node_selector)
        if plan.k8s_tolerations:
            pod["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": plan.k8s_download_backoff_limit,
            "template": {"metadata": {"labels": stable_labels(meta["labels"])}, "spec": pod},
        },
    }


def stable_labels(labels: dict[str, str]) -> dict[str, str]:
    """A Job's pod template is immutable: its labels leave out what changes with every edit
    of the profile (hash, versions), so that re-applying an unchanged Job is a no-op."""
    volatile = {f"{LABEL_PREFIX}/profile-hash", f"{LABEL_PREFIX}/vllm-version", f"{LABEL_PREFIX}/version"}
    return {k: v for k, v in labels.items() if k not in volatile}


def sidecar_objects(plan: DeploymentPlan, sc: Sidecar) -> list[dict[str, Any]]:
    """A sidecar's Deployment and Service (reaching vLLM through its Service name)."""
    name = plan.sidecar_name(sc.role)
    meta = object_meta(plan, name, sc.role)
    labels = meta["labels"]
    selector = _selector(labels)
    container: dict[str, Any] = {"name": sc.role, "image": sc.image}
    if sc.command:
        container["command"] = list(sc.command)
    container["args"] = sc.resolved_args({"vllm": plan.name, "redis": plan.sidecar_name("redis")})
    container["ports"] = [{"name": sc.port_name, "containerPort": sc.port, "protocol": "TCP"}]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sc.env]
    env += secret_env(sc.secret_env)
    if env:
        container["env"] = env
    port_name = sc.port_name
    h = sc.health
    check = {"httpGet": {"path": h.path, "port": port_name}} if h.path else {"tcpSocket": {"port": port_name}}
    probe = {**check, "periodSeconds": h.probe_period_seconds}
    container["readinessProbe"] = probe
    container["livenessProbe"] = {**probe, "failureThreshold": h.liveness_failures}
    harden(container, sc.hardening)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(sc.hardening),
        "containers": [container],
    }
    if sc.hardening.writable_paths:  # a read-only root: what the process writes is an emptyDir
        names = [f"writable-{i}" for i in range(len(sc.hardening.writable_paths))]
        container["volumeMounts"] = [
            {"name": n, "mountPath": path} for n, path in zip(names, sc.hardening.writable_paths, strict=True)
        ]
        pod["volumes"] = [{"name": n, "emptyDir": {"sizeLimit": sc.hardening.writable_size}} for n in names]
    annotations = _scrape_annotations(plan, sc.port) if sc.health_path else {}
    dep_meta = meta
    hint = image_build_hint(sc)
    if hint:  # the proxy image is on no registry until someone pushes it there
        dep_meta = {**meta, "annotations": {f"{LABEL_PREFIX}/image-build": hint}}
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": dep_meta,
        "spec": {
            "replicas": sc.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": _template_meta(plan, labels, annotations),
                "spec": pod,
            },
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": plan.k8s_service_type if sc.publish else "ClusterIP",
            "selector": selector,
            "ports": [{"name": port_name, "port": sc.port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }
    objects = [dep, svc]
    if sc.admits:
        sources = [_selector(plan.sidecar_labels(r)) for r in sc.admits]
        objects.append(network_policy(plan, meta, selector, sc.port, sources))
    return objects


def network_policy(
    plan: DeploymentPlan,
    meta: dict[str, Any],
    selector: dict[str, str],
    port: int,
    sources: list[dict[str, str]],
) -> dict[str, Any]:
    """Only pods matching ``sources`` reach the selected pods, and only on ``port``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": src}} for src in sources],
                    "ports": [{"port": port, "protocol": "TCP"}],
                }
            ],
        },
    }


def server_network_policy(plan: DeploymentPlan) -> dict[str, Any]:
    """deploy.kubernetes.network_policy: vLLM admits the proxy (so that no client bypasses the
    cache and its key check) and the pods the profile lists."""
    meta = object_meta(plan, plan.name)
    sources = [_selector(plan.sidecar_labels(sc.role)) for sc in plan.sidecars if sc.fronts_server]
    sources += [dict(sel) for sel in plan.k8s_network_policy_from]
    pol = network_policy(plan, meta, _selector(meta["labels"]), plan.port, sources)
    if not sources:  # nobody named: the port stays open to every pod, every other port closed
        pol["spec"]["ingress"] = [{"ports": [{"port": plan.port, "protocol": "TCP"}]}]
    return pol


def quantity(value: float) -> str:
    """A Kubernetes quantity for a target value: 5 -> "5", 2.5 -> "2500m"."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def _promql_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _model_selector(plan: DeploymentPlan) -> str:
    """PromQL label matchers for this server's vLLM metrics. vLLM labels every series with
    model_name (the served name), whatever the scrape configuration adds."""
    parts = [f'model_name="{plan.served_name}"']
    if plan.k8s_namespace:
        parts.append(f'namespace="{plan.k8s_namespace}"')
    return "{" + ",".join(parts) + "}"


def autoscaling_queries(plan: DeploymentPlan) -> dict[str, str]:
    """The PromQL KEDA evaluates: the scaling metric, and (scale to zero with a prompt cache)
    the proxy's request rate, which exists while the server has no pods."""
    a = plan.autoscaling
    assert a is not None
    sel = _model_selector(plan)
    out: dict[str, str] = {}
    if a.metric == "queue":
        out["metric"] = f"sum(vllm:num_requests_waiting{sel})"
    else:
        # Idle: no samples in the window make the quantile NaN; read that as 0 (no load).
        out["metric"] = (
            f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{sel}[2m])))"
            " > 0 or vector(0)"
        )
    if a.min_replicas == 0 and plan.sidecars:
        ns = f'namespace="{plan.k8s_namespace}",' if plan.k8s_namespace else ""
        # Requests reaching the proxy (answered or not), capped at 1: it wakes the server and
        # asks for one replica at most; the queue or TTFT trigger sizes it from there.
        out["wake"] = (
            f'clamp_max(sum(rate({{__name__=~"vllmtune_cache_(hits|misses|bypass)_total",{ns}'
            f'pod=~"{plan.sidecar_name("cache")}-.*"}}[2m])), 1)'
        )
    return out


def _scale_target(plan: DeploymentPlan) -> dict[str, str]:
    if plan.multi_node:
        return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": lws_name(plan)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name}


def scaled_object(plan: DeploymentPlan) -> dict[str, Any]:
    """KEDA ScaledObject with Prometheus triggers."""
    a = plan.autoscaling
    assert a is not None
    queries = autoscaling_queries(plan)
    trigger_meta: dict[str, str] = {
        "serverAddress": a.prometheus_url,
        "query": queries["metric"],
        "threshold": _promql_number(a.target),
    }
    if a.metric == "ttft":
        # A latency is not shared out among replicas: scale by the ratio to the target.
        trigger_meta["ignoreNullValues"] = "true"
    triggers: list[dict[str, Any]] = [{"type": "prometheus", "metadata": trigger_meta}]
    if a.metric == "ttft":
        triggers[0]["metricType"] = "Value"
    if "wake" in queries:
        triggers.append(
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": a.prometheus_url,
                    "query": queries["wake"],
                    "threshold": "1",
                    "activationThreshold": "0",
                },
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": object_meta(plan, plan.name),
        "spec": {
            "scaleTargetRef": _scale_target(plan),
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "pollingInterval": a.polling_seconds,
            "cooldownPeriod": a.cooldown_seconds,  # 1 -> 0 only
            # N -> N-1: the HPA KEDA creates waits this long too.
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": a.cooldown_seconds}}
                }
            },
            "triggers": triggers,
        },
    }


HPA_METRIC = "vllm_num_requests_waiting"  # prometheus-adapter's name for vllm:num_requests_waiting


def hpa(plan: DeploymentPlan) -> dict[str, Any]:
    """autoscaling/v2 HPA on the per-pod queue length (served by prometheus-adapter)."""
    a = plan.autoscaling
    assert a is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(plan, plan.name),
        "spec": {
            "scaleTargetRef": _scale_target(plan),
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": HPA_METRIC},
                        "target": {"type": "AverageValue", "averageValue": quantity(a.target)},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": a.cooldown_seconds}},
        },
    }


def monitor(plan: DeploymentPlan) -> dict[str, Any] | None:
    """A PodMonitor or ServiceMonitor for the server and the cache proxy (port "http",
    /metrics); Redis has no "http" port and is not scraped."""
    m = plan.monitoring
    if m.scrape not in ("podmonitor", "servicemonitor"):
        return None
    meta = object_meta(plan, plan.name)
    meta["labels"].update(m.labels)
    selector = {"matchLabels": {k: dict(plan.labels)[k] for k in SELECTOR_KEYS[:2]}}
    endpoint = {"port": "http", "path": "/metrics", "interval": m.interval}
    if m.scrape == "podmonitor":
        spec: dict[str, Any] = {"selector": selector, "podMetricsEndpoints": [endpoint]}
        kind = "PodMonitor"
    else:
        spec = {"selector": selector, "endpoints": [endpoint]}
        kind = "ServiceMonitor"
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "metadata": meta, "spec": spec}


def dashboard_configmap(plan: DeploymentPlan) -> dict[str, Any]:
    """The Grafana dashboard, picked up by Grafana's sidecar (label grafana_dashboard=1)."""
    from vllmtune.render.grafana import render_grafana

    meta = object_meta(plan, f"{plan.name}-dashboard", "dashboard")
    meta["labels"]["grafana_dashboard"] = "1"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{plan.name}.json": render_grafana(plan)},
    }


# Kubernetes expands $(VAR) in a container's command, args and env values, and reads $$ as $.
# Doubling every $ that precedes "(" or "$" makes each rendered string reach the process as
# written (a model id "$(HF_TOKEN)" stays that text; a script's $(date) and $$ still work).
_VAR_REF = re.compile(r"\$(?=[($])")


def k8s_literal(text: str) -> str:
    """``text`` escaped so that Kubernetes' $(VAR) expansion leaves it unchanged."""
    return _VAR_REF.sub("$$", text)


def escape_var_refs(obj: Any) -> Any:
    """Escape command, args and env values of every container in ``obj`` (in place); returns it."""
    if isinstance(obj, dict):
        if "image" in obj and "name" in obj:  # a container
            for key in ("command", "args"):
                if isinstance(obj.get(key), list):
                    obj[key] = [k8s_literal(a) if isinstance(a, str) else a for a in obj[key]]
            for var in obj.get("env") or []:
                if isinstance(var, dict) and isinstance(var.get("value"), str):
                    var["value"] = k8s_literal(var["value"])
        for value in obj.values():
            escape_var_refs(value)
    elif isinstance(obj, list):
        for item in obj:
            escape_var_refs(item)
    return obj


def kubernetes_objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """Every object, in apply order, with every container string escaped for $(VAR)."""
    return [escape_var_refs(o) for o in _objects(plan)]


def _objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    objects = [pvc(plan)]
    if plan.k8s_model_download == "job" and plan.downloads:
        objects.append(download_job(plan))
    objects.append(leader_worker_set(plan) if plan.multi_node else deployment(plan))
    objects.append(service(plan))
    if plan.k8s_network_policy:
        objects.append(server_network_policy(plan))
    for sc in sorted(plan.sidecars, key=lambda s: not s.before_server):
        objects += sidecar_objects(plan, sc)
    if plan.autoscaling is not None:
        objects.append(scaled_object(plan) if plan.autoscaling.engine == "keda" else hpa(plan))
    mon = monitor(plan)
    if mon is not None:
        objects.append(mon)
    if plan.monitoring.dashboard:
        objects.append(dashboard_configmap(plan))
    return objects


def object_filename(obj: dict[str, Any]) -> str:
    """``deployment-llama-8b.yaml``: one file per object with ``-o DIR``."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def render_kubernetes(plan: DeploymentPlan) -> str:
    """All objects as one multi-document stream."""
    return "".join("---\n" + dump_yaml(o) for o in kubernetes_objects(plan))


def render_kubernetes_files(plan: DeploymentPlan) -> dict[str, str]:
    """File name -> text, one object per file."""
    return {object_filename(o): dump_yaml(o) for o in kubernetes_objects(plan)}
