"""The built extension zip: contents, install into bpy, enable / disable / re-enable with nothing left over."""

from __future__ import annotations

import sys
import tomllib
import zipfile

import pytest

from addon_helpers import PKG, REPO, leftovers, scene_snapshot

pytestmark = pytest.mark.blender


def test_zip_holds_only_the_addon(ext_zip):
    with zipfile.ZipFile(ext_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    src = REPO / "remomask_addon"
    expected = {p.relative_to(src).as_posix() for p in src.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}
    assert "__init__.py" in expected and "core/client.py" in expected
    assert expected <= names
    # besides the add-on: its manifest and the backend wheel (plain data for 'Set up backend', not a manifest wheel)
    import backend
    wheel = f"backend_dist/remomask_blender-{backend.__version__}-py3-none-any.whl"
    assert names - expected == {"blender_manifest.toml", wheel}, names - expected
    assert "wheels" not in manifest
    assert manifest["id"] == "remomask" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"files", "network"}
    # never torch in the add-on
    with zipfile.ZipFile(ext_zip) as zf:
        for n in names:
            if n.endswith(".py"):
                src = zf.read(n).decode()
                assert "import torch" not in src and "from torch" not in src, n


def test_enable_disable_reenable(addon, bpy_mod):
    import addon_utils
    bpy = bpy_mod
    assert PKG in bpy.context.preferences.addons
    assert hasattr(bpy.types, "REMOMASK_OT_generate") and hasattr(bpy.types.Scene, "remomask")
    assert bpy.ops.remomask.new_seed.poll() in (True, False)   # operator exists
    atexit_before = sys.modules[PKG].core.client.stop_all
    sys.modules[PKG + ".ops.session"].ensure_timer()
    # the leftover check sees what an enabled add-on holds
    assert {"Scene.remomask", "handler load_pre", "timer", "REMOMASK_OT_generate"} <= set(leftovers(bpy))
    addon_utils.disable(PKG, default_set=True)
    assert PKG not in bpy.context.preferences.addons
    assert leftovers(bpy) == []
    assert "generate" not in dir(bpy.ops.remomask)
    mod = addon_utils.enable(PKG, default_set=True)
    assert mod is not None and PKG in bpy.context.preferences.addons
    assert hasattr(bpy.types, "REMOMASK_PT_generate") and hasattr(bpy.types.Scene, "remomask")
    # the other parts of the add-on are registered with it
    assert hasattr(bpy.types.Scene, "remomask_render") and hasattr(bpy.types.Scene, "remomask_retarget")
    assert "retarget" in dir(bpy.ops.remomask) and "render" in dir(bpy.ops.remomask)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.remomask.prompt = "a person jumps"
    assert bpy.context.scene.remomask.prompt == "a person jumps"
    assert callable(atexit_before)


def test_disable_stops_a_running_backend(addon, bpy_mod, fresh):
    import addon_utils
    bpy = bpy_mod
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    proc = fresh.ops.session._CLIENT._proc
    assert proc.poll() is None
    fresh.ops.session.ensure_timer()
    addon_utils.disable(PKG, default_set=True)
    try:
        assert proc.poll() is not None, "backend still running after disable"
        assert leftovers(bpy) == []
    finally:
        addon_utils.enable(PKG, default_set=True)


def test_user_dir_is_the_extension_user_path(addon, bpy_mod):
    bpy = bpy_mod
    mod = sys.modules[PKG]
    p = mod.ui.preferences.user_dir(create=True)
    assert p.is_dir()
    assert str(p) == bpy.utils.extension_path_user(PKG)


