"""Fixtures for the add-on tests: the built extension zip installed into a throw-away Blender user folder.

bpy 4.5 hangs at exit when anything stays registered, so every test ends by stopping the backend and a
session-level finaliser disables the extension (unregister) and checks that nothing is left behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from addon_helpers import FAKE_BACKEND, PKG, REPO, leftovers  # noqa: E402



@pytest.fixture(scope="session")
def bpy_mod():
    bpy = pytest.importorskip("bpy")
    return bpy


@pytest.fixture(scope="session")
def ext_zip(tmp_path_factory):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    return build_extension.build(tmp_path_factory.mktemp("dist"))


def install_zip(bpy, zip_path) -> None:
    res = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                   enable_on_install=True)
    assert res == {'FINISHED'}


@pytest.fixture(scope="module")
def addon(bpy_mod, ext_zip):
    """The installed and enabled extension's top-level module. Enabled per test module and disabled after it,
    so that other test folders (which register parts of remomask_addon themselves) never meet it."""
    import addon_utils
    bpy = bpy_mod
    if PKG not in bpy.context.preferences.addons:
        if PKG in sys.modules or _installed(bpy):
            addon_utils.enable(PKG, default_set=True)
        else:
            install_zip(bpy, ext_zip)
    assert PKG in bpy.context.preferences.addons
    yield sys.modules[PKG]
    if PKG in bpy.context.preferences.addons:
        addon_utils.disable(PKG, default_set=True)
    assert not leftovers(bpy)


def _installed(bpy) -> bool:
    path = bpy.utils.user_resource('EXTENSIONS', path="user_default")
    return os.path.isfile(os.path.join(path, "remomask", "blender_manifest.toml"))


@pytest.fixture
def fresh(addon, bpy_mod, tmp_path):
    """Empty scene, preferences pointing at the fake backend, and the backend stopped afterwards."""
    bpy = bpy_mod
    bpy.ops.wm.read_homefile(use_empty=True)
    mod = sys.modules[PKG]
    prefs = bpy.context.preferences.addons[PKG].preferences
    models = tmp_path / "models"
    models.mkdir()
    prefs.backend_python = sys.executable
    prefs.models_dir = str(models)
    prefs.project_dir = str(REPO)
    prefs.device = 'cpu'
    prefs.remote = ""
    mod.core.client.SERVER_ARGS_OVERRIDE = [str(FAKE_BACKEND)]
    os.environ.pop("FAKE_BACKEND_EXIT_ON_GENERATE", None)
    os.environ["FAKE_BACKEND_STEP_S"] = "0.02"
    yield mod
    mod.ops.session.stop_backend()
    mod.ops.session.remove_timer()
    mod.core.client.SERVER_ARGS_OVERRIDE = None
    os.environ.pop("FAKE_BACKEND_EXIT_ON_GENERATE", None)




@pytest.fixture(autouse=True)
def _stop_every_backend():
    """After every test: no backend process may outlive it (whichever copy of client.py started it)."""
    yield
    for name, m in list(sys.modules.items()):
        if (name == PKG + ".core.client" or name.startswith("remomask_client")) and hasattr(m, "stop_all"):
            m.stop_all()
            assert not [c for c in m._ALL_CLIENTS if c.alive], f"backend still running ({name})"
