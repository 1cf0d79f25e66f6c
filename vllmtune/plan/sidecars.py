"""Lever 1 deployed: the prompt-cache proxy (and its Redis) as sidecars, and the secrets."""

from __future__ import annotations

from dataclasses import replace

from vllmtune import __version__
from vllmtune.plan.base import _Base
from vllmtune.plan.model import (
    LABEL_PREFIX,
    SERVER_SERVICE,
    DockerReplica,
    Hardening,
    InferencePool,
    PromptCachePlan,
    SecretEnv,
    Sidecar,
    SidecarHealth,
)
from vllmtune.profile.models import ROUTER_VERSION, SecretRef, parse_duration

EPP_PORT = 9002  # the Inference Extension's endpoint picker: its ext-proc (gRPC) port
EPP_HEALTH_PORT = 9003  # its gRPC health service
EPP_METRICS_PORT = 9090
REDIS_IMAGE = "redis:7.4.2-alpine"  # an exact release: a floating tag changes under a running Deployment
REDIS_MAXMEMORY = "1gb"
REDIS_MEMORY = "1536Mi"  # maxmemory 1gb + Redis' own overhead and fragmentation headroom


class _Sidecars(_Base):
    def _secret(self, ref: SecretRef | None, field_path: str, container_var: str, default_key: str) -> SecretEnv | None:
        if ref is None:
            return None
        return SecretEnv(
            name=container_var,
            source_env=ref.env or container_var,
            k8s_secret=ref.secret.name if ref.secret else f"{self.p.name}-secrets",
            k8s_key=ref.secret.key if ref.secret else default_key,
            field=field_path,
        )

    def _secrets(self) -> tuple[SecretEnv, ...]:
        s = self.p.server
        found = (
            self._secret(s.api_key, "server.api_key", "VLLM_API_KEY", "api-key"),
            self._secret(s.hf_token, "server.hf_token", "HF_TOKEN", "hf-token"),
            *(
                self._secret(ref, f"server.secret_env.{name}", name, name.lower().replace("_", "-"))
                for name, ref in s.secret_env.items()
            ),
        )
        return tuple(x for x in found if x is not None)

    def _prompt_cache(self) -> PromptCachePlan | None:
        c = self.p.prompt_cache
        if not c.enabled:
            return None
        return PromptCachePlan(
            backend=c.backend,
            ttl_seconds=parse_duration(c.ttl),
            max_temperature=c.max_temperature,
            skip_pii=c.skip_pii,
            redis_url=self._secret(c.redis_url, "prompt_cache.redis_url", "VLLMTUNE_REDIS_URL", "redis-url"),
        )

    def _inference_pool(self) -> InferencePool | None:
        """``routing.gateway``: the server pods as an InferencePool; the gateway asks the endpoint
        picker (port 9002, the extension's gRPC ext-proc port) which pod takes each request; the
        picker is rendered too, with the extension chart's default scorers."""
        r = self.p.routing
        if r is None or r.gateway is None:
            return None
        return InferencePool(
            name=self.p.name,
            target_port=self.p.server.port,
            epp_service=f"{self.p.name}-epp",
            epp_port=EPP_PORT,
            failure_mode="FailClose",
            epp_image=r.epp_image,
            epp_health_port=EPP_HEALTH_PORT,
            epp_metrics_port=EPP_METRICS_PORT,
            epp_config_file="default-plugins.yaml",
            # the extension chart's default profile: queue depth, KV-cache use and prefix-cache
            # affinity, the last weighted highest (its max-score picker takes the best pod)
            epp_scorers=(("queue-scorer", 2), ("kv-cache-utilization-scorer", 2), ("prefix-cache-scorer", 3)),
            # a distroless Go binary (user 65532); it writes nothing
            epp_hardening=Hardening(65532, True, (), "100m", "256Mi", "256Mi"),
            epp_replicas=1,  # the chart's (one picker; more need its leader election)
            epp_probe_period_seconds=10,
            epp_liveness_failures=6,
        )

    def _local_replicas(self) -> int:
        """Servers ``up --runtime local`` starts: the Kubernetes replicas (2 when only autoscaling
        asks for more) when a router is in front of them, else one."""
        if self.p.routing is None:
            return 1
        return max(2, self.p.deploy.kubernetes.replicas)

    def _docker_replicas(
        self, container: str, gpus: int, labels: tuple[tuple[str, str], ...]
    ) -> tuple[DockerReplica, ...]:
        """The servers as containers: as many as ``up --runtime local`` starts, each on its own
        published port (port, port+1, ...) and, with GPUs, its own devices (replica i: GPUs
        i*gpus .. i*gpus+gpus-1), so that two replicas never share a GPU."""
        n = self._local_replicas()
        port = self.p.server.port
        if n == 1:
            return (DockerReplica(container, SERVER_SERVICE, port, (), labels),)
        return tuple(
            DockerReplica(
                container=container if i == 0 else f"{container}-{i + 1}",
                service=SERVER_SERVICE if i == 0 else f"{SERVER_SERVICE}-{i + 1}",
                host_port=port + i,
                gpu_device_ids=tuple(str(d) for d in range(i * gpus, (i + 1) * gpus)),
                labels=(*labels, (f"{LABEL_PREFIX}/replica", str(i + 1))),
            )
            for i in range(n)
        )

    def _router(self) -> Sidecar | None:
        """The vllm-project router in front of the replicas (``routing``). Docker and compose
        list each server container (``docker_replicas``); in Kubernetes it finds every server pod
        by label (its ``--service-discovery``, with a ServiceAccount allowed to list pods)."""
        r = self.p.routing
        if r is None:
            return None
        common = ("--host", "0.0.0.0", "--port", str(r.port), "--policy", r.policy)
        selector = tuple(
            f"{k}={v}"
            for k, v in (
                ("app.kubernetes.io/name", "vllm"),
                ("app.kubernetes.io/instance", self.p.name),
                ("app.kubernetes.io/component", "server"),
            )
        )
        namespace = self.p.deploy.kubernetes.namespace
        return Sidecar(
            role="router",
            image=f"{r.image}:{ROUTER_VERSION}",
            command=("vllm-router",),
            # {replica0}, {replica1}...: each server container's name (compose: service)
            args=(
                *common,
                "--worker-urls",
                *(f"http://{{replica{i}}}:{{vllm_port}}" for i in range(self._local_replicas())),
            ),
            local_args=(
                *common,
                "--worker-urls",
                # {port0}, {port1}...: the local servers' ports (up --port moves them)
                *(f"http://{{vllm}}:{{port{i}}}" for i in range(self._local_replicas())),
                "--worker-startup-check-interval",  # local servers start together: look every second
                "1",
            ),
            k8s_args=(
                *common,
                "--service-discovery",
                "--selector",
                *selector,
                "--service-discovery-port",
                "{vllm_port}",
                *(("--service-discovery-namespace", namespace) if namespace else ()),
            ),
            # no namespace in the profile: the pod's own (the downward API's POD_NAMESPACE), read
            # by a shell, since without one the router watches every namespace (cluster-wide rights)
            k8s_command=None
            if namespace
            else ("sh", "-c", 'exec vllm-router "$@" --service-discovery-namespace "$POD_NAMESPACE"', "vllm-router"),
            k8s_pod_reader=True,
            local_install=f"pip install vllm-router=={ROUTER_VERSION}",
            port=r.port,
            publish=not self.p.prompt_cache.enabled,  # behind the proxy when there is one
            health=SidecarHealth("/health", None, 10, 5, 3),
            port_name="http",
            replicas=1,
            before_server=False,
            waits_for=("vllm",),  # it waits for its workers to answer before it listens
            fronts_server=True,
            built_here=True,
            build_hint=(
                f"printf 'FROM python:3.12-slim\\nRUN pip install --no-cache-dir vllm-router=={ROUTER_VERSION}"
                f"\\nUSER 10001\\n' | docker build -t {r.image}:{ROUTER_VERSION} -"
            ),
            note=f"routing: vllm-router {ROUTER_VERSION}, policy {r.policy}: clients use port {r.port}",
            # a Rust binary; it writes nothing
            hardening=Hardening(10001, True, ("/tmp",), "500m", "256Mi", "256Mi"),
        )

    def _sidecars(self) -> tuple[Sidecar, ...]:
        """Lever 1 deployed: the cache proxy in front of vLLM (+ Redis unless given by URL), and
        the router in front of the replicas; the proxy's upstream is the router when there is one."""
        router = self._router()
        routed = (router,) if router else ()
        c = self.p.prompt_cache
        if not c.enabled:
            return routed
        from vllmtune.cache.config import ServeConfig, sidecar_argv

        cfg = ServeConfig(
            upstream=f"http://{{router}}:{router.port}" if router else "http://{vllm}:{vllm_port}",
            host="0.0.0.0",
            port=c.port,
            backend=c.backend,
            ttl=parse_duration(c.ttl),
            max_temperature=c.max_temperature,
            skip_pii=c.skip_pii,
        )
        args = sidecar_argv(cfg)
        out = []
        secret: tuple[SecretEnv, ...] = ()
        if c.backend == "redis":
            ref = self._secret(c.redis_url, "prompt_cache.redis_url", "VLLMTUNE_REDIS_URL", "redis-url")
            if ref is None:  # no URL given: run a Redis next to the proxy
                args = sidecar_argv(replace(cfg, redis_url="redis://{redis}:6379/0"))
                # Redis refuses clients without the password (anyone who reaches it could
                # otherwise write answers the proxy serves as hits); both read it from one Secret.
                password = SecretEnv(
                    name="VLLMTUNE_REDIS_PASSWORD",
                    source_env="VLLMTUNE_REDIS_PASSWORD",
                    k8s_secret=f"{self.p.name}-redis-auth",
                    k8s_key="password",
                    field="prompt_cache.backend",
                )
                secret = (password,)
                out.append(
                    Sidecar(
                        role="redis",
                        image=REDIS_IMAGE,
                        # the password from the environment, never in argv (ps, logs, manifests)
                        command=(
                            "sh",
                            "-c",
                            'exec redis-server - "$@" <<EOF\nrequirepass $VLLMTUNE_REDIS_PASSWORD\nEOF\n',
                            "redis",
                        ),
                        secret_env=(password,),
                        args=(
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--maxmemory",
                            REDIS_MAXMEMORY,
                            "--maxmemory-policy",
                            "allkeys-lru",
                        ),
                        port=6379,
                        publish=False,
                        # an answer without the password is NOAUTH, not PONG
                        health=SidecarHealth(
                            None, 'REDISCLI_AUTH="$VLLMTUNE_REDIS_PASSWORD" redis-cli ping | grep -q PONG', 5, 3, 5
                        ),
                        port_name="redis",
                        replicas=1,  # one store: the proxies' replicas share it
                        before_server=True,
                        # a high uid (the image runs non-root users as they are); nothing written (no save, no AOF)
                        hardening=Hardening(10001, True, ("/data",), "100m", REDIS_MEMORY, REDIS_MEMORY),
                        admits=("cache",),
                    )
                )
            else:
                secret = (ref,)  # the proxy reads VLLMTUNE_REDIS_URL
        proxy = Sidecar(
            role="cache",
            image=f"{c.image}:{__version__}",
            args=tuple(args),
            port=c.port,
            publish=True,
            health=SidecarHealth("/cache/stats", None, 10, 5, 3),
            port_name="http",
            replicas=self.p.deploy.kubernetes.replicas,  # one proxy per server replica
            before_server=False,
            # it answers misses from vLLM: started once vLLM (and its Redis) is healthy
            waits_for=("vllm", *(sc.role for sc in (*routed, *out))),
            fronts_server=True,
            built_here=True,
            note=f"lever 1, the prompt-result cache: clients use port {c.port}",
            # with server.api_key the proxy checks the key itself before serving a hit
            secret_env=(*secret, *(e for e in self._secrets() if e.name == "VLLM_API_KEY")),
            # the image's USER proxy (uid 10001); the proxy writes nothing. The memory backend
            # holds up to its byte bound (256 MiB) plus Python's own ~64 MiB.
            hardening=Hardening(10001, True, ("/tmp",), "250m", "512Mi", "512Mi"),
        )
        return (*routed, proxy, *out)
