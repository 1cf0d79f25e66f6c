"""Plan -> the llm-compressor job that writes ``quantization.checkpoint``: Kubernetes objects
(``-t quantize-job``) or a bash script with one ``docker run --rm`` (``-t quantize-script``).

The job runs ``vllmtune/quantize_job.py``, a static script shipped in the package (a ConfigMap
in Kubernetes, a heredoc written to a temporary directory by the bash script). Every user value
travels as data: the settings as ONE JSON argument, the llm-compressor requirement as an
environment variable, the token by reference. The shell text around them is fixed.

Estimates come from llm-compressor's own guides (docs/guides/memory.md, docs/guides/runtime.md
in vllm-project/llm-compressor), not from measurements made here.
"""

from __future__ import annotations

import json
import shlex
from importlib import resources
from typing import Any

from vllmtune import __version__
from vllmtune.errors import RenderError
from vllmtune.plan import CONTAINER_HF_CACHE, DeploymentPlan, QuantizeJob, SecretEnv, k8s_quantity
from vllmtune.profile.yamlio import dump_yaml_stream
from vllmtune.render.k8s import cache_claim_name, escape_var_refs, object_meta, pvc, secret_env, stable_labels
from vllmtune.render.shell import Shell, Word, hf_cache_lines, join_lines, secret_lines
from vllmtune.render.text import oneline

SCRIPT_NAME = "quantize_job.py"
SCRIPT_DIR = "/vllmtune"  # where the job script sits in the container
REQUIREMENT_ENV = "VLLMTUNE_LLMC_REQUIREMENT"
# Fixed text: user data reaches it only as "$VLLMTUNE_LLMC_REQUIREMENT" and "$@".
JOB_SHELL = (
    f'python3 -m pip install --no-cache-dir "${REQUIREMENT_ENV}" && exec python3 {SCRIPT_DIR}/{SCRIPT_NAME} "$@"'
)
HEREDOC_END = "VLLMTUNE_QUANTIZE_JOB"
COMPONENT = "quantize"
ANNOTATION = "vllmtune.io"

# llm-compressor docs/guides/runtime.md: Meta-Llama-3-8B-Instruct on one A100.
RUNTIME_GUIDE = "llm-compressor docs/guides/runtime.md"
MEMORY_GUIDE = "llm-compressor docs/guides/memory.md"
GUIDE_MODEL_BYTES = 16e9  # the guide's model, in 16-bit weights (8B parameters x 2 bytes)
A16_SCHEMES = ("W4A16", "W4A16_ASYM", "W8A16")


def _job(plan: DeploymentPlan) -> QuantizeJob:
    if plan.quantize is None:
        raise RenderError(
            f"{plan.source}: quantization.recipe: not set; add quantization.recipe (scheme, algorithm, calibration) "
            "and quantization.checkpoint to render a quantization job"
        )
    return plan.quantize


def job_script() -> str:
    """The text of vllmtune/quantize_job.py, as installed with the package."""
    return resources.files("vllmtune").joinpath(SCRIPT_NAME).read_text(encoding="utf-8")


def settings(q: QuantizeJob) -> dict[str, Any]:
    """What quantize_job.py reads: its one JSON argument."""
    return {
        "source": q.source,
        "revision": q.revision,
        "output": q.output,
        "push_to_hub": q.push_to_hub,
        "scheme": q.scheme,
        "algorithm": q.algorithm,
        "dataset": q.dataset,
        "split": q.split,
        "samples": q.samples,
        "max_seq_length": q.max_seq_length,
        "ignore": list(q.ignore),
    }


def _settings_arg(q: QuantizeJob) -> str:
    """The JSON argument, deterministic (sorted keys)."""
    return json.dumps(settings(q), sort_keys=True, ensure_ascii=False)


def _uses_hub(q: QuantizeJob) -> bool:
    return q.push_to_hub or q.source_host_path is None or q.dataset_host_path is None


def hf_token(plan: DeploymentPlan, q: QuantizeJob) -> SecretEnv | None:
    """The token, when the job talks to the Hub (gated source, hub dataset, the push)."""
    if not _uses_hub(q):
        return None
    return next((s for s in plan.secret_env if s.name == "HF_TOKEN"), None)


def _estimate_memory(q: QuantizeJob) -> str:
    """Memory the job needs, by the rule of llm-compressor's memory guide: the whole model in
    host memory at 16 bits, one decoder layer at a time on the GPU (twice that for GPTQ, whose
    hessians are about the size of the weights)."""
    host = (
        f"host RAM >= {q.source_bytes / 1e9:.1f} GB (the 16-bit weights)"
        if q.source_bytes
        else "host RAM >= the model's 16-bit weights (size unknown to vllmtune)"
    )
    layer = {
        "gptq": "2 x one decoder layer (GPTQ hessians)",
        "awq": "one decoder layer and its cached inputs (AWQ is not in the guide)",
    }.get(q.algorithm, "one decoder layer")
    gpu = f"GPU: {layer} at a time plus calibration activations" if q.gpus else "CPU only (tiny models)"
    return f"{host}; {gpu}; rule of {MEMORY_GUIDE} (Llama-3-8B: 16 GB host, 0.5 GB RTN / 1 GB GPTQ GPU)"


