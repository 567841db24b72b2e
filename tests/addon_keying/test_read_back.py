"""Armature -> motion (remomask_addon.blender.read_back): keying a motion and reading it back gives its joints."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import motion_to_armature, read_back  # noqa: E402


def _keyed(motion, scene_fps):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = scene_fps, 1.0
    arm, _ = motion_to_armature.import_motion(bpy.context, motion)
    return scene, arm


@pytest.mark.parametrize("scene_fps, tol", [(20, 0.002), (30, 0.01)])
def test_keyed_motion_reads_back_within_2_mm(bpy_clean, motion_factory, scene_fps, tol):
    """At 20 fps the keys are the motion's samples: within 2 mm (measured: < 0.001 mm). At 30 fps keying itself
    resamples the rotations (slerp between the 20 fps samples), so the 20 fps samples that fall between two 30 fps
    keys are interpolations of interpolations: within 1 cm on this fast random motion (measured 8 mm)."""
    motion = motion_factory(T=40, seed=3)
    scene, arm = _keyed(motion, scene_fps)
    scene.frame_set(7)
    joints = read_back.armature_joints(arm, scene=scene)
    # keying at 30 fps ends at the last whole scene frame inside the motion (58 frames = 1.933 s of 1.95 s), so
    # the read-back has every 20 fps sample up to there: 40 at 20 fps, 39 at 30 fps
    n = 40 if scene_fps == 20 else 39
    assert joints.shape == (n, 22, 3) and joints.dtype == np.float32
    want = motion["joints"][:n] - motion["joints"][0, 0] + joints[0, 0]  # the take may be placed elsewhere
    err = np.linalg.norm(joints - want, axis=-1)
    assert err.max() < tol, err.max()
    assert scene.frame_current == 7  # the scene is left where it was


def test_other_rigs_need_a_bone_map(bpy_clean, motion_factory):
    scene, arm = _keyed(motion_factory(T=10), 20)
    with pytest.raises(read_back.ReadBackError, match="no bone for left_hip \\(mixamorig:LeftUpLeg\\)"):
        read_back.armature_joints(arm, scene=scene, bone_map={"left_hip": "mixamorig:LeftUpLeg"})
    with pytest.raises(read_back.ReadBackError, match="empty frame range"):
        read_back.armature_joints(arm, scene=scene, frame_range=(10, 5))
    assert read_back.sample_frames(1, 31, 30.0).tolist() == [1.0 + 1.5 * k for k in range(21)]
