"""Root motion toggles in Blender (blender/root_motion.py): on the SMPL armature and on a retargeted Mixamo rig,
extraction leaves every joint where it was (evaluated per frame), in place removes the travel and keeps the
pose, the original action is kept bit-identical, and the result exports with its root bone."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import anim_compat, motion_to_armature, retarget  # noqa: E402
from remomask_addon.blender import root_motion as brm  # noqa: E402
from remomask_addon.core import coords, motion_io, smpl_rig  # noqa: E402
from remomask_addon.core import root_motion as rm  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402
from tests.retarget import rigs  # noqa: E402

pytestmark = pytest.mark.blender

T = 60


@pytest.fixture
def scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps = 20
    sc.frame_start, sc.frame_end = 1, T
    yield sc
    bpy.ops.wm.read_homefile(use_empty=True)


def heads(scene, arm, names, frames):
    """World positions (F, n, 3) of the bones' heads and tails, evaluated frame by frame."""
    out = np.empty((len(frames), 2 * len(names), 3))
    for k, f in enumerate(frames):
        scene.frame_set(int(f))
        ev = arm.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = ev.matrix_world
        for i, n in enumerate(names):
            out[k, 2 * i] = tuple(mw @ ev.pose.bones[n].head)
            out[k, 2 * i + 1] = tuple(mw @ ev.pose.bones[n].tail)
    return out


def keys_of(action):
    return {(fc.data_path, fc.array_index): [tuple(k.co) + tuple(k.handle_left) + tuple(k.handle_right)
                                              + (k.interpolation,) for k in fc.keyframe_points]
            for fc in anim_compat.fcurves(action)}


def _smpl(scene, seed=2):
    m = motion_io.validate_motion(make_motion(T=T, seed=seed, speed=1.3, turn=0.7))
    arm, action = motion_to_armature.import_motion(bpy.context, m, with_mannequin=False, start_frame=1)
    return arm, action, m


def test_extract_on_the_smpl_armature_keeps_every_joint(scene):
    arm, action, m = _smpl(scene)
    names = list(smpl_rig.SMPL_JOINT_NAMES)
    frames = np.arange(1, T + 1)
    before = heads(scene, arm, names, frames)
    original = keys_of(action)
    copy = brm.apply_root_motion(arm, rm.EXTRACT, scene=scene)

    assert arm.animation_data.action == copy and copy != action
    assert copy["remomask_root_motion"] == rm.EXTRACT and copy["remomask_root_source"] == action.name
    assert arm.data.bones["pelvis"].parent.name == "root"
    after = heads(scene, arm, names, frames)
    assert np.abs(after - before).max() < 1e-3
    # against the motion's own joints (y-up FK -> z-up): within 1 mm
    fk, _ = smpl_rig.forward_kinematics(m["rest_joints"], m["poses"], m["trans"])
    np.testing.assert_allclose(after[:, 0::2][:, :22], coords.points_to_zup(fk[:, :22]), atol=1e-3)
    # the root carries the travel on the floor, the pelvis stays near above it
    root = heads(scene, arm, ["root"], frames)[:, 0]
    np.testing.assert_allclose(root[:, 2], 0.0, atol=1e-5)
    travel = np.linalg.norm(root[-1, :2] - root[0, :2])
    assert travel > 1.5                                   # 3 s at 1.3 m/s on a curve
    assert np.linalg.norm(root[:, :2] - after[:, 0, :2], axis=-1).max() < 0.05
    # the original action is kept, key for key
    assert keys_of(action) == original and action.use_fake_user
    # unrelated bones keep their exact F-Curves in the copy
    copied = keys_of(copy)
    for key, val in original.items():
        if '"pelvis"' not in key[0]:
            assert copied[key] == val


def test_in_place_removes_the_travel_and_keeps_the_pose(scene):
    arm, action, _ = _smpl(scene, seed=4)
    names = list(smpl_rig.SMPL_JOINT_NAMES)
    frames = np.arange(1, T + 1)
    before = heads(scene, arm, names, frames)
    brm.apply_root_motion(arm, rm.IN_PLACE, scene=scene)
    after = heads(scene, arm, names, frames)
    pelvis = after[:, 0]
    np.testing.assert_allclose(pelvis[:, :2], np.broadcast_to(before[0, 0, :2], (T, 2)), atol=1e-5)
    np.testing.assert_allclose(pelvis[:, 2], before[:, 0, 2], atol=1e-5)        # height kept

    def rel(h):
        g = h[:, :1].copy()
        g[..., 2] = 0.0
        return h - g
    np.testing.assert_allclose(rel(after), rel(before), atol=1e-5)

    # toggling back: the original plays again, exactly as before
    src = brm.restore_source(arm)
    assert src == action and arm.animation_data.action == action
    np.testing.assert_allclose(heads(scene, arm, names, frames), before, atol=1e-6)


