"""Lever 1 deployed: the prompt-cache proxy (and its Redis) as sidecars, and the secrets."""

from __future__ import annotations

from vllmtune import __version__
from vllmtune.plan.base import _Base
from vllmtune.plan.model import (
    Hardening,
    PromptCachePlan,
    SecretEnv,
    Sidecar,
    SidecarHealth,
)
from vllmtune.profile.models import SecretRef, parse_duration

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

    def _sidecars(self) -> tuple[Sidecar, ...]:
        """Lever 1 deployed: the cache proxy in front of vLLM (+ Redis unless given by URL)."""
        c = self.p.prompt_cache
        if not c.enabled:
            return ()
        args = [
            "--upstream",
            f"http://{{vllm}}:{self.p.server.port}",
            "--host",
            "0.0.0.0",
            "--port",
            str(c.port),
            "--backend",
            c.backend,
            "--ttl",
            str(parse_duration(c.ttl)),
            "--max-temperature",
            str(c.max_temperature),
        ]
        if not c.skip_pii:
            args.append("--no-skip-pii")
        out = []
        secret: tuple[SecretEnv, ...] = ()
        if c.backend == "redis":
            ref = self._secret(c.redis_url, "prompt_cache.redis_url", "VLLMTUNE_REDIS_URL", "redis-url")
            if ref is None:  # no URL given: run a Redis next to the proxy
                args += ["--redis-url", "redis://{redis}:6379/0"]
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
            waits_for=("vllm", *(sc.role for sc in out)),
            fronts_server=True,
            built_here=True,
            note=f"lever 1, the prompt-result cache: clients use port {c.port}",
            # with server.api_key the proxy checks the key itself before serving a hit
            secret_env=(*secret, *(e for e in self._secrets() if e.name == "VLLM_API_KEY")),
            # the image's USER proxy (uid 10001); the proxy writes nothing. The memory backend
            # holds up to its byte bound (256 MiB) plus Python's own ~64 MiB.
            hardening=Hardening(10001, True, ("/tmp",), "250m", "512Mi", "512Mi"),
        )
        return (proxy, *out)
