"""Where the server runs: nodes, downloads, start-up budget, resources, autoscaling,
monitoring and the quantization job."""

from __future__ import annotations

import math
from pathlib import Path

from vllmtune.modelfacts.sizes import parse_size
from vllmtune.plan.base import _Base
from vllmtune.plan.model import (
    BUDGET_MARGIN,
    DEFAULT_STARTUP_SECONDS,
    DOWNLOAD_BYTES_PER_S,
    LOAD_BYTES_PER_S,
    RAY_PORT,
    RAY_WAIT_SECONDS,
    WARMUP_SECONDS,
    Autoscaling,
    Hardening,
    Monitoring,
    MultiNode,
    QuantizeJob,
    Shm,
)
from vllmtune.plan.units import (
    _gib,
    docker_size,
    k8s_quantity,
)
from vllmtune.profile.checks import server_gpus
from vllmtune.profile.models import parse_duration

# Pod network interface for NCCL/Gloo (the pod's own eth0 on common CNIs); server.env overrides.
SOCKET_IFNAME = "eth0"
KEDA_POLLING_SECONDS = 15


class _Deploy(_Base):
    def _server_hardening(self, shm: Shm) -> Hardening:
        """vLLM's container: its image runs as root and writes caches (torch.compile, Triton,
        flashinfer) under its home, so it keeps the image's user and a writable root; it drops
        every capability. Memory: the weights pass through host memory while loading, and the
        memory-backed /dev/shm counts against the container's limit."""
        r = self.p.deploy.kubernetes.resources
        cpu = r.cpu or str(2 + 2 * server_gpus(self.p))
        if r.memory:
            memory = k8s_quantity(docker_size(r.memory))
        else:
            shm_gib = _gib(shm.size)
            size = self._weights_bytes()
            if size is None:
                gib = 32 + shm_gib
            else:
                per_pod = size / max(1, self.p.resources.nodes)
                gib = math.ceil(per_pod * 1.2 / 2**30) + shm_gib + 8
            if self.p.kv_offload is not None:  # the offloaded KV blocks live in the pod's memory
                gib += math.ceil(parse_size(self.p.kv_offload.size) / 2**30)
            memory = f"{math.ceil(gib)}Gi"
        return Hardening(None, False, (), cpu, memory, memory)

    def _multi_node(self) -> MultiNode | None:
        """Across nodes vLLM runs on a Ray cluster: the leader pod is its head."""
        r = self.p.resources
        if r.nodes == 1:
            return None
        self.args += self.flag(("resources", "nodes"), "distributed_executor_backend", "ray")
        at = self.lp.problem(("resources", "nodes"), "")
        where = f"{at.file}:{at.line}" if at.line else at.file
        given = self.p.server.env
        return MultiNode(
            nodes=r.nodes,
            gpus_per_node=r.gpus,
            ray_port=RAY_PORT,
            ray_wait_seconds=RAY_WAIT_SECONDS,
            where=where,
            socket_env=tuple(
                (var, SOCKET_IFNAME) for var in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME") if var not in given
            ),
            host_ip_from_pod="VLLM_HOST_IP" not in given,
        )

    def _downloads(self) -> tuple[str, ...]:
        """Hub repositories the server reads (weights, tokenizer, draft model, adapters): what a
        pre-download init container or Job fetches."""
        p = self.p
        out: list[str] = []
        main = p.quantization.checkpoint or p.model.id
        if self._host_path(main) is None:
            rev = p.model.revision if not p.quantization.checkpoint else None
            out.append(f"{main}@{rev}" if rev else main)
        for ident in (
            p.model.tokenizer,
            p.speculative.model if p.speculative and p.speculative.method != "ngram" else None,
            *(a.source for a in (p.lora.adapters if p.lora else [])),
        ):
            if ident and self._host_path(ident) is None and ident not in out:
                out.append(ident)
        return tuple(out)

    def _weights_bytes(self) -> int | None:
        """Size of the weights vLLM loads, when vllmtune knows the model (catalog or local dir)."""
        checkpoint = self.p.quantization.checkpoint
        return self._weights_of(checkpoint or self.p.model.id, quantized_name=bool(checkpoint))

    def _weights_of(self, ident: str, quantized_name: bool) -> int | None:
        """Bytes of a model's weights: a local directory's safetensors, or the catalog's
        parameters at 16 bits (at the bit width its name says, for a quantized checkpoint)."""
        from vllmtune.modelfacts.models import catalog_lookup, derived_params, name_quant_hint

        host = self._host_path(ident)
        if host is not None:
            files = list(Path(host).glob("*.safetensors")) if Path(host).is_dir() else []
            return sum(f.stat().st_size for f in files) or None
        arch = catalog_lookup(ident)
        if arch is None:
            return None
        params = arch.params or derived_params(arch)
        hint = name_quant_hint(ident) if quantized_name else None
        bits = hint[1] if hint else 16.0
        return int(params * bits / 8)

    def _startup_budget(self, downloads: tuple[str, ...]) -> tuple[int, str]:
        """probes.startup_timeout, or one derived from the model's size."""
        probes = self.p.deploy.kubernetes.probes
        if probes.startup_timeout is not None:
            return parse_duration(probes.startup_timeout), f"startup_timeout {probes.startup_timeout} (profile)"
        size = self._weights_bytes()
        if size is None:
            return DEFAULT_STARTUP_SECONDS, "30m: model size unknown to vllmtune (set probes.startup_timeout)"
        downloads_here = self.p.deploy.kubernetes.model_download == "server" and bool(downloads)
        seconds = (size / DOWNLOAD_BYTES_PER_S if downloads_here else 0) + size / LOAD_BYTES_PER_S + WARMUP_SECONDS
        minutes = math.ceil(seconds * BUDGET_MARGIN / 60)
        what = "download at 100 MB/s + " if downloads_here else ""
        why = f"{size / 1e9:.1f} GB of weights ({what}load at 500 MB/s + 10 min warm-up) x1.5"
        if self.p.resources.nodes > 1:  # the leader first waits for the Ray cluster to form
            minutes += RAY_WAIT_SECONDS // 60
            why += f" + {RAY_WAIT_SECONDS // 60} min for the Ray cluster"
        return minutes * 60, f"{minutes}m: {why}"

    def _autoscaling(self) -> Autoscaling | None:
        a = self.p.deploy.kubernetes.autoscaling
        if a is None:
            return None
        target = a.target if a.target is not None else (5.0 if a.metric == "queue" else 1.0)
        return Autoscaling(
            engine=a.engine,
            min_replicas=a.min_replicas,
            max_replicas=a.max_replicas,
            metric=a.metric,
            target=target,
            prometheus_url=a.prometheus_url,
            cooldown_seconds=parse_duration(a.cooldown),
            polling_seconds=KEDA_POLLING_SECONDS,
        )

    def _monitoring(self) -> Monitoring:
        m = self.p.deploy.kubernetes.monitoring
        return Monitoring(
            scrape=m.scrape, interval=m.interval, labels=tuple(sorted(m.labels.items())), dashboard=m.dashboard
        )

    def _quantize(self) -> QuantizeJob | None:
        q = self.p.quantization
        r = q.recipe
        if r is None or q.checkpoint is None:
            return None
        src_host = self._host_path(self.p.model.id)
        out_host = self._host_path(q.checkpoint)
        data_host = self._host_path(r.calibration_dataset)
        weights = self._weights_of(self.p.model.id, quantized_name=False)  # the 16-bit source
        return QuantizeJob(
            source="/work/source" if src_host else self.p.model.id,
            source_host_path=src_host,
            revision=self.p.model.revision,
            output="/work/output" if out_host else q.checkpoint,
            output_host_path=out_host,
            push_to_hub=out_host is None,
            scheme=r.scheme,
            algorithm=r.algorithm,
            dataset=f"/work/calibration/{Path(data_host).name}" if data_host else r.calibration_dataset,
            dataset_host_path=data_host,
            split=r.calibration_split,
            samples=r.calibration_samples,
            max_seq_length=r.max_seq_length,
            ignore=tuple(r.ignore),
            requirement=r.llmcompressor,
            image=r.image or f"{self.p.vllm.image}:v{self.version}",
            gpus=r.gpus,
            source_bytes=weights,
        )
