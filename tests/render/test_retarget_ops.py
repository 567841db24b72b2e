"""The Retarget panel's operator, headless: a new action on the target, one undo step, clear errors."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.blender import motion_to_armature  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402
from tests.retarget.rigs import build_armature, mixamo_bones, target_joints  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite


@pytest.fixture
def scene_with_rigs():
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    source, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=20))
    target = build_armature(bpy, "Hero", mixamo_bones(target_joints(leg_scale=1.2)), location=(2.0, 0.0, 0.0))
    bpy.context.view_layer.objects.active = source
    yield scene, source, target
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()
    assert not hasattr(bpy.types.Scene, "remomask_retarget")


def test_retarget_operator_keys_the_target(scene_with_rigs):
    scene, source, target = scene_with_rigs
    s = scene.remomask_retarget
    s.target = target
    s.bone_map = "mixamo"
    assert bpy.ops.remomask.retarget() == {"FINISHED"}
    action = target.animation_data.action
    assert action is not None and action.name != source.animation_data.action.name
    # the hips moved along with the source
    scene.frame_set(1)
    a = target.pose.bones["mixamorig:Hips"].matrix.translation.copy()
    scene.frame_set(20)
    b = target.pose.bones["mixamorig:Hips"].matrix.translation.copy()
    assert (b - a).length > 0.1


def test_retarget_operator_errors_leave_the_target_alone(scene_with_rigs):
    scene, source, target = scene_with_rigs
    s = scene.remomask_retarget
    with pytest.raises(RuntimeError, match="Choose the target rig"):
        bpy.ops.remomask.retarget()
    s.target = target
    s.bone_map = "FILE"
    with pytest.raises(RuntimeError, match="bone-map JSON file"):
        bpy.ops.remomask.retarget()
    s.map_file = "/nonexistent/map.json"
    with pytest.raises(RuntimeError):
        bpy.ops.remomask.retarget()
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="Select the generated"):
        bpy.ops.remomask.retarget()
    assert target.animation_data is None or target.animation_data.action is None
