"""Planted feet on the keyed result (issue #15 item 5): a grounded walk keyed on the SMPL armature, and retargeted
onto Mixamo rigs with other leg proportions with foot locking on (the default) and off. Measures: the lowest foot
joint (never more than 1 cm under the floor) and the contact skate of ``smpl_fitting.ground_metrics`` (the
project's measure, corpus level ~7 cm/s), also on the source's own contact frames, where locking must beat the
unlocked retarget."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
synthetic = pytest.importorskip("backend.synthetic")

from remomask_addon.blender import motion_to_armature  # noqa: E402
from remomask_addon.core import coords, foot_lock  # noqa: E402
from smpl_fitting import fit_motion  # noqa: E402
from smpl_fitting import ground_metrics as gm  # noqa: E402
from tests.retarget import rigs  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.torch]  # the walk is fitted by smpl_fitting (torch)

CORPUS_SKATE = 0.07     # m/s, the corpus's level (bench/quality.py)
SMPL_FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")          # joints 7, 8, 10, 11
MIXAMO_FEET = ("mixamorig:LeftFoot", "mixamorig:RightFoot", "mixamorig:LeftToeBase", "mixamorig:RightToeBase")


@pytest.fixture(scope="module")
def walk():
    joints = synthetic.generate_clip("walk", 100, direction="forward").joints.astype(float)
    fit = fit_motion(joints)                                   # grounded (the backend's default)
    motion = dict(joints=joints.astype(np.float32), fps=20.0, prompt="a person walks forward", seed=0,
                  retrieved=[], **fit.as_npz_fields())
    motion.pop("fit_model", None)
    return motion


@pytest.fixture
def scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps = 20
    yield sc
    bpy.ops.wm.read_homefile(use_empty=True)


def feet_yup(scene, arm, names, n):
    """(n, 22, 3) y-up array with the four foot joints (7, 8, 10, 11) filled from the bones' heads, relative to
    the armature object's floor."""
    out = np.zeros((n, 22, 3))
    for k in range(n):
        scene.frame_set(scene.frame_start + k)
        for i, b in zip((7, 8, 10, 11), names):
            out[k, i] = coords.points_to_yup(np.array(arm.matrix_world @ arm.pose.bones[b].head))
    out[..., 1] -= arm.matrix_world.translation.z
    return out


def skate_on(mask_src, joints):
    """Mean horizontal toe speed (m/s) on the steps where the source's toes are within 5 cm of the floor."""
    out = []
    for k, toe in enumerate((10, 11)):
        low = mask_src[:, k]
        step = np.linalg.norm(np.diff(joints[:, toe][:, [0, 2]], axis=0), axis=-1) * 20.0
        out.append(step[low[1:] & low[:-1]])
    return float(np.concatenate(out).mean())


def odd_legs_rig(name):
    """A Mixamo-named rig with 1.4x thighs, 0.9x shins and hips 1.6x wider than the SMPL template."""
    J = rigs.target_joints(leg_scale=1.0, arm_scale=0.8)
    for hip, knee, ankle, toe in ((1, 4, 7, 10), (2, 5, 8, 11)):
        J[hip, 0] *= 1.6
        thigh, shin = J[knee] - J[hip], J[ankle] - J[knee]
        J[knee] = J[hip] + 1.4 * thigh
        d = J[knee] + 0.9 * shin - J[ankle]
        J[ankle] += d
        J[toe] += d
    J[:, 2] -= min(J[7, 2], J[10, 2])
    return rigs.build_armature(bpy, name, rigs.mixamo_bones(J), rotation_mode="XYZ")


def test_smpl_armature_feet_are_planted(scene, walk):
    keyed = motion_to_armature.key_motions(scene, [walk], with_body=False)
    n = len(walk["joints"])
    j = feet_yup(scene, keyed.armature, SMPL_FEET, n)
    assert gm.lowest_foot(j) > -0.01
    assert gm.contact_skate(j) < CORPUS_SKATE


def test_retargeted_mixamo_feet_are_planted(scene, walk):
    n = len(walk["joints"])
    rig = rigs.build_armature(bpy, "Mixamo125", rigs.mixamo_bones(rigs.target_joints(leg_scale=1.25)),
                              rotation_mode="XYZ")
    motion_to_armature.key_motions(scene, [walk], armature=rig)            # lock_feet on by default
    j = feet_yup(scene, rig, MIXAMO_FEET, n)
    assert gm.lowest_foot(j) > -0.01
    assert gm.contact_skate(j) < CORPUS_SKATE