def _estimate_runtime(q: QuantizeJob) -> str:
    """Run time from llm-compressor's runtime guide (Llama-3-8B on one A100); this model's
    size relative to that one, for the reader to scale. Nothing here was measured on a GPU."""
    if q.algorithm == "rtn":
        figure = "~1 min (RTN, weights only)" if q.scheme in A16_SCHEMES else "~20 min (RTN, weights and activations)"
    else:
        figure = f"~30 min ({q.algorithm.upper()}, weights only)"
    size = f"; this model is {q.source_bytes / GUIDE_MODEL_BYTES:.2f}x its size" if q.source_bytes else ""
    return f"{figure} for Llama-3-8B on one A100 per {RUNTIME_GUIDE}{size}; not measured on GPU here"


# ---- Kubernetes -------------------------------------------------------------------------


def _config_map_name(plan: DeploymentPlan) -> str:
    """The ConfigMap carrying quantize_job.py."""
    return f"{plan.name}-quantize-script"


def job_name(plan: DeploymentPlan) -> str:
    """The docker container name."""
    return f"{plan.name}-quantize"


def _k8s_job_name(plan: DeploymentPlan) -> str:
    """The Job's name carries a digest of its settings: a Job's pod template is immutable, so a
    changed recipe is a new Job (re-applying an unchanged one is a no-op)."""
    import hashlib

    digest = hashlib.sha256((_settings_arg(_job(plan)) + job_script()).encode()).hexdigest()[:10]
    return f"{plan.name}-quantize-{digest}"


