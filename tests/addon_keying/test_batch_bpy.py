"""Several takes laid out on the NLA: order, blends, and root motion continuing across joins."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import anim_compat, armature, batch, keying, motion_to_armature  # noqa: E402

pytestmark = pytest.mark.blender


def _three_takes(motion_factory, fps=30):
    bpy.context.scene.render.fps = fps
    arm = armature.build_smpl_armature(bpy.context, None, "SMPL")
    takes = [motion_factory(T=40, seed=10 + i, yaw0=1.1 * i, turn=0.4 - 0.3 * i, speed=1.0 + 0.1 * i,
                            prompt=f"take {i}") for i in range(3)]
    actions = [keying.key_motion(arm, t) for t in takes]
    return arm, takes, actions


def _pelvis_track(heads_evaluator, arm, first, last):
    return heads_evaluator(bpy, arm, range(first, last + 1), names=["pelvis"])[:, 0]


def _join_jumps(p, first, joins, b):
    """Position jump around each join (metres): how far each frame-to-frame step deviates from the
    mean of its two neighbouring steps. A position discontinuity J shows up as ~J; a change of
    velocity (a take that walks faster, a bob that restarts) does not, since it is not a jump."""
    step = np.diff(p, axis=0)  # step i: frame first + i -> first + i + 1
    dev = np.linalg.norm(step[1:-1] - 0.5 * (step[:-2] + step[2:]), axis=-1)  # index i <-> step i + 1
    out = []
    for s in joins:
        lo, hi = (s - 3 - first) - 1, (s + b + 2 - first) - 1
        out.append(dev[max(lo, 0):hi + 1].max())
    return np.array(out), dev


@pytest.mark.parametrize("blend", [5, 0])
def test_three_takes_end_to_end_with_continuous_root(bpy_clean, motion_factory, heads_evaluator, blend):
    arm, takes, actions = _three_takes(motion_factory)
    strips = batch.lay_out_nla(arm, actions, blend_frames=blend)
    assert len(bpy.data.actions) == 3 and len(strips) == 3
    assert [s.action for s in strips] == actions
    assert arm.animation_data.action is None  # the NLA plays
    starts = [s.frame_start for s in strips]
    ends = [s.frame_end for s in strips]
    assert starts[0] == 1 and all(starts[k] < starts[k + 1] for k in range(2))
    for k in range(1, 3):
        assert starts[k] == ends[k - 1] + 1 - blend  # overlap == blend frames
    tracks = {s.id_data.animation_data.nla_tracks.find(t.name) for s in strips for t in [
        next(tr for tr in arm.animation_data.nla_tracks if s in list(tr.strips))]}
    assert len(tracks) == (2 if blend else 1)
    if blend:
        assert strips[1].blend_in == blend and strips[1].blend_out == blend
        assert strips[0].blend_in == strips[0].blend_out == 0 == strips[2].blend_in
    if anim_compat.has_slotted_actions():
        assert all(s.action_slot == a.slots[0] for s, a in zip(strips, actions))

    p = _pelvis_track(heads_evaluator, arm, 1, int(ends[-1]))
    jumps, acc = _join_jumps(p, 1, [int(s) for s in starts[1:]], blend)
    assert jumps.max() < 0.01, jumps  # < 1 cm at every join
    # and the takes really continue: the figure keeps walking away from where it started
    assert np.linalg.norm(p[-1, :2] - p[0, :2]) > 2.0
    if blend:
        # no joint pops during the cross-fades (a quaternion sign flip would swing a limb ~1 m)
        h = heads_evaluator(bpy, arm, range(1, int(ends[-1]) + 1))
        step = np.linalg.norm(np.diff(h, axis=0), axis=-1).max(1)
        in_join = np.zeros(len(step), bool)
        for st in starts[1:]:
            in_join[int(st) - 3:int(st) + blend + 1] = True
        assert step[in_join].max() < 1.25 * step[~in_join].max(), (step[in_join].max(), step[~in_join].max())
    # within each take the motion is that take's own (up to the baked ground-plane transform)
    first_take = _pelvis_track(heads_evaluator, arm, 1, int(ends[0]) - blend)
    assert np.allclose(np.diff(first_take, axis=0), np.diff(p[: len(first_take)], axis=0), atol=1e-5)


def test_without_root_continuation_the_joins_jump(bpy_clean, motion_factory, heads_evaluator):
    """The check above can fail: laying the same takes out without the baked offsets jumps."""
    arm, takes, actions = _three_takes(motion_factory)
    strips = batch.lay_out_nla(arm, actions, blend_frames=0, continue_root_motion=False)
    p = _pelvis_track(heads_evaluator, arm, 1, int(strips[-1].frame_end))
    jumps, _ = _join_jumps(p, 1, [int(s.frame_start) for s in strips[1:]], 0)
    assert jumps.min() > 0.3


def test_continue_root_preserves_take_shape_and_height(bpy_clean, motion_factory):
    arm, takes, actions = _three_takes(motion_factory)
    rest = armature.armature_rest_matrices(arm)
    B0, h0 = rest[0, :3, :3], rest[0, :3, 3]

    def world(action):
        loc = np.stack([anim_compat.read_keys(anim_compat.find_fcurve(action, 'pose.bones["pelvis"].location', i))[1]
                        for i in range(3)], -1)
        return h0 + loc @ B0.T

    before = world(actions[1])
    yaw, dx, dy = batch.continue_root(arm, actions[0], actions[1], 60.0)
    after = world(actions[1])
    assert np.allclose(after[:, 2], before[:, 2], atol=1e-5)  # heights untouched
    d_before = np.linalg.norm(np.diff(before, axis=0), axis=-1)
    d_after = np.linalg.norm(np.diff(after, axis=0), axis=-1)
    assert np.allclose(d_before, d_after, atol=1e-5)  # a rigid ground-plane move
    w0 = world(actions[0])
    assert anim_compat.read_keys(anim_compat.find_fcurve(actions[0], 'pose.bones["pelvis"].location', 0))[0][-1] == 59
    target = 2 * w0[-1] - w0[-2]  # frame 60 is one past take 0's end: extrapolated
    assert np.allclose(after[0, :2], target[:2], atol=1e-4)
    # inside the take: aligned to the sampled key
    batch.continue_root(arm, actions[0], actions[2], 30.0)
    assert np.allclose(world(actions[2])[0, :2], w0[29, :2], atol=1e-4)


def test_bad_batches(bpy_clean, motion_factory):
    arm = armature.build_smpl_armature(bpy.context, None, "SMPL")
    with pytest.raises(ValueError, match="no actions"):
        batch.lay_out_nla(arm, [])
    foreign = bpy.data.actions.new("hand made")
    n_tracks = len(arm.animation_data.nla_tracks) if arm.animation_data else 0
    a = keying.key_motion(arm, motion_factory(T=10), scene_fps=20)
    with pytest.raises(ValueError, match="no pelvis"):
        batch.lay_out_nla(arm, [a, foreign])
    assert (len(arm.animation_data.nla_tracks) if arm.animation_data else 0) == n_tracks


def test_import_batch_convenience_and_rollback(bpy_clean, motion_factory):
    bpy.context.scene.render.fps = 20
    ms = [motion_factory(T=20, seed=i, prompt=f"p{i}") for i in range(3)]
    arm, actions, strips = motion_to_armature.import_batch(bpy.context, ms, blend_frames=3)
    assert [a.name for a in actions] == ["p0", "p1", "p2"] and len(strips) == 3
    assert [s.action for s in strips] == actions and arm.animation_data.action is None
    assert len([o for o in bpy.data.objects if o.type == "MESH"]) == 1
    before = (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes))
    bad = motion_factory(T=20, seed=9)
    bad["trans"] = bad["trans"][:5]
    with pytest.raises(Exception, match="motion 2: 'trans'"):
        motion_to_armature.import_batch(bpy.context, [ms[0], bad])
    assert (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes)) == before


def test_import_batch_rolls_back_a_late_failure(bpy_clean, motion_factory, monkeypatch):
    """A failure after the rig, body and takes were made leaves nothing of them behind."""
    def boom(*a, **k):
        raise RuntimeError("NLA failed")

    monkeypatch.setattr(batch, "lay_out_nla", boom)
    before = (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes))
    with pytest.raises(RuntimeError, match="NLA failed"):
        motion_to_armature.import_batch(bpy.context, [motion_factory(T=10, seed=i) for i in range(2)])
    assert (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes)) == before


def test_heading_of_a_lying_body_uses_the_left_right_axis():
    from remomask_addon.blender.batch import _rz, _yaw

    R = pytest.importorskip("scipy.spatial.transform").Rotation
    for yaw in (-2.5, 0.0, 0.8, 3.0):
        for pitch in (0.0, 60.0, 89.0, 90.0, -90.0):  # standing ... lying on the back/front
            W = _rz(yaw) @ R.from_euler("x", pitch, degrees=True).as_matrix()
            got = _yaw(W)
            # the heading is the direction the body faces: rest forward is -Y, at angle -90 deg
            assert np.isclose(np.cos(got - (yaw - np.pi / 2)), 1.0, atol=1e-9), (yaw, pitch, got)
