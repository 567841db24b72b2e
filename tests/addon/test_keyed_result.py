"""End to end with the real keying library: fake backend -> motion file -> armature keyed so that its joints
land on the file's joints; import without a backend; history re-apply. Skipped until keying is merged."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from addon_helpers import PKG, poll_until, scene_snapshot

pytestmark = pytest.mark.blender


@pytest.fixture
def keyed(fresh):
    return fresh


def _joint_positions(bpy, arm, names, frame):
    bpy.context.scene.frame_set(frame)
    bpy.context.view_layer.update()
    return np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])


def _zup(p):
    p = np.asarray(p, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def test_generate_keys_joints_onto_new_armature(keyed, bpy_mod):
    bpy = bpy_mod
    mod = keyed
    smpl_rig = sys.modules[PKG + ".core.smpl_rig"] if PKG + ".core.smpl_rig" in sys.modules else __import__(
        PKG + ".core.smpl_rig", fromlist=["x"])
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    sp = scene.remomask
    sp.prompt, sp.auto_length, sp.length_s, sp.seed = "a person walks", False, 1.5, 5
    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert poll_until(mod, lambda: not sp.running, 30), sp.status
    assert not sp.status_is_error, sp.status
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert len(arms) == 1
    arm = arms[0]
    assert len(arm.data.bones) == 24
    assert scene_snapshot(bpy)[1] == before[1] + 1
    action = arm.animation_data.action
    assert action is not None and action.name == sp.history[-1].action
    with np.load(sp.history[-1].path) as z:
        joints = z["joints"]
    names = list(smpl_rig.SMPL_JOINT_NAMES[:22])
    for i in (0, 10, 29):
        got = _joint_positions(bpy, arm, names, scene.frame_start + i)
        np.testing.assert_allclose(got, _zup(joints[i]), atol=2e-3)


def test_import_npz_and_npy_without_backend(keyed, bpy_mod, tmp_path):
    bpy = bpy_mod
    mod = keyed
    sys.path.insert(0, str(__import__("addon_helpers").FAKE_BACKEND.parent))
    try:
        import fake_backend
    finally:
        sys.path.pop(0)
    joints, poses, trans, rest = fake_backend.make_motion(24, seed=1, sample=0)
    npz = tmp_path / "walk.npz"
    np.savez(npz, joints=joints.astype(np.float32), poses=poses.astype(np.float32),
             trans=trans.astype(np.float32), rest_joints=rest.astype(np.float32), fps=np.array(20),
             prompt=np.array("walk"), seed=np.array(1), betas=np.zeros(10, np.float32))
    npy = tmp_path / "joints.npy"
    np.save(npy, joints.astype(np.float32))
    assert bpy.ops.remomask.import_motion(filepath=str(npz), target='NEW') == {'FINISHED'}
    assert bpy.ops.remomask.import_motion(filepath=str(npy), target='NEW') == {'FINISHED'}
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert len(arms) == 2 and all(a.animation_data and a.animation_data.action for a in arms)
    # named like every other take: after the prompt (a joints file's prompt is its name)
    assert {a.animation_data.action.name for a in arms} == {"walk", "joints"}
    assert mod.ops.session._CLIENT is None          # no backend was started
    bad = tmp_path / "bad.npz"
    np.savez(bad, joints=np.zeros((5, 3)))
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="Could not import bad.npz"):
        bpy.ops.remomask.import_motion(filepath=str(bad), target='NEW')
    assert scene_snapshot(bpy) == before


def test_history_reapply_onto_selected(keyed, bpy_mod):  # keyed: the add-on enabled with a generated take
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.auto_length = True
    assert bpy.ops.remomask.generate(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    arm = [o for o in bpy.data.objects if o.type == 'ARMATURE'][0]
    first = arm.animation_data.action
    bpy.context.view_layer.objects.active = arm
    sp.target = 'SELECTED'
    n_actions = len(bpy.data.actions)
    assert bpy.ops.remomask.history_apply(index=0) == {'FINISHED'}
    assert len(bpy.data.actions) == n_actions + 1
    assert arm.animation_data.action != first and first.name in bpy.data.actions
    assert len([o for o in bpy.data.objects if o.type == 'ARMATURE']) == 1


def test_batch_with_real_nla(keyed, bpy_mod):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    txt = bpy.data.texts.new("prompts")
    txt.write("a person walks | 1.0\na person waves | 1.5\n")
    sp.batch_text = "prompts"
    assert bpy.ops.remomask.batch(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert len(arms) == 1
    strips = [s for t in arms[0].animation_data.nla_tracks for s in t.strips]
    assert len(strips) == 2


def _mixamo_rig(bpy, mod):
    """A 'Mixamo' rig: an SMPL armature whose bones carry the mixamo preset's names (same geometry)."""
    import json
    from pathlib import Path
    armature = __import__(PKG + ".blender.armature", fromlist=["x"])
    names = json.loads((Path(mod.__file__).parent / "core" / "bone_maps" / "mixamo.json").read_text())["bones"]
    rig = armature.build_smpl_armature(bpy.context.scene.collection, None, "MyMixamoRig")
    for b in list(rig.data.bones):
        if b.name in names:
            b.name = names[b.name]
    assert not armature.is_smpl_armature(rig)
    return rig, names