def test_one_ordered_tuple_registers_every_class(addon, bpy_mod):
    """__init__.classes() is the add-on's one registration list: every operator, panel, property group, list and
    preferences class defined in ops/ and ui/ is in it once, property groups first, panels last (a sub-panel
    after its parent)."""
    bpy = bpy_mod
    kinds = (bpy.types.PropertyGroup, bpy.types.AddonPreferences, bpy.types.UIList, bpy.types.Operator,
             bpy.types.Panel)
    classes = sys.modules[PKG].classes()
    defined = {v for name, m in list(sys.modules.items()) if name.startswith((PKG + ".ops.", PKG + ".ui."))
               for v in vars(m).values()
               if isinstance(v, type) and issubclass(v, kinds) and v.__module__ == name}
    assert len(classes) == len(set(classes)) and set(classes) == defined
    rank = [next(i for i, k in enumerate(kinds) if issubclass(c, k)) for c in classes]
    assert rank == sorted(rank), [c.__name__ for c in classes]
    names = [c.__name__ for c in classes]
    for c in classes:
        parent = getattr(c, "bl_parent_id", None)
        if parent:
            assert names.index(parent) < names.index(c.__name__)
    assert [c.__name__ for c in classes if not c.is_registered] == []


def test_check_backend_is_one_line_and_says_when_the_backend_is_older(addon, bpy_mod, fresh, monkeypatch):
    """Issue 13 items 2 and 3 through hello: the line names device, torch, GPU use and the model; a backend older
    than the add-on is an error that says to press Set up backend."""
    bpy = bpy_mod
    version = fresh.core.backend_setup.addon_version()
    monkeypatch.setenv("FAKE_BACKEND_VERSION", version)
    monkeypatch.setenv("FAKE_BACKEND_DEVICE", "cuda:0")
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    status = bpy.context.scene.remomask.status
    assert status == f"Backend {version} (protocol 1) on cuda:0, torch None, GPU used: yes; model: fake (models)"
    fresh.ops.session.stop_backend()
    monkeypatch.setenv("FAKE_BACKEND_VERSION", "0.0.5")
    monkeypatch.setenv("FAKE_BACKEND_DEVICE", "cpu")
    with pytest.raises(RuntimeError, match=f"Backend 0.0.5 is older than the add-on {version}: press Set up "
                                           "backend to update"):
        bpy.ops.remomask.check_backend(synchronous=True, timeout=20)
    assert bpy.context.scene.remomask.status_is_error and "GPU used: no" in bpy.context.scene.remomask.status


def test_the_set_up_venv_gives_the_starter_and_refuses_an_older_backend(addon, bpy_mod, fresh):
    """Issue 13 items 1 and 3 through the record Set up backend writes: with no checkout and no model folder the
    starter installed in the venv is used; a recorded backend older than the add-on stops Generate with the
    update message, before anything is started or changed."""
    import json
    import shutil

    bpy = bpy_mod
    bs = fresh.core.backend_setup
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.backend_python, prefs.project_dir, prefs.models_dir = "", "", ""
    venv = fresh.ui.preferences.user_dir(create=True) / "venv"
    py = bs.venv_python(venv)
    try:
        py.parent.mkdir(parents=True)
        py.write_text("")
        starter = venv / "lib" / "site-packages" / "backend" / "starter"
        starter.mkdir(parents=True)
        rec = {"version": bs.addon_version(), "starter": str(starter), "torch": "2.13.0+cpu"}
        (venv / bs.RECORD_NAME).write_text(json.dumps(rec))
        s = fresh.ui.preferences.settings()
        assert s.python == str(py) and s.models_dir == str(starter) and s.problem() is None
        (venv / bs.RECORD_NAME).write_text(json.dumps({**rec, "version": "0.0.5"}))
        before = scene_snapshot(bpy)
        bpy.context.scene.remomask.prompt = "a person jumps"
        with pytest.raises(RuntimeError, match="Backend 0.0.5 is older than the add-on .*: press Set up backend"):
            bpy.ops.remomask.generate()
        assert scene_snapshot(bpy) == before and fresh.ops.session._CLIENT is None
    finally:
        shutil.rmtree(venv, ignore_errors=True)