def _config_map(plan: DeploymentPlan) -> dict[str, Any]:
    """quantize_job.py as a ConfigMap, mounted read-only into the Job."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(plan, _config_map_name(plan), COMPONENT),
        "data": {SCRIPT_NAME: job_script()},
    }


def _host_mounts(q: QuantizeJob) -> list[tuple[str, str, str, bool, str]]:
    """(volume name, host path, container path, read-only, hostPath type) of local inputs/outputs."""
    out = []
    if q.source_host_path:
        out.append(("source", q.source_host_path, q.source, True, "Directory"))
    if q.output_host_path:
        # The job creates the checkpoint directory; it need not exist yet.
        out.append(("output", q.output_host_path, q.output, False, "DirectoryOrCreate"))
    if q.dataset_host_path:
        out.append(("calibration", q.dataset_host_path, q.dataset, True, "File"))
    return out


def job(plan: DeploymentPlan) -> dict[str, Any]:
    """The batch/v1 Job running llm-compressor once."""
    q = _job(plan)
    env: list[dict[str, Any]] = [{"name": REQUIREMENT_ENV, "value": q.requirement}]
    token = hf_token(plan, q)
    if token is not None:
        env += secret_env([token])
    mounts: list[dict[str, Any]] = [
        {"name": "shm", "mountPath": "/dev/shm"},
        {"name": "hf-cache", "mountPath": CONTAINER_HF_CACHE},
        {"name": "job-script", "mountPath": SCRIPT_DIR, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.shm.size)}},
        # The server's cache claim: what the job downloads, the server does not download again.
        {"name": "hf-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(plan)}},
        {"name": "job-script", "configMap": {"name": _config_map_name(plan)}},
    ]
    for name, host, target, read_only, kind in _host_mounts(q):
        mounts.append({"name": name, "mountPath": target, "readOnly": read_only})
        volumes.append({"name": name, "hostPath": {"path": host, "type": kind}})
    container: dict[str, Any] = {
        "name": COMPONENT,
        "image": q.image,
        "command": ["bash", "-c", JOB_SHELL, COMPONENT],
        "args": [_settings_arg(q)],
        "env": env,
    }
    if q.gpus:
        gpus = str(q.gpus)
        container["resources"] = {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
    container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    if plan.k8s_node_selector:
        pod_spec["nodeSelector"] = dict(plan.k8s_node_selector)
    # GPU nodes are usually tainted: tolerate them when asking for a GPU or for their nodes.
    if (q.gpus or plan.k8s_node_selector) and plan.k8s_tolerations:
        pod_spec["tolerations"] = [dict(t) for t in plan.k8s_tolerations]
    meta = object_meta(plan, _k8s_job_name(plan), COMPONENT)
    meta["annotations"] = {
        f"{ANNOTATION}/estimate-memory": _estimate_memory(q),
        f"{ANNOTATION}/estimate-runtime": _estimate_runtime(q),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": q.backoff_limit,
            "template": {"metadata": {"labels": stable_labels(meta["labels"])}, "spec": pod_spec},
        },
    }


def _quantize_objects(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """The model cache claim (shared with the server), ConfigMap, then Job, in apply order."""
    _job(plan)
    return [escape_var_refs(o) for o in (pvc(plan), _config_map(plan), job(plan))]


def render_quantize_job(plan: DeploymentPlan) -> str:
    """``-t quantize-job``: the objects as one multi-document stream."""
    return dump_yaml_stream(_quantize_objects(plan))


# ---- docker -----------------------------------------------------------------------------


def run_lines(plan: DeploymentPlan) -> list[list[Word]]:
    """``docker run --rm`` of the job as lines of words."""
    q = _job(plan)
    lines: list[list[Word]] = [["docker", "run", "--rm"], ["--name", job_name(plan)]]
    lines += [["--label", f"{k}={v}"] for k, v in plan.sidecar_labels(COMPONENT).items()]
    if q.gpus:
        lines.append(["--gpus", str(q.gpus)])
    lines.append(["--shm-size", plan.shm.size])
    lines.append(["--volume", Shell(f'"$HF_CACHE":{shlex.quote(CONTAINER_HF_CACHE)}')])
    lines.append(["--volume", Shell(f'"$job_dir":{shlex.quote(SCRIPT_DIR)}:ro')])
    for _, host, target, read_only, _ in _host_mounts(q):
        lines.append(["--volume", f"{host}:{target}" + (":ro" if read_only else "")])
    lines.append(["--env", f"{REQUIREMENT_ENV}={q.requirement}"])
    token = hf_token(plan, q)
    if token is not None:
        lines.append(["--env", token.name])
    # The vLLM image's entrypoint is `vllm serve`: the job replaces it.
    lines.append(["--entrypoint", "bash"])
    lines.append([q.image])
    lines.append(["-c", JOB_SHELL, COMPONENT])
    lines.append([_settings_arg(q)])
    return lines


def _header(plan: DeploymentPlan, q: QuantizeJob) -> list[str]:
    what = f"{q.scheme} with {q.algorithm}"
    out = q.output_host_path or q.output
    data = f"{q.samples} samples of {oneline(q.dataset_host_path or q.dataset)} (max {q.max_seq_length} tokens)"
    lines = [
        "#!/usr/bin/env bash",
        f'# Generated by vllmtune {__version__} from profile "{oneline(plan.name)}" (hash {plan.profile_hash}).',
        "# Do not edit by hand: change the profile and run `vllmtune render -t quantize-script` again.",
        "#",
        f"# llm-compressor ({oneline(q.requirement)}) quantizes {oneline(q.source_host_path or q.source)}",
        f"# to {what}, calibrated on {data},",
        f"# and {'pushes it to the Hub repo' if q.push_to_hub else 'writes it to'} {oneline(out)}.",
        f"# Image {q.image}; the container pip-installs llm-compressor (it needs PyPI).",
        f"# Memory: {_estimate_memory(q)}",
        f"# Run time: {_estimate_runtime(q)}",
    ]
    lines.append(f"# Needs {q.gpus} NVIDIA GPU(s) (docker run --gpus)." if q.gpus else "# CPU only: for tiny models.")
    token = hf_token(plan, q)
    if token is not None:
        lines.append(f"# {token.field}: read from ${token.source_env} in your environment, never written here.")
    lines.append("set -euo pipefail")
    return lines


def render_quantize_script(plan: DeploymentPlan) -> str:
    """``-t quantize-script``: the whole bash script."""
    q = _job(plan)
    script = job_script()
    # The heredoc is quoted ('END'): bash expands nothing inside; only the end word matters.
    assert f"\n{HEREDOC_END}\n" not in f"\n{script}", "quantize_job.py contains the heredoc end word"
    out = _header(plan, q)
    out.append("")
    out += hf_cache_lines(plan.hf_cache_source, "Hugging Face cache on this machine, shared with the server")
    token = hf_token(plan, q)
    if token is not None:
        out += secret_lines(token)
    if q.output_host_path:
        # Created by us, not by the docker daemon (which would make it root's).
        out.append(f"mkdir -p {shlex.quote(q.output_host_path)}")
    out.append("")
    out.append("# The job script (vllmtune/quantize_job.py), mounted read-only at /vllmtune")
    out.append('job_dir="$(mktemp -d)"')
    out.append("trap 'rm -rf \"$job_dir\"' EXIT")
    out.append(f"cat > \"$job_dir\"/{SCRIPT_NAME} <<'{HEREDOC_END}'")
    out.append(script.rstrip("\n"))
    out.append(HEREDOC_END)
    out.append("")
    out.append(join_lines(run_lines(plan)))
    return "\n".join(out) + "\n"
