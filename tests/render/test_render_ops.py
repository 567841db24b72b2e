"""The Render & Export panel's operators, headless (background mode renders synchronously)."""

from __future__ import annotations

import os

import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.blender import motion_to_armature  # noqa: E402
from remomask_addon.ui import panels  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite


class RecordingLayout:
    """Stands in for UILayout: records the props and operators a panel draws."""

    def __init__(self, log=None):
        self.log = [] if log is None else log

    def column(self, **kw):
        return RecordingLayout(self.log)

    row = column

    def prop(self, data, name, **kw):
        assert hasattr(data, name), name
        self.log.append(("prop", name))

    def operator(self, idname, **kw):
        self.log.append(("operator", idname))


@pytest.fixture
def registered(tmp_path):
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=16))
    bpy.context.view_layer.objects.active = arm
    s = scene.remomask_render
    s.output = str(tmp_path) + os.sep
    s.resolution = "360p"
    yield scene, arm, s
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()
    assert not hasattr(bpy.types.Scene, "remomask_render")
    assert not hasattr(bpy.types, "REMOMASK_OT_render")


def test_render_operator_writes_the_sequence_still(registered, tmp_path):
    scene, arm, s = registered
    s.mode = "sequence"
    s.sequence_count = 3
    scene.render.resolution_percentage = 100
    assert bpy.ops.remomask.render() == {"FINISHED"}
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith("_sequence.png")
    # a second render into the same path asks first; without confirmation the file is kept
    before = (tmp_path / files[0]).stat().st_mtime_ns
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.remomask.render("EXEC_DEFAULT")
    assert (tmp_path / files[0]).stat().st_mtime_ns == before
    assert bpy.ops.remomask.render("EXEC_DEFAULT", overwrite=True) == {"FINISHED"}


def test_export_operator_and_errors(registered, tmp_path):
    scene, arm, s = registered
    s.export_format = ".bvh"
    assert bpy.ops.remomask.export() == {"FINISHED"}
    assert [f for f in os.listdir(tmp_path) if f.endswith(".bvh")]
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="Select an armature"):
        bpy.ops.remomask.export()


def test_unsaved_blend_with_relative_output_is_refused(registered):
    scene, arm, s = registered
    s.output = "//renders/"
    with pytest.raises(RuntimeError, match="Save the .blend file first"):
        bpy.ops.remomask.render()


def test_panel_draws_every_setting():
    layout = RecordingLayout()
    remomask_addon.register()
    try:
        panel = type("P", (), {"layout": layout})()
        panels.REMOMASK_PT_render.draw(panel, bpy.context)
    finally:
        remomask_addon.unregister()
    names = {n for kind, n in layout.log if kind == "prop"}
    assert {"mode", "quality", "resolution", "camera", "ground", "caption", "include_scene", "output",
            "export_format"} <= names
    assert ("operator", "remomask.render") in layout.log and ("operator", "remomask.export") in layout.log
