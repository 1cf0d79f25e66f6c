"""Profile -> one frozen DeploymentPlan. Every default is resolved here.

Renderers and runtimes only read the plan: they never see ``None`` meaning "decide later",
never look at the profile and never consult the flag catalog. The vLLM argv is built here,
in the pinned version's spelling, from one table that maps profile fields to vLLM's
argparse ``dest`` names (``FIELD_FLAGS``).
"""

from __future__ import annotations

from pathlib import Path

from vllmtune import __version__
from vllmtune.errors import ProfileError
from vllmtune.modelfacts.sizes import parse_size
from vllmtune.plan.deploy import _Deploy
from vllmtune.plan.model import (
    CONTAINER_HF_CACHE,
    CONTAINER_MODELS,
    LABEL_PREFIX,
    DeploymentPlan,
    Hardening,
    Health,
    Mount,
    Shm,
)
from vllmtune.plan.server import _ServerArgs
from vllmtune.plan.sidecars import _Sidecars
from vllmtune.plan.units import (
    docker_size,
    k8s_quantity,
)
from vllmtune.profile.checks import RUNTIME_LORA_ENV, server_gpus
from vllmtune.profile.loader import LoadedProfile
from vllmtune.profile.models import parse_duration


class _Planner(_ServerArgs, _Deploy, _Sidecars):
    def build(self) -> DeploymentPlan:
        p = self.p
        model, host_path, mounts = self._model()
        self._field_args(model)
        self._deprecated_quantization()
        self._speculative()
        adapter_mounts = self._lora()
        multi_node = self._multi_node()
        self.args += ["--host", p.server.host]
        self.spelt["host"] = "--host"
        self.args += self.flag(("server", "port"), "port", p.server.port)
        self._extra_args()
        if self.errors:
            raise ProfileError(sorted(self.errors, key=lambda e: (e.file, e.line or 0)))
        self._levers()
        r = p.resources
        parallel = p.parallelism.data * r.tensor_parallel_size * r.pipeline_parallel_size > 1
        shm = Shm(
            ipc_host=parallel and r.shm_size is None, size=docker_size(r.shm_size or ("16g" if parallel else "2g"))
        )
        d = p.deploy
        mounts = (Mount(source=d.docker.hf_cache, target=CONTAINER_HF_CACHE, kind="cache"), *mounts, *adapter_mounts)
        downloads = self._downloads()
        startup_seconds, budget = self._startup_budget(downloads)
        served = p.model.served_name or model
        labels = (
            ("app.kubernetes.io/name", "vllm"),
            ("app.kubernetes.io/instance", p.name),
            ("app.kubernetes.io/component", "server"),
            ("app.kubernetes.io/managed-by", "vllmtune"),
            (f"{LABEL_PREFIX}/profile", p.name),
            (f"{LABEL_PREFIX}/profile-hash", self.lp.digest),
            (f"{LABEL_PREFIX}/vllm-version", self.version),
            (f"{LABEL_PREFIX}/version", __version__),
        )
        probes = d.kubernetes.probes
        served_names = (served, *(a.name for a in (p.lora.adapters if p.lora else [])))
        return DeploymentPlan(
            name=p.name,
            profile_hash=self.lp.digest,
            vllm_version=self.version,
            image=f"{p.vllm.image}:v{self.version}",
            entrypoint=self.entrypoint,
            model=model,
            model_host_path=host_path,
            served_name=served,
            args=tuple(self.args),
            env=self._env(),
            secret_env=self._secrets(),
            port=p.server.port,
            gpus=server_gpus(p),
            gpu_memory_bytes=parse_size(r.gpu_memory) if r.gpu_memory else None,
            shm=shm,
            mounts=mounts,
            health=Health("/health", startup_seconds, probes.period_seconds),
            labels=labels,
            docker_container=d.docker.container_name or p.name,
            docker_restart=d.docker.restart,
            docker_bind=d.docker.bind_address,
            docker_replicas=self._docker_replicas(d.docker.container_name or p.name, server_gpus(p), labels),
            compose_restart=d.compose.restart,
            compose_hf_cache=d.compose.hf_cache,
            compose_start_period_seconds=parse_duration(d.compose.start_period),
            k8s_namespace=d.kubernetes.namespace,
            k8s_replicas=d.kubernetes.replicas,
            local_replicas=self._local_replicas(),
            inference_pool=self._inference_pool(),
            k8s_extra_labels=tuple(sorted(d.kubernetes.labels.items())),
            k8s_node_selector=tuple(sorted(d.kubernetes.node_selector.items())),
            k8s_tolerations=tuple(
                tuple((k, v) for k, v in t.model_dump(exclude_none=True).items()) for t in d.kubernetes.tolerations
            ),
            k8s_pvc_size=k8s_quantity(docker_size(d.kubernetes.pvc.size)),
            k8s_pvc_storage_class=d.kubernetes.pvc.storage_class,
            k8s_pvc_access_mode=d.kubernetes.pvc.access_mode,
            k8s_service_type=d.kubernetes.service_type,
            prompt_cache=self._prompt_cache(),
            sidecars=self._sidecars(),
            levers=tuple(self.levers),
            vllm=self._settings(model, served_names),
            served_names=served_names,
            multi_node=multi_node,
            k8s_model_download=d.kubernetes.model_download,
            downloads=downloads,
            autoscaling=self._autoscaling(),
            monitoring=self._monitoring(),
            quantize=self._quantize(),
            startup_budget=budget,
            source=self.lp.source,
            warnings=tuple(str(w) for w in self.warnings),
            k8s_server_hardening=self._server_hardening(shm),
            k8s_download_hardening=Hardening(None, False, (), "500m", "2Gi", "2Gi"),
            k8s_hf_offline=d.kubernetes.model_download == "job" and "HF_HUB_OFFLINE" not in p.server.env,
            compose_hf_cache_volume="/" not in d.compose.hf_cache and not d.compose.hf_cache.startswith((".", "~")),
            k8s_network_policy=d.kubernetes.network_policy.enabled,
            k8s_network_policy_from=tuple(tuple(sorted(sel.items())) for sel in d.kubernetes.network_policy.allow_from),
        )

    def _env(self) -> tuple[tuple[str, str], ...]:
        env = dict(self.p.server.env)
        env.update(self._kv_offload_env())
        if self.p.lora is not None and self.p.lora.runtime_updates:
            env[RUNTIME_LORA_ENV] = "True"
        return tuple(sorted(env.items()))

    def _model(self) -> tuple[str, str | None, tuple[Mount, ...]]:
        """The model vLLM loads. A local directory is bind-mounted read-only in containers."""
        ident = self.p.quantization.checkpoint or self.p.model.id
        host_path = self._host_path(ident)
        if host_path is None:
            return ident, None, ()
        target = f"{CONTAINER_MODELS}/{Path(host_path).name or 'model'}"
        return target, host_path, (Mount(source=host_path, target=target, read_only=True),)


def build_plan(lp: LoadedProfile) -> DeploymentPlan:
    """Resolve a validated profile into a frozen plan; raise ProfileError for what the
    pinned vLLM version cannot express."""
    return _Planner(lp).build()


def load_plan(path: str) -> DeploymentPlan:
    """Load, validate and plan a profile file in one step."""
    from vllmtune.profile.loader import load_profile

    return build_plan(load_profile(path))
