"""Keying onto a real (headless) Blender armature: positions, resampling, naming, errors."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import anim_compat, armature, keying, mannequin, motion_to_armature  # noqa: E402
from remomask_addon.core import channels, coords, motion_io, smpl_rig  # noqa: E402

pytestmark = pytest.mark.blender


def _scene_counts():
    return (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes))


def test_armature_bones_match_rest_joints(bpy_clean, motion_factory):
    rest = motion_factory(T=2)["rest_joints"].astype(np.float64) * 1.1
    arm = armature.build_smpl_armature(bpy.context, rest, "Rig")
    bones = arm.data.bones
    assert sorted(b.name for b in bones) == sorted(smpl_rig.SMPL_JOINT_NAMES)
    heads = np.array([bones[n].head_local for n in smpl_rig.SMPL_JOINT_NAMES])
    assert np.allclose(heads, coords.points_to_zup(rest), atol=1e-5)
    for j, p in enumerate(smpl_rig.SMPL_PARENTS):
        b = bones[smpl_rig.SMPL_JOINT_NAMES[j]]
        assert (b.parent.name if b.parent else None) == (smpl_rig.SMPL_JOINT_NAMES[p] if p >= 0 else None)
        assert b.length > 0.01
    # the left knee's tail is the left ankle
    assert np.allclose(bones["left_knee"].tail_local, coords.points_to_zup(rest[7]), atol=1e-5)
    assert arm.mode == "OBJECT" and arm.name in bpy.context.scene.objects
    # into a given collection; the active object is restored; names never clash
    coll = bpy.data.collections.new("Takes")
    bpy.context.scene.collection.children.link(coll)
    bpy.context.view_layer.objects.active = arm
    arm2 = armature.build_smpl_armature(coll, None, "Rig")
    assert arm2.name == "Rig.001" and arm2.users_collection[0] == coll
    assert bpy.context.view_layer.objects.active == arm and armature.is_smpl_armature(arm2)
    with pytest.raises(ValueError, match=r"\(24, 3\)"):
        armature.build_smpl_armature(bpy.context, rest[:22], "Bad")
    assert "Bad" not in bpy.data.objects


@pytest.mark.parametrize("move", [False, True])
def test_keyed_positions_match_npz_joints(bpy_clean, tmp_path, motion_factory, npz_writer, heads_evaluator, move):
    src = motion_factory(T=50, seed=1)
    m = motion_io.load_motion(npz_writer(tmp_path / "walk.npz", src))
    arm = armature.build_smpl_armature(bpy.context, m["rest_joints"], "SMPL")
    if move:  # an armature that the user moved/rotated: the motion follows the object
        arm.location = (2.0, -1.0, 0.5)
        arm.rotation_euler = (0.0, 0.0, 0.7)
    bpy.context.scene.render.fps = 20
    action = keying.key_motion(arm, m, start_frame=1)
    assert arm.animation_data.action == action
    if anim_compat.has_slotted_actions():
        assert arm.animation_data.action_slot is not None
        assert arm.animation_data.action_slot == action.slots[0]
    assert tuple(action.frame_range) == (1.0, 50.0)
    fcs = anim_compat.fcurves(action)
    assert len(fcs) == 24 * 4 + 3 and all(len(fc.keyframe_points) == 50 for fc in fcs)
    heads = heads_evaluator(bpy, arm, range(1, 51))[:, :22]
    ref = coords.points_to_zup(src["joints"].astype(np.float64))
    mw = np.array(arm.matrix_world)
    ref = ref @ mw[:3, :3].T + mw[:3, 3]
    err = np.linalg.norm(heads - ref, axis=-1)
    assert err.mean() < 0.005 and err.max() < 0.015, (err.mean(), err.max())
    assert err.max() < 1e-4  # in fact exact up to float32 keys


def test_resampled_to_30fps_keeps_positions(bpy_clean, motion_factory, heads_evaluator):
    src = motion_factory(T=41, seed=2)
    m = motion_io.validate_motion(src)
    arm = armature.build_smpl_armature(bpy.context, m["rest_joints"], "SMPL")
    bpy.context.scene.render.fps = 30
    action = keying.key_motion(arm, m, start_frame=10)
    # 40 intervals at 20 fps = 2 s = 60 frames at 30 fps
    assert tuple(action.frame_range) == (10.0, 70.0)
    # source frame i (time i/20 s) lands on scene frame 10 + 1.5 i: compare at even i
    src_idx = np.arange(0, 41, 2)
    heads = heads_evaluator(bpy, arm, 10 + (src_idx * 3) // 2)[:, :22]
    ref = coords.points_to_zup(src["joints"][src_idx].astype(np.float64))
    err = np.linalg.norm(heads - ref, axis=-1)
    assert err.max() < 1e-3, err.max()
    # in-between frames are interpolated: close to FK at the same time (smooth motion)
    odd = np.arange(1, 40, 2)
    heads_mid = heads_evaluator(bpy, arm, 10 + (odd * 3 + 1) // 2)[:, :22]  # t = (i + 1/3) / 20
    s = odd + 1.0 / 3.0
    i0 = np.floor(s).astype(int)
    u = s - i0
    aa0, aa1 = m["poses"][i0], m["poses"][i0 + 1]
    q = smpl_rig.slerp(smpl_rig.matrix_to_quaternion(smpl_rig.axis_angle_to_matrix(aa0)),
                       smpl_rig.matrix_to_quaternion(smpl_rig.axis_angle_to_matrix(aa1)),
                       np.broadcast_to(u[:, None], aa0.shape[:2]))
    poses_mid = smpl_rig.matrix_to_axis_angle(smpl_rig.quaternion_to_matrix(q))
    trans_mid = m["trans"][i0] * (1 - u[:, None]) + m["trans"][i0 + 1] * u[:, None]
    ref_mid, _ = smpl_rig.forward_kinematics(m["rest_joints"], poses_mid, trans_mid)
    err_mid = np.linalg.norm(heads_mid - coords.points_to_zup(ref_mid[:, :22]), axis=-1)
    assert err_mid.mean() < 0.005 and err_mid.max() < 0.015, (err_mid.mean(), err_mid.max())


def test_quaternion_keys_are_continuous(bpy_clean, motion_factory):
    src = motion_factory(T=60, seed=3, amp=1.4, turn=4.0)  # large rotations, fast turning
    arm = armature.build_smpl_armature(bpy.context, src["rest_joints"], "SMPL")
    action = keying.key_motion(arm, src, scene_fps=24)
    for bone in smpl_rig.SMPL_JOINT_NAMES:
        q = np.stack([anim_compat.read_keys(anim_compat.find_fcurve(
            action, f'pose.bones["{bone}"].rotation_quaternion', i))[1] for i in range(4)], -1)
        assert np.all(np.sum(q[1:] * q[:-1], -1) > 0.0), bone
        assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)


def test_action_naming_never_overwrites(bpy_clean, motion_factory):
    src = motion_factory(T=8, prompt="  a person   waves\nhello ")
    arm = armature.build_smpl_armature(bpy.context, src["rest_joints"], "SMPL")
    user_action = bpy.data.actions.new("a person waves hello")  # the user's own action
    a1 = keying.key_motion(arm, src, scene_fps=20)
    a2 = keying.key_motion(arm, src, scene_fps=20)
    a3 = keying.key_motion(arm, src, scene_fps=20, action_name="custom")
    names = {user_action.name, a1.name, a2.name, a3.name}
    assert len(names) == 4 and a1.name.startswith("a person waves hello.")
    assert a3.name == "custom" and arm.animation_data.action == a3
    assert user_action.users == 0 and len(anim_compat.fcurves(user_action)) == 0  # untouched
    # earlier takes survive (fake user) and keep their keys
    assert a1.use_fake_user and len(anim_compat.fcurves(a1)) == 99
    assert a1["remomask_prompt"] == str(src["prompt"]) and a1["remomask_source_fps"] == 20.0
    long = channels.action_name_for_prompt("walk " * 40)
    assert len(long) <= channels.MAX_NAME_CHARS + 1 and long.endswith("~")
    assert channels.action_name_for_prompt("") == "ReMoMask"


def test_bad_input_leaves_scene_unchanged(bpy_clean, tmp_path, motion_factory, npz_writer):
    src = motion_factory(T=8)
    arm = armature.build_smpl_armature(bpy.context, src["rest_joints"], "SMPL")
    before = _scene_counts()
    bad = dict(src)
    bad["poses"] = bad["poses"][:, :10]
    with pytest.raises(motion_io.MotionFileError, match="poses"):
        keying.key_motion(arm, bad, scene_fps=20)
    p = npz_writer(tmp_path / "nan.npz", {**src, "trans": np.full_like(src["trans"], np.nan)})
    with pytest.raises(motion_io.MotionFileError, match="NaN"):
        keying.key_motion(arm, motion_io.load_motion(p), scene_fps=20)
    assert _scene_counts() == before
    empty = bpy.data.objects.new("NotARig", bpy.data.armatures.new("NotARig"))
    before = _scene_counts()
    with pytest.raises(ValueError, match="24 SMPL bones"):
        keying.key_motion(empty, src, scene_fps=20)
    with pytest.raises(ValueError, match="scene_fps"):
        keying.key_motion(arm, src, scene_fps=0)
    assert _scene_counts() == before and arm.animation_data is None


def test_joints_only_import_swing_ik(bpy_clean, tmp_path, motion_factory, heads_evaluator):
    src = motion_factory(T=30, seed=7)
    p = tmp_path / "wave.npy"
    np.save(p, src["joints"])
    m = motion_io.load_joints(p)
    assert m["prompt"] == "wave"
    bpy.context.scene.render.fps = 20
    arm, action = motion_to_armature.import_motion(bpy.context, m, with_mannequin=False, start_frame=1)
    assert action.name == "wave"
    heads = heads_evaluator(bpy, arm, range(1, 31))[:, :22]
    err = np.linalg.norm(heads - coords.points_to_zup(src["joints"].astype(np.float64)), axis=-1)
    assert err.mean() < 0.005 and err.max() < 0.015, (err.mean(), err.max())


def test_mannequin_is_skinned_and_follows(bpy_clean, motion_factory):
    src = motion_factory(T=10, seed=8)
    arm, action = motion_to_armature.import_motion(bpy.context, motion_io.validate_motion(src), with_mannequin=True)
    bodies = [o for o in arm.children if o.type == "MESH"]
    assert len(bodies) == 1
    body = bodies[0]
    assert {g.name for g in body.vertex_groups} == set(smpl_rig.SMPL_JOINT_NAMES)
    mods = [md for md in body.modifiers if md.type == "ARMATURE"]
    assert len(mods) == 1 and mods[0].object == arm
    assert len(body.data.vertices) > 1000 and len(body.data.polygons) > 1000
    # a vertex weighted only to the left hand moves with the left hand's joint
    gi = body.vertex_groups["left_hand"].index
    vid = next(v.index for v in body.data.vertices if len(v.groups) == 1 and v.groups[0].group == gi)
    rest_v = np.array(body.data.vertices[vid].co)
    rest_h = np.array(arm.data.bones["left_hand"].head_local)
    scene = bpy.context.scene
    for f in (1, 8):
        scene.frame_set(f)
        dg = bpy.context.evaluated_depsgraph_get()
        ev = body.evaluated_get(dg)
        v = np.array(ev.data.vertices[vid].co)
        pb = arm.evaluated_get(dg).pose.bones["left_hand"]
        expect = np.array(pb.matrix @ arm.data.bones["left_hand"].matrix_local.inverted() @ __import__("mathutils").Vector(rest_v))
        assert np.allclose(v, expect, atol=1e-4)
    moved = np.linalg.norm(np.array(arm.evaluated_get(dg).pose.bones["left_hand"].head) - rest_h)
    assert moved > 0.05  # the test pose really moved the hand


def test_skinned_mesh_hook_from_yup_arrays(bpy_clean):
    arm = armature.build_smpl_armature(bpy.context, None, "SMPL")
    verts = np.array([[0, 1, 0], [0.1, 1, 0], [0, 1.1, 0.1]], dtype=float)
    w = np.zeros((3, 24))
    w[:, 3] = 0.7
    w[:, 0] = 0.3
    obj = mannequin.build_skinned_mesh(arm, verts, [(0, 1, 2)], w, name="SMPLBody", vertices_are_yup=True)
    assert np.allclose(np.array(obj.data.vertices[2].co), coords.points_to_zup(verts[2]), atol=1e-6)
    v = obj.data.vertices[0]
    ws = {obj.vertex_groups[g.group].name: g.weight for g in v.groups}
    assert ws == pytest.approx({"spine1": 0.7, "pelvis": 0.3})
    with pytest.raises(ValueError, match=r"\(V, 24\)"):
        mannequin.build_skinned_mesh(arm, verts, [(0, 1, 2)], w[:, :22])


def test_motion_with_a_body_mesh_gets_that_mesh_instead_of_the_mannequin(bpy_clean, motion_factory, tmp_path,
                                                                          npz_writer):
    """The backend adds the user's SMPL body (zero pose, y-up) to a motion fitted with SMPL files; import uses it,
    skinned with the given weights. A truncated body is refused before anything is made."""
    m = motion_factory(T=12)
    rest = np.asarray(m["rest_joints"], dtype=np.float64)
    # a small "body": 3 vertices around each joint, rigidly weighted to that joint, faces within each joint
    verts = (rest[:, None, :] + np.array([[0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02]])[None]).reshape(-1, 3)
    faces = np.arange(72, dtype=np.int32).reshape(24, 3)
    weights = np.repeat(np.eye(24), 3, axis=0)
    m.update(body_vertices=verts.astype(np.float32), body_faces=faces, body_weights=weights.astype(np.float32))
    motion = motion_io.load_motion(npz_writer(tmp_path / "with_body.npz", m))
    arm, _ = motion_to_armature.import_motion(bpy.context, motion)
    body = [c for c in arm.children if c.type == "MESH"]
    assert len(body) == 1 and body[0].name.endswith("_smpl_body") and len(body[0].data.vertices) == 72
    co = np.empty(72 * 3)
    body[0].data.vertices.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), coords.points_to_zup(verts), atol=1e-6)
    vg = body[0].vertex_groups["left_elbow"]
    assert [v.index for v in body[0].data.vertices if any(g.group == vg.index for g in v.groups)] == [54, 55, 56]
    # at a posed frame the body follows its bones: the left-elbow vertices stay 2 cm from the elbow joint
    bpy.context.scene.frame_set(bpy.context.scene.frame_start + 6)
    dg = bpy.context.evaluated_depsgraph_get()
    ev = body[0].evaluated_get(dg)
    pts = np.array([tuple(body[0].matrix_world @ ev.data.vertices[i].co) for i in (54, 55, 56)])
    elbow = np.array(tuple(arm.matrix_world @ arm.pose.bones["left_elbow"].head))
    np.testing.assert_allclose(np.linalg.norm(pts - elbow, axis=1), 0.02, atol=1e-4)

    objects_before = len(bpy.data.objects)
    broken = dict(m)
    broken.pop("body_weights")
    with pytest.raises(motion_io.MotionFileError, match="needs all of"):
        motion_to_armature.import_motion(bpy.context, motion_io.load_motion(npz_writer(tmp_path / "broken.npz", broken)))
    bad_faces = dict(m, body_faces=faces + 100)
    with pytest.raises(motion_io.MotionFileError, match="vertex indices below 72"):
        motion_io.load_motion(npz_writer(tmp_path / "bad_faces.npz", bad_faces))
    assert len(bpy.data.objects) == objects_before
