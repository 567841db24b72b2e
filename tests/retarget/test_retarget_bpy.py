"""Retargeting a keyed SMPL motion onto procedural Mixamo (T-pose) and Rigify (A-pose) rigs."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import anim_compat, keying, motion_to_armature, retarget  # noqa: E402
from remomask_addon.core import bone_map, motion_io  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402
from tests.retarget import rigs  # noqa: E402

pytestmark = pytest.mark.blender

T = 60
# (SMPL bone, Mixamo bone, Rigify bone): limb segments whose directions must follow the source
DIRECTION_PAIRS = [
    ("left_shoulder", "mixamorig:LeftArm", "DEF-upper_arm.L"),
    ("right_shoulder", "mixamorig:RightArm", "DEF-upper_arm.R"),
    ("left_elbow", "mixamorig:LeftForeArm", "DEF-forearm.L"),
    ("right_elbow", "mixamorig:RightForeArm", "DEF-forearm.R"),
    ("left_hip", "mixamorig:LeftUpLeg", "DEF-thigh.L"),
    ("right_hip", "mixamorig:RightUpLeg", "DEF-thigh.R"),
    ("left_knee", "mixamorig:LeftLeg", "DEF-shin.L"),
    ("right_knee", "mixamorig:RightLeg", "DEF-shin.R"),
    ("neck", "mixamorig:Neck", "DEF-spine.004"),
    ("head", "mixamorig:Head", "DEF-spine.006"),
]
FEET = {"mixamo": ["mixamorig:LeftFoot", "mixamorig:RightFoot", "mixamorig:LeftToeBase", "mixamorig:RightToeBase"],
        "rigify": ["DEF-foot.L", "DEF-foot.R", "DEF-toe.L", "DEF-toe.R"]}
ROOT = {"mixamo": "mixamorig:Hips", "rigify": "DEF-spine"}


@pytest.fixture
def scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps = 20
    sc.frame_start, sc.frame_end = 1, T
    yield sc
    bpy.ops.wm.read_homefile(use_empty=True)


def _source(seed=3):
    m = motion_io.validate_motion(make_motion(T=T, seed=seed, speed=1.3, turn=0.5))
    arm, action = motion_to_armature.import_motion(bpy.context, m, with_mannequin=False, start_frame=1)
    return arm, action


def _mixamo(**kw):
    J = rigs.target_joints(leg_scale=1.25, arm_scale=0.8)
    arm = rigs.build_armature(bpy, "MixamoRig", rigs.mixamo_bones(J, **kw), rotation_mode="XYZ")
    arm.data.bones["mixamorig:Head"].use_inherit_rotation = False  # Blender then ignores the neck's turn
    return arm, 1.25


def _mixamo_cm():
    """An FBX-style Mixamo rig: bones in centimetres, object scale 0.01, turned 90 degrees about Z."""
    J = rigs.target_joints(leg_scale=0.9, arm_scale=1.1) * 100.0
    bones = [(n, h, t, p, r) for n, h, t, p, r in rigs.mixamo_bones(J / 100.0)]
    bones = [(n, h * 100.0, t * 100.0, p, r) for n, h, t, p, r in bones]
    arm = rigs.build_armature(bpy, "MixamoFBX", bones, rotation_mode="QUATERNION", location=(-1.0, 2.0, 0.0))
    arm.scale = (0.01, 0.01, 0.01)
    arm.rotation_euler = (0.0, 0.0, np.pi / 2)
    bpy.context.view_layer.update()
    return arm, 0.9


def _mixamo_back():
    """A Mixamo-named rig modelled facing +Y (its left side on -X): the motion must turn with it."""
    J = rigs.target_joints(leg_scale=1.25, arm_scale=0.8) * np.array([-1.0, -1.0, 1.0])
    bones = [(n, h, t * 1.0, p, r) for n, h, t, p, r in rigs.mixamo_bones(J)]
    # mixamo_bones adds toe/head offsets along -Y/+Z: turn the toe tips round as well
    fixed = []
    for n, h, t, p, r in bones:
        if "Toe" in n:
            h = np.array(h, dtype=float)
            t = np.array(t, dtype=float)
            t = h + (t - h) * np.array([-1.0, -1.0, 1.0])
            if n.endswith("Toe_End"):
                base = dict((b[0], b) for b in fixed)[n.replace("Toe_End", "ToeBase")]
                h = base[2]
                t = h + (base[2] - base[1]) * 0.5
        fixed.append((n, h, t, p, r))
    return rigs.build_armature(bpy, "MixamoBack", fixed, rotation_mode="XYZ"), 1.25


def _rigify():
    J = rigs.target_joints(leg_scale=1.1, arm_scale=0.9, arm_down_deg=45.0)
    arm = rigs.build_armature(bpy, "RigifyRig", rigs.rigify_bones(J), location=(1.5, 0.7, 0.0))
    arm.pose.bones["DEF-forearm.L"].rotation_mode = "AXIS_ANGLE"  # every rotation mode is keyed in kind
    arm.pose.bones["DEF-shin.R"].rotation_mode = "ZXY"
    return arm, 1.1


def _evaluate(arm, names, frames):
    """World heads and tails (F, n, 3) of pose bones, frame by frame."""
    heads = np.empty((len(frames), len(names), 3))
    tails = np.empty_like(heads)
    for k, f in enumerate(frames):
        bpy.context.scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        ev = arm.evaluated_get(dg)
        mw = ev.matrix_world
        for i, n in enumerate(names):
            pb = ev.pose.bones[n]
            heads[k, i] = tuple(mw @ pb.head)
            tails[k, i] = tuple(mw @ pb.tail)
    return heads, tails


def _angles_deg(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


@pytest.mark.parametrize("kind", ["mixamo", "rigify", "mixamo_fbx", "mixamo_back"])
def test_retarget_follows_source(scene, kind):
    src, src_action = _source()
    tgt, leg_ratio = {"mixamo": _mixamo, "rigify": _rigify, "mixamo_fbx": _mixamo_cm,
                      "mixamo_back": _mixamo_back}[kind]()
    preset = "rigify" if kind == "rigify" else "mixamo"
    n_actions = len(bpy.data.actions)
    action = retarget.retarget_action(src, tgt, preset)
    assert len(bpy.data.actions) == n_actions + 1
    assert tgt.animation_data.action == action and src.animation_data.action == src_action
    if anim_compat.has_slotted_actions():
        assert tgt.animation_data.action_slot == action.slots[0]
    assert tuple(action.frame_range) == (1.0, float(T))
    assert abs(action["remomask_root_scale"] - leg_ratio) < 1e-4
    fcs = anim_compat.fcurves(action)
    assert fcs and all(len(fc.keyframe_points) == T for fc in fcs)
    # unmapped bones are not keyed
    keyed = {fc.data_path.split('"')[1] for fc in fcs}
    assert keyed == set(bone_map.load_bone_map(preset).values())

    frames = range(1, T + 1)
    col = 1 if preset == "mixamo" else 2
    s_names = [p[0] for p in DIRECTION_PAIRS] + ["pelvis"]
    t_names = [p[col] for p in DIRECTION_PAIRS] + [ROOT[preset]]
    sh, st = _evaluate(src, s_names, frames)
    th, tt = _evaluate(tgt, t_names + FEET[preset], frames)
    # compare in the target object's own frame (the motion plays relative to the rig object)
    mw = np.array(tgt.matrix_world)
    rot = mw[:3, :3] / np.linalg.norm(mw[:3, :3], axis=0)
    th, tt = (th - mw[:3, 3]) @ rot, (tt - mw[:3, 3]) @ rot
    if kind == "mixamo_back":  # the rig faces +Y: turn it round to face -Y like the source
        th, tt = th * [-1.0, -1.0, 1.0], tt * [-1.0, -1.0, 1.0]
    ang = _angles_deg(st[:, :-1] - sh[:, :-1], tt[:, :len(DIRECTION_PAIRS)] - th[:, :len(DIRECTION_PAIRS)])
    assert ang.mean() < 10.0, ang.mean(axis=0)
    assert ang.mean() < 1.0 and ang.max() < 5.0, (ang.mean(), ang.max())  # in fact near exact
    # the source really moves its limbs (the check above is not trivially met at rest)
    rest_ang = _angles_deg(st[:, :-1] - sh[:, :-1], (st[:1, :-1] - sh[:1, :-1]))
    assert rest_ang.max() > 20.0

    # feet: never below the ground
    feet = np.concatenate([th[:, len(t_names):], tt[:, len(t_names):]], axis=1)
    assert feet[..., 2].min() > -0.02, feet[..., 2].min()
    # ... and on it where the source's feet are (snap_contacts): the lowest foot point touches z=0
    low = feet[..., 2].min(axis=1)
    assert np.median(np.abs(low)) < 0.05

    # root path: horizontal displacement scaled by the leg-length ratio
    sd = sh[:, -1, :2] - sh[0, -1, :2]
    td = th[:, len(DIRECTION_PAIRS), :2] - th[0, len(DIRECTION_PAIRS), :2]
    moving = np.linalg.norm(sd, axis=1) > 0.2
    assert moving.sum() > T // 2
    ratio = np.linalg.norm(td[moving], axis=1) / np.linalg.norm(sd[moving], axis=1)
    assert np.all(np.abs(ratio / leg_ratio - 1.0) < 0.05), ratio
    # and in the same direction
    assert _angles_deg(sd[moving], td[moving]).max() < 2.0


def test_auto_bone_map_finds_presets(scene):
    mix, _ = _mixamo()
    rig, _ = _rigify()
    for arm, preset in ((mix, "mixamo"), (rig, "rigify")):
        auto = retarget.auto_bone_map(arm)
        assert dict(auto) == dict(bone_map.load_bone_map(preset)), preset
        assert auto.unmapped == ("left_hand", "right_hand")
    # an SMPL armature maps onto itself
    src, _ = _source()
    assert dict(retarget.auto_bone_map(src)) == {n: n for n in src.data.bones.keys()}


def test_auto_map_ue_names(scene):
    J = rigs.target_joints()
    bones = [("pelvis", J[0], J[3], None, 0.0), ("spine_01", J[3], J[6], "pelvis", 0.0),
             ("spine_02", J[6], J[9], "spine_01", 0.0), ("spine_03", J[9], J[12], "spine_02", 0.0),
             ("neck_01", J[12], J[15], "spine_03", 0.0), ("head", J[15], J[15] + rigs.UP, "neck_01", 0.0)]
    for s, a, leg, c in (("l", rigs.L_ARM, rigs.L_LEG, 13), ("r", rigs.R_ARM, rigs.R_LEG, 14)):
        bones += [(f"clavicle_{s}", J[c], J[a[0]], "spine_03", 0.0),
                  (f"upperarm_{s}", J[a[0]], J[a[1]], f"clavicle_{s}", 0.0),
                  (f"upperarm_twist_01_{s}", J[a[0]], J[a[1]], f"upperarm_{s}", 0.0),
                  (f"lowerarm_{s}", J[a[1]], J[a[2]], f"upperarm_{s}", 0.0),
                  (f"hand_{s}", J[a[2]], J[a[3]], f"lowerarm_{s}", 0.0),
                  (f"thigh_{s}", J[leg[0]], J[leg[1]], "pelvis", 0.0),
                  (f"calf_{s}", J[leg[1]], J[leg[2]], f"thigh_{s}", 0.0),
                  (f"foot_{s}", J[leg[2]], J[leg[3]], f"calf_{s}", 0.0),
                  (f"ball_{s}", J[leg[3]], J[leg[3]] + rigs.TOE, f"foot_{s}", 0.0),
                  (f"ik_foot_{s}", J[leg[2]], J[leg[3]], None, 0.0)]
    arm = rigs.build_armature(bpy, "UE", bones)
    m = retarget.auto_bone_map(arm)
    assert m["pelvis"] == "pelvis" and m["spine1"] == "spine_01" and m["spine3"] == "spine_03"
    assert m["neck"] == "neck_01" and m["head"] == "head"
    assert m["left_shoulder"] == "upperarm_l" and m["right_elbow"] == "lowerarm_r"
    assert m["left_knee"] == "calf_l" and m["right_ankle"] == "foot_r" and m["left_foot"] == "ball_l"
    assert m["left_collar"] == "clavicle_l" and m["right_wrist"] == "hand_r"
    assert len(m) == 22


def test_existing_action_is_kept(scene):
    src, _ = _source()
    tgt, _ = _mixamo()
    first = retarget.retarget_action(src, tgt, "mixamo")
    fc = anim_compat.fcurves(first)[0]
    before = anim_compat.read_keys(fc)[1].copy()
    second = retarget.retarget_action(src, tgt, "mixamo", frame_range=(5, 20), keep_feet_on_ground=False)
    assert second != first and second.name != first.name
    assert first.name in bpy.data.actions and first.use_fake_user
    assert np.array_equal(anim_compat.read_keys(anim_compat.fcurves(first)[0])[1], before)
    assert tuple(second.frame_range) == (5.0, 20.0)
    assert tgt.animation_data.action == second
    assert bpy.context.scene.frame_current == 1  # the scene frame is put back after sampling


def _state():
    return (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures),
            bpy.context.scene.frame_current)


def test_bad_input_changes_nothing(scene, tmp_path):
    src, _ = _source()
    tgt, _ = _mixamo(skip=("mixamorig:LeftForeArm", "mixamorig:RightHand"))
    mesh = bpy.data.objects.new("NotARig", bpy.data.meshes.new("m"))
    bpy.context.scene.collection.objects.link(mesh)
    other, _ = _rigify()
    before = _state()
    with pytest.raises(retarget.RetargetError, match="unknown bone-map preset 'nope'.*mixamo"):
        retarget.retarget_action(src, tgt, "nope")
    with pytest.raises(retarget.RetargetError) as ei:
        retarget.retarget_action(src, tgt, "mixamo")
    assert "mixamorig:LeftForeArm" in str(ei.value) and "mixamorig:RightHand" in str(ei.value)
    with pytest.raises(retarget.RetargetError, match="not an armature"):
        retarget.retarget_action(src, mesh, "mixamo")
    with pytest.raises(retarget.RetargetError, match="not an armature"):
        retarget.auto_bone_map(mesh)
    with pytest.raises(retarget.RetargetError, match="lacks bones"):
        retarget.retarget_action(src, tgt, {"pelvis": "mixamorig:Hips", "no_such": "mixamorig:Spine"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"bones": {"pelvis": "a", "spine1": "a"}}')
    with pytest.raises(retarget.RetargetError, match="more than once"):
        retarget.retarget_action(src, tgt, str(bad))
    with pytest.raises(retarget.RetargetError, match="same armature"):
        retarget.retarget_action(src, src, "mixamo")
    with pytest.raises(retarget.RetargetError, match="has no action"):
        retarget.retarget_action(other, src, {"DEF-spine": "pelvis"})
    with pytest.raises(retarget.RetargetError, match="last frame before first"):
        retarget.retarget_action(src, other, "rigify", frame_range=(10, 5))
    assert _state() == before
    assert tgt.animation_data is None and other.animation_data is None


def test_static_source_with_frame_range(scene):
    """A source without an action: its current pose is retargeted over the given frames."""
    other, _ = _rigify()
    other.pose.bones["DEF-thigh.L"].rotation_quaternion = (0.9238795, 0.3826834, 0.0, 0.0)  # 45 deg
    tgt, _ = _mixamo()
    act = retarget.retarget_action(other, tgt, {"DEF-spine": "mixamorig:Hips", "DEF-thigh.L": "mixamorig:LeftUpLeg"},
                                   frame_range=(1, 3))
    assert tuple(act.frame_range) == (1.0, 3.0)
    sh, st = _evaluate(other, ["DEF-thigh.L"], [2])
    th, tt = _evaluate(tgt, ["mixamorig:LeftUpLeg"], [2])
    assert _angles_deg(st - sh, tt - th).max() < 0.5
    assert _angles_deg(st - sh, np.array([[[0.0, 0.0, -1.0]]])).max() > 30.0


def test_nla_source_and_constraint_warning(scene):
    """A source laid out on the NLA (no active action) is retargeted over all its strips; constraints on
    mapped target bones are reported on the action."""
    from remomask_addon.blender import batch

    src, a1 = _source(seed=4)
    a2 = keying.key_motion(src, motion_io.validate_motion(make_motion(T=30, seed=5)), start_frame=1)
    strips = batch.lay_out_nla(src, [a1, a2], blend_frames=5)
    assert src.animation_data.action is None
    end = int(round(max(s.frame_end for s in strips)))
    assert end > T
    tgt, _ = _mixamo()
    c = tgt.pose.bones["mixamorig:LeftLeg"].constraints.new("LIMIT_ROTATION")
    c.use_limit_x = True
    act = retarget.retarget_action(src, tgt, "mixamo")
    assert tuple(act.frame_range) == (1.0, float(end))
    assert "mixamorig:LeftLeg" in act["remomask_retarget_warning"]
    sh, st = _evaluate(src, ["right_hip"], [T + 10])
    th, tt = _evaluate(tgt, ["mixamorig:RightUpLeg"], [T + 10])
    assert _angles_deg(st - sh, tt - th).max() < 1.0


@pytest.fixture
def rigify_metarig(scene):
    """Blender's own Rigify 'Human' metarig (real rest pose, rolls and bent A-pose arms; plain parenting).
    Rigify is enabled only to add it and disabled at once (nothing stays registered)."""
    import addon_utils

    if not addon_utils.enable("rigify", default_set=True):
        pytest.skip("the rigify add-on is not available in this bpy build")
    try:
        bpy.ops.object.armature_human_metarig_add()
        meta = bpy.context.active_object
    finally:
        addon_utils.disable("rigify", default_set=True)
    assert meta.type == "ARMATURE" and "upper_arm.L" in meta.data.bones
    return meta


def test_real_rigify_metarig(rigify_metarig):
    meta = rigify_metarig
    src, _ = _source(seed=6)
    bm = retarget.auto_bone_map(meta)
    expect = {s: t.replace("DEF-", "") for s, t in bone_map.load_bone_map("rigify").items()}
    assert dict(bm) == expect
    action = retarget.retarget_action(src, meta, None)
    assert "remomask_retarget_warning" not in action
    names = [p[2].replace("DEF-", "") for p in DIRECTION_PAIRS] + ["spine"]
    feet = ["foot.L", "foot.R", "toe.L", "toe.R"]
    sh, st = _evaluate(src, [p[0] for p in DIRECTION_PAIRS] + ["pelvis"], range(1, T + 1))
    th, tt = _evaluate(meta, names + feet, range(1, T + 1))
    n = len(DIRECTION_PAIRS)
    ang = _angles_deg(st[:, :n] - sh[:, :n], tt[:, :n] - th[:, :n])
    assert ang.mean() < 10.0 and ang.mean() < 1.0, ang.mean(axis=0)
    rest_low = min(min(meta.data.bones[f].head_local[2], meta.data.bones[f].tail_local[2]) for f in feet)
    low = np.minimum(th[:, n + 1:, 2], tt[:, n + 1:, 2]).min(axis=1)
    assert low.min() > rest_low - 0.02
    b = meta.data.bones
    leg_t = np.mean([(b[f"shin.{s}"].head_local - b[f"thigh.{s}"].head_local).length +
                     (b[f"foot.{s}"].head_local - b[f"shin.{s}"].head_local).length for s in "LR"])
    sb = src.data.bones
    leg_s = np.mean([(sb[f"{s}_knee"].head_local - sb[f"{s}_hip"].head_local).length +
                     (sb[f"{s}_ankle"].head_local - sb[f"{s}_knee"].head_local).length for s in ("left", "right")])
    sd = sh[:, -1, :2] - sh[0, -1, :2]
    td = th[:, n, :2] - th[0, n, :2]
    moving = np.linalg.norm(sd, axis=1) > 0.2
    ratio = np.linalg.norm(td[moving], axis=1) / np.linalg.norm(sd[moving], axis=1)
    assert np.all(np.abs(ratio / (leg_t / leg_s) - 1.0) < 0.05), (ratio, leg_t / leg_s)
