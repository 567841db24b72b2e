"""The built extension zip: contents, install into bpy, enable / disable / re-enable with nothing left over."""

from __future__ import annotations

import sys
import tomllib
import zipfile

import pytest

from addon_helpers import PKG, REPO, leftovers

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
    assert names - expected == {"blender_manifest.toml"}, names - expected
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
    sys.modules[PKG + ".operators"].ensure_timer()
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
    proc = fresh.operators._CLIENT._proc
    assert proc.poll() is None
    fresh.operators.ensure_timer()
    addon_utils.disable(PKG, default_set=True)
    try:
        assert proc.poll() is not None, "backend still running after disable"
        assert leftovers(bpy) == []
    finally:
        addon_utils.enable(PKG, default_set=True)


def test_user_dir_is_the_extension_user_path(addon, bpy_mod):
    bpy = bpy_mod
    mod = sys.modules[PKG]
    p = mod.preferences.user_dir(create=True)
    assert p.is_dir()
    assert str(p) == bpy.utils.extension_path_user(PKG)
