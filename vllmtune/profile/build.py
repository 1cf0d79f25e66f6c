"""Building the profile models' validators, cheaply: innermost model first, and without
pydantic's plugin machinery (the models use no plugin). See CONTRIBUTING's start-up paragraph."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The model classes an annotation refers to (``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _nested_models(arg)


def build_models(root: type[BaseModel]) -> None:
    """Build the validators of ``root`` and of every model it nests, innermost first, without
    pydantic's plugin scan (:func:`_without_pydantic_plugins`).

    Deferred models built from the outside in cost twice: the outer schema generates each
    inner one inline, then every ``default_factory=Section`` instantiates ``Section``, which
    builds its own schema again. Built from the inside out, each model's core schema is made
    once and the outer ones reuse it (half the instructions of building them outside in:
    benchmarks/render_startup.py --instructions). Idempotent: a built model is skipped.
    """
    if root.__pydantic_complete__:
        return
    with _without_pydantic_plugins(), _builtin_factories_take_no_data():
        _build(root)


def _build(model: type[BaseModel]) -> None:
    if model.__pydantic_complete__:
        return
    for info in model.__pydantic_fields__.values():
        for inner in _nested_models(info.annotation):
            if inner is not model:
                _build(inner)
    model.model_rebuild()


@contextlib.contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """Build the profile's validators without pydantic's plugin scan. The profile models use no
    pydantic plugin (an observability plugin would only trace profile validation), and the scan
    reads the entry points of every installed distribution: ~80 ms of a cold ``render`` on a
    machine with a few hundred packages (benchmarks/render_startup.py). Only this process's
    first profile validation is affected: the variable is restored at once, so any other
    pydantic model (and any child process) still loads its plugins.

    Even with plugins disabled, pydantic's plugin loader module imports ``importlib.metadata``
    (and with it email, socket, zipfile, importlib.resources: more than the YAML parser and the
    plan together). While the validators are built, and only when nothing has imported that
    loader yet, it is stood in for by a module whose ``get_plugins`` returns none, which is what
    the real one returns under ``PYDANTIC_DISABLE_PLUGINS=__all__``; afterwards the stand-in is
    removed, so the next pydantic import of the loader gets the real module.
    """
    before = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    stand_in = _plugin_loader_stand_in() if _PLUGIN_LOADER not in sys.modules else None
    try:
        yield
    finally:
        if stand_in is not None and sys.modules.get(_PLUGIN_LOADER) is stand_in:
            del sys.modules[_PLUGIN_LOADER]
        if before is None:
            os.environ.pop("PYDANTIC_DISABLE_PLUGINS", None)
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = before


_PLUGIN_LOADER = "pydantic.plugin._loader"
# default_factory values that are classes of the standard library: called with no argument.
_BUILTIN_FACTORIES = (list, dict, set, tuple)


@contextlib.contextmanager
def _builtin_factories_take_no_data() -> Iterator[None]:
    """Answer pydantic's "does this default_factory take the validated data?" for ``list``,
    ``dict``, ``set`` and ``tuple`` without :func:`inspect.signature`, while the validators build.

    pydantic asks it of every ``default_factory`` (``Field(default_factory=list)``); for a builtin
    class ``inspect`` parses the class's text signature with :mod:`tokenize`, whose first use
    compiles its whole-Python-grammar regular expression: ~14M instructions of a cold ``render``
    (``benchmarks/render_startup.py --instructions``), to learn that ``list()`` takes no argument.
    The answer is the one pydantic's own check gives (False); any other factory goes to it.
    Restored afterwards.
    """
    from pydantic._internal import _generate_schema

    name = "takes_validated_data_argument"
    real = getattr(_generate_schema, name)

    def takes_data(default_factory: Any) -> bool:
        if default_factory in _BUILTIN_FACTORIES:
            return False
        return bool(real(default_factory))

    setattr(_generate_schema, name, takes_data)
    try:
        yield
    finally:
        setattr(_generate_schema, name, real)


def _plugin_loader_stand_in() -> types.ModuleType:
    """Install (in sys.modules) a stand-in for pydantic's plugin loader: ``get_plugins()`` returns
    no plugin; any other name imports the real loader in its place and is taken from it (so a
    pydantic that needs more of its loader still works, only slower)."""
    stand_in = types.ModuleType(_PLUGIN_LOADER, "vllmtune: no pydantic plugins while the profile models build")

    def get_plugins() -> tuple[()]:
        return ()

    def real(name: str) -> Any:
        if name.startswith("__"):  # the import system asking for __path__, __spec__...
            raise AttributeError(name)
        if sys.modules.get(_PLUGIN_LOADER) is stand_in:
            del sys.modules[_PLUGIN_LOADER]
        return getattr(importlib.import_module(_PLUGIN_LOADER), name)

    stand_in.get_plugins = get_plugins  # type: ignore[attr-defined]
    stand_in.__getattr__ = real  # type: ignore[method-assign]
    sys.modules[_PLUGIN_LOADER] = stand_in
    return stand_in
