"""What a kubelet hands a container process: Kubernetes' documented $(VAR) expansion."""

from __future__ import annotations

from typing import Any


def expand(text: str, env: dict[str, str]) -> str:
    """$(NAME) -> its value when NAME is defined (else left as is), $$ -> $
    (k8s.io/kubernetes third_party/forked/golang/expansion, "Define a command and arguments")."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env.get(name, f"$({name})"))
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


FROM_SECRET = "LEAKED-SECRET"


def as_run(container: dict[str, Any]) -> dict[str, Any]:
    """The container with command, args and env values as the process sees them. A variable
    set from a Secret (``valueFrom``) is defined too: Kubernetes substitutes it like any other,
    so its value here is ``FROM_SECRET``, which must never show up in what the process gets."""
    env: dict[str, str] = {}
    new_env = []
    for var in container.get("env", []):
        var = dict(var)
        if "value" in var:
            var["value"] = expand(var["value"], env)
            env[var["name"]] = var["value"]
        elif "valueFrom" in var:
            env[var["name"]] = FROM_SECRET
        new_env.append(var)
    out = dict(container)
    if "env" in container:
        out["env"] = new_env
    for key in ("command", "args"):
        if key in container:
            out[key] = [expand(a, env) for a in container[key]]
    return out
