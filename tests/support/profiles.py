"""Profiles the runtime, bench and ladder tests write into their tmp_path."""

from __future__ import annotations

from pathlib import Path


def docker_profile(tmp_path: Path, name: str, extra: str = "", gpus: int = 0) -> str:
    """``tmp_path/NAME.yaml`` for the docker runtime on the fake vLLM image (vllm 0.32.0,
    ``org/model-x`` served as ``x``, the Hugging Face cache in ``tmp_path/hf``), ``extra`` appended."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nvllm: {{version: '0.32.0'}}\nmodel: {{id: org/model-x, served_name: x}}\n"
        f"resources: {{gpus: {gpus}}}\n"
        f"deploy: {{docker: {{hf_cache: {tmp_path / 'hf'}}}}}\n" + extra
    )
    return str(path)


def tiny_profile(path: Path, name: str, model: Path | str, extra: str = "") -> Path:
    """``path``: the cpu-tiny preset serving the model directory ``model`` as ``tiny``, ``extra``
    appended (more ``model:`` keys when it starts with two spaces)."""
    path.write_text(f"extends: cpu-tiny\nname: {name}\nmodel:\n  id: {model}\n  served_name: tiny\n" + extra)
    return path


def prompt_cache(port: int, more: str = "") -> str:
    """The ``prompt_cache:`` line of a profile: on, the proxy on ``port``, then ``more`` keys."""
    return f"prompt_cache: {{enabled: true, port: {port}{', ' + more if more else ''}}}\n"


MINIMAL = "name: my-llm\nvllm:\n  version: '0.32.0'\nmodel:\n  id: meta-llama/Llama-3.1-8B-Instruct\n"


def profile_errors(tmp_path: Path, text: str) -> str:
    """The whole message of the ProfileError that loading ``text`` (as ``tmp_path/p.yaml``) raises,
    the file named ``p.yaml``."""
    from vllmtune.errors import ProfileError
    from vllmtune.profile.loader import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(text)
    try:
        load_profile(path)
    except ProfileError as e:
        return str(e).replace(str(tmp_path) + "/", "")
    raise AssertionError(f"{text!r} loaded")
