"""The Root Motion panel's operator, headless: one undoable operator that toggles a copy of the action on and off,
clear errors that change nothing, and the panel's draw() against a stand-in layout."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.blender import motion_to_armature  # noqa: E402
from remomask_addon.ui import rootline_panel  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def scene_arm():
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, action = motion_to_armature.import_motion(bpy.context, make_motion(T=30), with_mannequin=False)
    bpy.context.view_layer.objects.active = arm
    yield scene, arm, action
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()


def _pelvis_path(scene, arm):
    out = []
    for f in range(1, 31):
        scene.frame_set(f)
        out.append(tuple(arm.matrix_world @ arm.pose.bones["pelvis"].head))
    return np.array(out)


def test_operator_toggles_a_copy_and_back(scene_arm):
    scene, arm, action = scene_arm
    from remomask_addon.ops.root_motion import REMOMASK_OT_root_motion
    assert "UNDO" in REMOMASK_OT_root_motion.bl_options   # one undo step per press
    before = _pelvis_path(scene, arm)
    assert bpy.ops.remomask.root_motion(mode="IN_PLACE") == {"FINISHED"}
    in_place = arm.animation_data.action
    assert in_place != action and in_place["remomask_root_motion"] == "IN_PLACE"
    assert np.ptp(_pelvis_path(scene, arm)[:, :2], axis=0).max() < 1e-5
    # the other mode on a copy works from the original, not the copy
    assert bpy.ops.remomask.root_motion(mode="EXTRACT") == {"FINISHED"}
    extracted = arm.animation_data.action
    assert extracted["remomask_root_source"] == action.name
    np.testing.assert_allclose(_pelvis_path(scene, arm), before, atol=1e-5)
    # pressed again: the original is back, both copies are kept
    assert bpy.ops.remomask.root_motion(mode="EXTRACT") == {"FINISHED"}
    assert arm.animation_data.action == action
    assert in_place.name in bpy.data.actions and extracted.name in bpy.data.actions
    np.testing.assert_allclose(_pelvis_path(scene, arm), before, atol=1e-6)


def test_operator_errors(scene_arm):
    scene, arm, action = scene_arm
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="Select the armature"):
        bpy.ops.remomask.root_motion(mode="EXTRACT")
    bpy.context.view_layer.objects.active = arm
    arm.animation_data.action = None
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="no active action"):
        bpy.ops.remomask.root_motion(mode="EXTRACT")
    assert len(bpy.data.actions) == n and "root" not in arm.data.bones


class _Layout:
    def __init__(self, log):
        self.log = log

    def row(self, **kw):
        return self

    def label(self, text="", **kw):
        self.log.append(("label", text))

    def operator(self, idname, **kw):
        mod, _, op = idname.partition(".")
        assert op in dir(getattr(bpy.ops, mod)), idname
        rec = type("Op", (), {})()
        self.log.append(("operator", idname, kw.get("depress"), rec))
        return rec


def test_panel_draws_the_state(scene_arm):
    scene, arm, action = scene_arm
    log = []
    panel = type("P", (), {"layout": _Layout(log)})()
    rootline_panel.REMOMASK_PT_root_motion.draw(panel, bpy.context)
    ops = [(e[3].mode, e[2]) for e in log if e[0] == "operator"]
    assert ops == [("IN_PLACE", False), ("EXTRACT", False)]
    bpy.ops.remomask.root_motion(mode="EXTRACT")
    log.clear()
    rootline_panel.REMOMASK_PT_root_motion.draw(panel, bpy.context)
    assert [(e[3].mode, e[2]) for e in log if e[0] == "operator"] == [("IN_PLACE", False), ("EXTRACT", True)]
    assert any("original" in e[1] for e in log if e[0] == "label")
