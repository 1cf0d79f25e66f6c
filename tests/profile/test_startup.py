"""What loading a profile costs at start-up: the imports it pulls in and how its validators are built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vllmtune
from vllmtune.profile import build, loader
from vllmtune.util import pkgdata

# Modules a cold `render` / `validate` used to import only for loading the profile: pydantic's
# plugin loader (and through importlib.metadata: email, socket, zipfile, importlib.resources),
# importlib.resources for the presets and the flag catalog, difflib for did-you-mean.
KEPT_OUT = ("pydantic.plugin._loader", "importlib.metadata", "importlib.resources", "zipfile", "email", "difflib")


def _imported_by(code: str) -> list[str]:
    """The KEPT_OUT modules in sys.modules after ``code`` runs in a fresh interpreter started
    with -S: no .pth file runs, so a module some other installed package preloads at start-up
    cannot hide one that vllmtune imports."""
    path = [str(Path(vllmtune.__file__).resolve().parent.parent), *(p for p in sys.path if p)]
    probe = f"{code}; import sys; print(__import__('json').dumps([m for m in {KEPT_OUT!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    r = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, check=True)
    found: list[str] = json.loads(r.stdout.splitlines()[-1])
    return found


def test_loading_and_validating_a_profile_keeps_those_imports_out() -> None:
    assert _imported_by("from vllmtune.profile.loader import load_profile; load_profile('preset:all-levers')") == []


def test_a_cold_render_keeps_did_you_mean_and_the_plugin_loader_out() -> None:
    # the whole fast path (console entry, plan, renderer), not only the loader
    code = (
        "import io, os, sys; os.environ['VLLMTUNE_NO_CACHE'] = '1'; from vllmtune.entry import main; "
        "sys.stdout = io.StringIO(); main(['render', 'preset:all-levers', '-t', 'docker']); sys.stdout = sys.__stdout__"
    )
    found = _imported_by(code)
    assert [m for m in found if m in ("pydantic.plugin._loader", "importlib.metadata", "email", "difflib")] == []


def test_the_probe_sees_those_imports() -> None:
    # the same probe reports them once something does import them
    code = "import difflib, importlib.metadata, pydantic.plugin._loader"
    assert _imported_by(code) == list(KEPT_OUT)


def test_the_real_plugin_loader_is_back_after_the_profile_models_build() -> None:
    code = (
        "from vllmtune.profile.loader import load_profile; load_profile('preset:baseline'); "
        "import pydantic; M = type('M', (pydantic.BaseModel,), {'__annotations__': {'x': int}}); M(x=1)"
    )
    assert _imported_by(code) == [m for m in KEPT_OUT if m != "difflib"]


def test_the_stand_in_gives_what_the_real_loader_gives_with_plugins_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic.plugin import _loader

    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    monkeypatch.delitem(sys.modules, build._PLUGIN_LOADER)
    stand_in = build._plugin_loader_stand_in()
    try:
        assert tuple(stand_in.get_plugins()) == tuple(_loader.get_plugins()) == ()
        # any other name: the real loader takes its place
        assert stand_in.PYDANTIC_ENTRY_POINT_GROUP == _loader.PYDANTIC_ENTRY_POINT_GROUP
        assert sys.modules[build._PLUGIN_LOADER] is not stand_in
    finally:
        sys.modules[build._PLUGIN_LOADER] = _loader


def test_build_models_builds_every_nested_model_innermost_first() -> None:
    # A fresh interpreter: importing the models builds nothing (defer_build), so the recording
    # sees every build build_models makes.
    code = """
import json
from pydantic._internal import _model_construction
order = []
real = _model_construction.complete_model_class
def recording(cls, *args, **kwargs):
    order.append(cls.__name__)
    return real(cls, *args, **kwargs)
_model_construction.complete_model_class = recording
from vllmtune.profile import build
from vllmtune.profile.base import Strict
from vllmtune.profile.models import Profile
assert order == [], order
build.build_models(Profile)
first = list(order)
build.build_models(Profile)
every = [c.__name__ for c in Strict.__subclasses__()]
print(json.dumps({"order": first, "again": order[len(first):], "every": every}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    order, every = got["order"], got["every"]
    assert sorted(order) == sorted(every)  # each model once, all of them
    assert order[-1] == "Profile"
    assert order.index("SecretKeyRef") < order.index("SecretRef") < order.index("ServerSection")
    assert order.index("Toleration") < order.index("KubernetesDeploy") < order.index("DeploySection")
    assert got["again"] == []  # built models are not built again


def test_building_the_models_never_compiles_tokenize_for_a_builtin_default_factory() -> None:
    # Field(default_factory=list): pydantic's signature check of a builtin class would tokenize
    # its text signature (compiling tokenize's big regular expression); build_models answers it.
    code = (
        "import tokenize; from vllmtune.profile.loader import load_profile; load_profile('preset:all-levers'); "
        "from vllmtune.profile.models import ServerSection; "
        "print(tokenize._compile.cache_info().currsize, ServerSection.model_fields['env'].default_factory is dict, "
        "ServerSection().env == {} and ServerSection().env is not ServerSection().env)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "0 True True\n"), r.stderr


def test_a_builtin_default_factory_still_gives_a_fresh_value_each_time() -> None:
    # what pydantic's own signature check would have concluded: called without the data
    from pydantic._internal import _generate_schema

    real = _generate_schema.takes_validated_data_argument
    with build._builtin_factories_take_no_data():
        patched = _generate_schema.takes_validated_data_argument
        assert [patched(f) for f in (list, dict, set, tuple)] == [real(f) for f in (list, dict, set, tuple)]
        assert patched(lambda data: data) is real(lambda data: data) is True
    assert _generate_schema.takes_validated_data_argument is real


def test_presets_and_the_catalog_come_from_the_package_directory() -> None:
    package = Path(vllmtune.__file__).resolve().parent
    assert loader.preset_names() == sorted(p.stem for p in (package / "presets").glob("*.yaml"))
    assert loader.preset_text("baseline") == (package / "presets" / "baseline.yaml").read_text("utf-8")
    assert pkgdata.read_text("flags", "catalog.json") == (package / "flags" / "catalog.json").read_text("utf-8")