def test_locking_stops_the_slide_of_other_leg_proportions(scene, walk):
    n = len(walk["joints"])
    src = motion_to_armature.key_motions(scene, [walk], with_body=False).armature
    s = feet_yup(scene, src, SMPL_FEET, n)
    src_low = s[:, [10, 11], 1] < 0.05                                     # the source's toes on the floor
    results = {}
    for lock in (True, False):
        rig = odd_legs_rig(f"Odd{lock}")
        motion_to_armature.key_motions(scene, [walk], armature=rig, lock_feet=lock)
        results[lock] = feet_yup(scene, rig, MIXAMO_FEET, n)
    on, off = results[True], results[False]
    for j in (on, off):
        assert gm.lowest_foot(j) > -0.01
    skate_on_src = {k: skate_on(src_low, v) for k, v in results.items()}
    print(f"\nskate on the source's contact frames (cm/s): source {100 * skate_on(src_low, s):.1f}, "
          f"locked {100 * skate_on_src[True]:.1f}, unlocked {100 * skate_on_src[False]:.1f}; "
          f"project measure: locked {100 * gm.contact_skate(on):.1f}, unlocked {100 * gm.contact_skate(off):.1f}")
    assert skate_on_src[True] < CORPUS_SKATE
    assert skate_on_src[False] > 1.5 * skate_on_src[True]
    # where the source's ankles are planted (low and slow), the locked rig's ankles do not move at all
    pos = coords.points_to_zup(s[:, [7, 8]])
    contacts = foot_lock.detect_contacts(pos, pos[:, :, 2].min(axis=0), 0.0, fps=20.0)
    speed = np.linalg.norm(np.diff(coords.points_to_zup(on[:, [7, 8]])[..., :2], axis=0), axis=-1) * 20.0
    planted = contacts[1:] & contacts[:-1]
    assert planted.sum() > 20
    assert speed[planted].mean() < 0.01


def rest_heights(arm, names):
    """Rest heights (4,) of the bones' heads above the armature object's floor (z-up)."""
    mw = arm.matrix_world
    return np.array([(mw @ arm.data.bones[b].head_local).z - mw.translation.z for b in names])


def lowest_offset(j, rest):
    """(F,) height of the lowest foot joint (7, 10, 8, 11) above its own rest height (z-up metres)."""
    z = j[:, [7, 10, 8, 11], 1]
    return (z - rest[None]).min(axis=1)


@pytest.mark.parametrize("kind, lock", [("smpl", True), ("mixamo125", True), ("mixamo125", False),
                                        ("odd_legs", True), ("odd_legs", False)])
def test_feet_in_contact_stand_at_the_sources_height(scene, walk, kind, lock):
    """Where the source has a foot planted, the target's lowest foot joint (ankle or toe head, the joints the SMPL fit
    grounds) stands as high above its rest height (its floor) as the source's does, within 1 cm; the toe bones keep
    their rest angle to the foot, so their tails (toe tips) stay out of the floor too. Before the fix the retarget
    stood the toe tips on the floor (SMPL's toe tail points 24 degrees down) and the toe joints 3.6 cm above it."""
    n = len(walk["joints"])
    src = motion_to_armature.key_motions(scene, [walk], with_body=False).armature
    s = feet_yup(scene, src, SMPL_FEET, n)
    s_rest = rest_heights(src, ("left_ankle", "left_foot", "right_ankle", "right_foot"))
    if kind == "smpl":              # keyed directly (no retarget, no foot lock)
        rig, names = src, SMPL_FEET
    else:
        rig = (rigs.build_armature(bpy, "M125", rigs.mixamo_bones(rigs.target_joints(leg_scale=1.25)),
                                   rotation_mode="XYZ") if kind == "mixamo125" else odd_legs_rig("Odd"))
        names = MIXAMO_FEET
        motion_to_armature.key_motions(scene, [walk], armature=rig, lock_feet=lock)
    j = feet_yup(scene, rig, names, n)
    rest = rest_heights(rig, ("mixamorig:LeftFoot", "mixamorig:LeftToeBase", "mixamorig:RightFoot",
                              "mixamorig:RightToeBase") if names is MIXAMO_FEET else
                        ("left_ankle", "left_foot", "right_ankle", "right_foot"))
    pos = coords.points_to_zup(s[:, [7, 10, 8, 11]])
    planted = foot_lock.detect_contacts(pos, s_rest, 0.0, fps=20.0).any(axis=1)
    assert planted.sum() > 60
    d = lowest_offset(j, rest)[planted] - lowest_offset(s, s_rest)[planted]
    print(f"\n{kind} lock={lock}: lowest foot joint vs the source's on {planted.sum()} planted frames: "
          f"mean {100 * d.mean():.2f} cm, worst {100 * np.abs(d).max():.2f} cm")
    assert np.abs(d).max() < 0.01
    if names is MIXAMO_FEET:
        # the toe tips (ToeBase tails, rest height 0) on planted frames: not under the floor (1 cm)
        tips = np.empty((n, 2))
        for k in range(n):
            scene.frame_set(scene.frame_start + k)
            for i, b in enumerate(("mixamorig:LeftToeBase", "mixamorig:RightToeBase")):
                tips[k, i] = (rig.matrix_world @ rig.pose.bones[b].tail).z - rig.matrix_world.translation.z
        print(f"toe tips on planted frames: lowest {100 * tips[planted].min():.2f} cm")
        assert tips[planted].min() > -0.01