def _mixamo_retargeted(scene):
    src, _action, _m = _smpl(scene, seed=7)
    J = rigs.target_joints(leg_scale=1.25, arm_scale=0.8)
    tgt = rigs.build_armature(bpy, "MixamoRig", rigs.mixamo_bones(J), rotation_mode="XYZ")
    action = retarget.retarget_action(src, tgt, "mixamo", scene=scene)
    return tgt, action


def test_extract_on_a_retargeted_mixamo_rig(scene):
    tgt, action = _mixamo_retargeted(scene)
    names = [b.name for b in tgt.data.bones]
    frames = np.arange(1, T + 1)
    before = heads(scene, tgt, names, frames)
    copy = brm.apply_root_motion(tgt, rm.EXTRACT, scene=scene)
    assert copy["remomask_hips_bone"] == "mixamorig:Hips"
    after = heads(scene, tgt, names, frames)
    assert np.abs(after - before).max() < 1e-3
    root = heads(scene, tgt, ["root"], frames)[:, 0]
    assert np.linalg.norm(root[-1, :2] - root[0, :2]) > 1.5
    # in place on the same rig (from the original): the hips do not travel
    scene_action = brm.restore_source(tgt)
    assert scene_action == action
    brm.apply_root_motion(tgt, rm.IN_PLACE, scene=scene)
    hips = heads(scene, tgt, ["mixamorig:Hips"], frames)[:, 0]
    assert np.ptp(hips[:, 0]) < 1e-5 and np.ptp(hips[:, 1]) < 1e-5


def test_extracted_action_exports_with_its_root(scene, tmp_path):
    from remomask_addon.blender import export

    arm, _action, _m = _smpl(scene)
    brm.apply_root_motion(arm, rm.EXTRACT, scene=scene)
    bvh = export.export_armature(arm, str(tmp_path / "walk.bvh"), scene=scene)
    text = open(bvh).read()
    assert text.split("ROOT", 1)[1].split()[0] == "root"
    assert "JOINT pelvis" in text
    frames = int(text.split("Frames:")[1].split()[0])
    assert frames == T
    # the root channel moves: its first and last X/Y positions differ by the travel
    motion = text.split("Frame Time:")[1].splitlines()[1:]
    first, last = (np.array(motion[i].split()[:3], float) for i in (0, frames - 1))
    assert np.linalg.norm((last - first)[:2]) > 1.0


def test_errors_are_clear_and_change_nothing(scene):
    arm, action, _ = _smpl(scene)
    with pytest.raises(rm.RootMotionError, match="mode"):
        brm.apply_root_motion(arm, "SIDEWAYS", scene=scene)
    with pytest.raises(rm.RootMotionError, match="Select an armature"):
        brm.apply_root_motion(None, rm.IN_PLACE, scene=scene)
    copy = brm.apply_root_motion(arm, rm.IN_PLACE, scene=scene)
    n_actions = len(bpy.data.actions)
    with pytest.raises(rm.RootMotionError, match="already has root motion"):
        brm.apply_root_motion(arm, rm.EXTRACT, scene=scene)
    assert len(bpy.data.actions) == n_actions and arm.animation_data.action == copy
    assert "root" not in arm.data.bones
    # an action that moves no bone
    a2, s2 = anim_compat.new_action("rot only", arm)
    fc = anim_compat.new_fcurve(a2, s2, 'pose.bones["pelvis"].rotation_quaternion', 0, group_name="pelvis")
    anim_compat.write_keys(fc, [1, 2], [1.0, 1.0])
    with pytest.raises(rm.RootMotionError, match="no location keys"):
        brm.apply_root_motion(arm, rm.EXTRACT, action=a2, scene=scene)
    assert "root" not in arm.data.bones
    arm.animation_data.action = None
    with pytest.raises(rm.RootMotionError, match="no active action"):
        brm.apply_root_motion(arm, rm.IN_PLACE, scene=scene)