def test_generate_onto_a_mixamo_rig_by_retargeting(keyed, bpy_mod):
    bpy = bpy_mod
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    rig, names = _mixamo_rig(bpy, keyed)
    bpy.context.view_layer.objects.active = rig
    sp = scene.remomask
    sp.target, sp.bone_map, sp.auto_length, sp.length_s = 'SELECTED', 'mixamo', False, 1.5
    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.generate(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    after = scene_snapshot(bpy)
    # one new action on the rig; the temporary SMPL source armature and its action are gone
    assert after[0] == before[0] and after[2] == before[2] and after[1] == before[1] + 1
    assert rig.animation_data.action is not None
    with np.load(sp.history[-1].path) as z:
        joints = z["joints"]
    smpl_rig = __import__(PKG + ".core.smpl_rig", fromlist=["x"])
    smpl_names = [n for n in smpl_rig.SMPL_JOINT_NAMES[:22] if n in names]
    idx = [smpl_rig.SMPL_JOINT_NAMES.index(n) for n in smpl_names]
    bones = [names[n] for n in smpl_names]
    assert smpl_names[0] == "pelvis"
    a = _joint_positions(bpy, rig, bones, scene.frame_start + 5)
    b = _joint_positions(bpy, rig, bones, scene.frame_start + 25)
    ja, jb = _zup(joints[5][idx]), _zup(joints[25][idx])
    # the body's pose (joints relative to the pelvis) follows the file within 3 cm
    for got, want in ((a, ja), (b, jb)):
        err = np.linalg.norm((got - got[0]) - (want - want[0]), axis=-1)
        assert err.max() < 0.03, err
    # and it travels as far as the file's root does (same leg length: scale 1)
    np.testing.assert_allclose(b[0, :2] - a[0, :2], jb[0, :2] - ja[0, :2], atol=0.03)
    # standing where the file stands: the file's pelvis is at rest height (its rest pelvis is at the origin
    # and trans carries the height, as in SMPL fits); the rig must not float or sink
    assert abs(a[0, 2] - ja[0, 2]) < 0.05, (a[0, 2], ja[0, 2])


def test_retarget_failure_leaves_scene_unchanged(keyed, bpy_mod):
    bpy = bpy_mod
    rig = bpy.data.objects.new("EmptyRig", bpy.data.armatures.new("EmptyRig"))
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    sp = bpy.context.scene.remomask
    sp.target = 'SELECTED'
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="Could not apply the motion"):
        bpy.ops.remomask.generate(synchronous=True, timeout=30)
    assert scene_snapshot(bpy) == before and len(sp.history) == 0


def test_batch_one_prompt_per_selected_rig(keyed, bpy_mod):
    bpy = bpy_mod
    armature = __import__(PKG + ".blender.armature", fromlist=["x"])
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0   # frame counts below are the motions' own
    rigs = [armature.build_smpl_armature(scene.collection, None, name) for name in ("Rig B", "Rig A")]
    sp = scene.remomask
    sp.batch_layout = 'RIGS'
    txt = bpy.data.texts.new("per rig")
    txt.write("a person walks | 1.0\na person waves | 1.5\n")
    sp.batch_text = "per rig"
    for o in bpy.data.objects:
        o.select_set(False)
    rigs[0].select_set(True)
    with pytest.raises(RuntimeError, match="2 prompt\\(s\\) but 1 armature"):
        bpy.ops.remomask.batch(synchronous=True, timeout=30)
    assert all(r.animation_data is None or r.animation_data.action is None for r in rigs)
    rigs[1].select_set(True)
    assert bpy.ops.remomask.batch(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    by_name = {r.name: r for r in rigs}
    # prompts go to the rigs in name order: "Rig A" walks (1.0 s = 20 frames), "Rig B" waves (1.5 s = 30 frames)
    walk, wave = by_name["Rig A"].animation_data.action, by_name["Rig B"].animation_data.action
    assert walk["remomask_prompt"] == "a person walks" and wave["remomask_prompt"] == "a person waves"
    assert round(walk.frame_range[1] - walk.frame_range[0]) + 1 == 20
    assert round(wave.frame_range[1] - wave.frame_range[0]) + 1 == 30
    assert [o for o in bpy.data.objects if o.type == 'ARMATURE'] and len(
        [o for o in bpy.data.objects if o.type == 'ARMATURE']) == 2   # no new armature made
    # the frame range covers both takes (each call fitted it to its own; the batch to all of them)
    assert (scene.frame_start, scene.frame_end) == (1, 30)


def test_a_new_take_in_the_default_scene_is_beside_the_cube_active_and_framed(keyed, bpy_mod, tmp_path):
    """Issue #13 item 6 through the operators: Generate in the default scene (a cube at the origin, active)."""
    bpy = bpy_mod
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    cube = bpy.context.active_object
    sp = scene.remomask
    sp.prompt, sp.auto_length, sp.length_s = "a person walks", False, 2.5
    assert bpy.ops.remomask.generate(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    assert bpy.context.view_layer.objects.active == arm
    assert [o.name for o in bpy.context.view_layer.objects if o.select_get()] == [arm.name]
    assert arm.location.x > 1.0 and tuple(cube.location) == (0.0, 0.0, 0.0)
    lo, hi = arm.animation_data.action.frame_range
    assert (scene.frame_start, scene.frame_end) == (round(lo), round(hi)) == (1, 50)
    # Export acts on the new take without the user selecting it first
    s = scene.remomask_render
    s.output, s.export_format = str(tmp_path) + "/", ".bvh"
    assert bpy.ops.remomask.export() == {'FINISHED'}
    # Import Motion at the 3D cursor when the preference says so
    prefs = bpy.context.preferences.addons[PKG].preferences
    assert prefs.place_takes == 'BESIDE'
    prefs.place_takes = 'CURSOR'
    try:
        scene.cursor.location = (-4.0, 3.0, 0.0)
        assert bpy.ops.remomask.import_motion(filepath=sp.history[-1].path, target='NEW') == {'FINISHED'}
    finally:
        prefs.place_takes = 'BESIDE'
    new = bpy.context.view_layer.objects.active
    assert new.type == 'ARMATURE' and new != arm and tuple(new.location) == pytest.approx((-4.0, 3.0, 0.0))
