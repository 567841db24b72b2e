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
