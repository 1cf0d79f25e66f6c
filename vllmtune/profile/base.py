"""What every profile model shares: the strict base class, the value patterns, durations."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Kubernetes object names (DNS-1123 label) -- we use the profile name for containers,
# compose services and every Kubernetes object, so it has to satisfy the strictest of them.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?([kKmMgGtT]i?)?[bB]?$")
DURATION_RE = re.compile(r"^([0-9]+)(s|m|h|d)$")
# Names whose value is probably a secret when it looks random (KEY alone: MY_KEY, KEY_ID, ...).
SECRET_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
# The variables vllmtune itself fills from server.hf_token / server.api_key.
MANAGED_SECRET_VARS = {"HF_TOKEN": "hf_token", "HUGGING_FACE_HUB_TOKEN": "hf_token", "VLLM_API_KEY": "api_key"}


def parse_duration(text: str) -> int:
    """'30s' / '15m' / '24h' / '7d' (a validated Duration) -> seconds."""
    n, unit = int(text[:-1]), text[-1]
    return n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _not_an_option(value: str) -> str:
    # vLLM's argparse would read a value starting with "-" as another option.
    if value.startswith("-"):
        raise ValueError(f"{value!r} starts with '-', which vLLM would read as a flag")
    if "\x00" in value:
        raise ValueError("contains a NUL character, which no command line can carry")
    return value


ArgValue = Annotated[str, AfterValidator(_not_an_option)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are frozen after validation.

    ``defer_build``: importing this module builds no validator (``vllmtune schema``, explain and
    the CLI's help need the classes, not their validators); :func:`vllmtune.profile.build.build_models` builds them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


Duration = Annotated[str, Field(pattern=DURATION_RE.pattern)]
Restart = Literal["no", "always", "unless-stopped", "on-failure"]
