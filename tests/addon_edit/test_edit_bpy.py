"""The Edit panel on headless bpy with a stand-in client that answers like the generator (``fake_edit``): each
operation on the SMPL armature and on a retargeted Mixamo-named rig writes a new action version whose keys outside
the edited frames are bit-identical with the user's hand-keyed action (every keyframe point property), with
continuous seams; the user's action, other actions, NLA strips, constraints and drivers are untouched; every fault
is one message with the scene unchanged.

Undo: ``bpy.ops.ed.undo`` cannot run in module mode (its poll fails without a window; measured on bpy 4.5.15), so
"undo returns to before" is checked as what it restores: the previous action, kept, played again exactly."""

from __future__ import annotations

import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import scenes  # noqa: E402
from remomask_addon.blender import read_back  # noqa: E402
from remomask_addon.core import edit_range  # noqa: E402

pytestmark = pytest.mark.blender

MIXAMO_MAP = "mixamo"


def _select(arm):
    for o in bpy.context.scene.objects:
        o.select_set(o == arm)
    bpy.context.view_layer.objects.active = arm


def _deselect_keys(action):
    from remomask_addon.blender import anim_compat
    for fc in anim_compat.fcurves(action):
        for kp in fc.keyframe_points:
            kp.select_control_point = kp.select_left_handle = kp.select_right_handle = False


def _rig(kind, step=10):
    if kind == "smpl":
        arm = scenes.keyed_smpl(bpy)
    else:
        arm = scenes.keyed_mixamo(bpy)
        bpy.context.scene.remomask.bone_map = 'mixamo'
    act = scenes.hand_keyed(bpy, arm, step=step)
    _deselect_keys(act)
    _select(arm)
    return arm, act


def _joints(arm, rng, bone_map=None):
    return read_back.armature_joints(arm, scene=bpy.context.scene, frame_range=rng, bone_map=bone_map)


def _map(kind):
    return None if kind == "smpl" else {k: v for k, v in
                                        __import__("remomask_addon.core.bone_map", fromlist=["x"])
                                        .load_bone_map(MIXAMO_MAP).items()}


def _edit(op, **props):
    ep = bpy.context.scene.remomask_edit
    for k, v in props.items():
        setattr(ep, k, v)
    return bpy.ops.remomask.edit(op=op, synchronous=True, timeout=20)


def _extras(arm):
    """Things an edit must never touch: an NLA strip of another action, a bone constraint, a driver."""
    other = bpy.data.actions.new("Other take")
    other.use_fake_user = True
    ad = arm.animation_data
    track = ad.nla_tracks.new()
    strip = track.strips.new("take", 200, other)
    strip.mute = True
    pb = arm.pose.bones[0]
    con = pb.constraints.new('LIMIT_ROTATION')
    con.influence = 0.0
    arm["knob"] = 0.5
    drv = arm.driver_add('["knob"]').driver
    drv.expression = "frame / 100"
    return lambda: (len(ad.nla_tracks), [(s.name, s.action.name, s.frame_start, s.mute) for t in ad.nla_tracks
                                          for s in t.strips],
                    [(c.type, c.influence) for p in arm.pose.bones for c in p.constraints],
                    [(d.data_path, d.driver.expression) for d in ad.drivers])


@pytest.mark.parametrize("kind", ["smpl", "mixamo"])
def test_regenerate_keeps_every_key_outside_the_range_bit_identical(scene, kind):
    arm, act = _rig(kind)
    extras = _extras(arm)
    before_extras = extras()
    snap = scenes.snapshot(act)
    src = _joints(arm, (1, 120), _map(kind))
    assert _edit('REGENERATE', range_start=40, range_end=80, prompt="a person jumps in place") == {'FINISHED'}
    assert not scene.remomask.status_is_error, scene.remomask.status
    new = arm.animation_data.action
    assert new != act and new.name == f"{act.name}.v2" and new.use_fake_user and act.use_fake_user
    window = tuple(new["remomask_edit_window"])
    assert window == (40, 80)                      # the changed frames, kept inside the range
    after = scenes.snapshot(new)
    # every keyframe point outside the window: bit-identical; the user's action itself: untouched
    scenes.assert_identical(scenes.outside(snap, window), scenes.outside(after, window))
    scenes.assert_identical(snap, scenes.snapshot(act))
    assert extras() == before_extras
    # the range did change, where the stand-in generator raised the body (25 cm at the middle)
    out = _joints(arm, (1, 120), _map(kind))
    lift = out[:, 0, 1] - src[:, 0, 1]
    assert lift[58:62].max() > 0.15, lift[58:62]
    # the pose is the user's up to their last key before the window (31) and from their first key after it (81);
    # between those keys and the window the curves now lead into the new keys
    assert np.abs(out[:31] - src[:31]).max() == 0 and np.abs(out[80:] - src[80:]).max() == 0
    # seams continuous: no joint step across the window's ends above the source's own 99th percentile
    step = np.linalg.norm(np.diff(out, axis=0), axis=-1).max(axis=1)
    p99 = np.percentile(np.linalg.norm(np.diff(src, axis=0), axis=-1).max(axis=1), 99)
    for f in window:
        seam = step[f - 1 - 3:f - 1 + 3]            # steps between frames f-3 .. f+3 (frame 1 is index 0)
        assert seam.max() <= p99, (f, seam.max(), p99)
    # switching back (what undo restores) plays the previous action exactly
    from remomask_addon.blender import edit_apply
    versions = edit_apply.versions_of(new)
    assert [v[:2] for v in versions] == [(1, act.name), (2, new.name)]
    assert bpy.ops.remomask.edit_use_version(action=act.name) == {'FINISHED'}
    assert arm.animation_data.action == act
    np.testing.assert_array_equal(_joints(arm, (1, 120), _map(kind)), src)


@pytest.mark.parametrize("kind", ["smpl", "mixamo"])
def test_inbetween_keeps_the_users_keys_and_matches_the_ends(scene, kind):
    arm, act = _rig(kind, step=30)                 # keys at 1, 31, 61, 91
    snap = scenes.snapshot(act)
    src = _joints(arm, (1, 91), _map(kind))
    assert _edit('INBETWEEN', range_start=40, range_end=50, prompt="a person turns around") == {'FINISHED'}
    new = arm.animation_data.action
    window = tuple(new["remomask_edit_window"])
    assert window == (32, 60)                      # strictly between the user's keys at 31 and 61
    scenes.assert_identical(scenes.outside(snap, window), scenes.outside(scenes.snapshot(new), window))
    keys = {tuple(np.round(p["co"][:, 0])) for p in scenes.snapshot(new).values()}
    assert all(31.0 in k and 61.0 in k for k in keys)       # the keys around the gap are still there
    out = _joints(arm, (1, 91), _map(kind))
    for f in (31, 61):                             # the poses at the gap's ends: within 1 cm
        err = np.linalg.norm(out[f - 1] - src[f - 1], axis=-1).max()
        assert err < 0.01, (f, err)
    assert np.abs(out[45] - src[45]).max() > 0.1   # the gap itself was filled anew


@pytest.mark.parametrize("kind", ["smpl", "mixamo"])
def test_body_part_writes_only_that_parts_bones(scene, kind):
    arm, act = _rig(kind)
    snap = scenes.snapshot(act)
    assert _edit('BODYPART', range_start=30, range_end=90, prompt="a person waves", part='ARMS') == {'FINISHED'}
    new = arm.animation_data.action
    after = scenes.snapshot(new)
    window = tuple(new["remomask_edit_window"])
    arm_bones = set(edit_range.PART_BONES["arms"])
    if kind == "mixamo":
        bm = _map(kind)
        arm_bones = {bm[b] for b in arm_bones if b in bm}
    others = [k for k in snap if k[0].split('"')[1] not in arm_bones]
    parts = [k for k in snap if k[0].split('"')[1] in arm_bones]
    assert others and parts
    scenes.assert_identical(snap, after, keys=others)           # every other bone: every key, everywhere
    scenes.assert_identical(scenes.outside(snap, window), scenes.outside(after, window), keys=parts)
    assert any(snap[k]["co"].tobytes() != after[k]["co"].tobytes() for k in parts)


def test_a_channel_the_user_never_keyed_keeps_its_pose_outside_the_range(scene):
    from remomask_addon.blender import anim_compat
    arm, act = _rig("smpl")
    bag_fcs = [fc for fc in anim_compat.fcurves(act) if '"left_wrist"' in fc.data_path]
    assert len(bag_fcs) == 4
    for fc in bag_fcs:                                  # the user never animated the left wrist ...
        anim_compat.remove_fcurve(act, fc, getattr(arm.animation_data, "action_slot", None))
    arm.pose.bones["left_wrist"].rotation_quaternion = (0.9, 0.3, 0.2, 0.1)   # ... but posed it
    src = _joints(arm, (1, 120))
    assert _edit('REGENERATE', range_start=40, range_end=80, prompt="a person jumps") == {'FINISHED'}
    new = arm.animation_data.action
    fcs = [fc for fc in anim_compat.fcurves(new) if '"left_wrist"' in fc.data_path]
    assert len(fcs) == 4                                # the edit keys it inside the range only, held outside
    for fc, v in zip(sorted(fcs, key=lambda f: f.array_index), (0.9, 0.3, 0.2, 0.1)):
        pts = scenes.read_points(fc)
        assert pts["co"][0, 0] == 39 and pts["co"][-1, 0] == 81
        assert pts["co"][0, 1] == np.float32(v) and pts["co"][-1, 1] == np.float32(v)
    out = _joints(arm, (1, 120))
    assert np.abs(out[:31] - src[:31]).max() == 0 and np.abs(out[80:] - src[80:]).max() == 0


@pytest.mark.parametrize("mode", ["RETURN", "TRAVEL"])
def test_loop_shows_cycles_and_keeps_the_rest(scene, mode):
    arm, act = _rig("smpl")
    snap = scenes.snapshot(act)
    assert _edit('LOOP', loop_mode=mode, prompt="") == {'FINISHED'}
    new = arm.animation_data.action
    window = tuple(new["remomask_edit_window"])
    assert window[1] == 111 and window[0] > 60     # the seam at the end (keys end at 111)
    scenes.assert_identical(scenes.outside(snap, window), scenes.outside(scenes.snapshot(new), window))
    from remomask_addon.blender import anim_compat
    mods = {(fc.data_path, fc.array_index): [(m.type, m.mode_after) for m in fc.modifiers]
            for fc in anim_compat.fcurves(new)}
    root = 'pose.bones["pelvis"].location'
    want_root = 'REPEAT_OFFSET' if mode == "TRAVEL" else 'REPEAT'
    assert all(v == [('CYCLES', want_root if k[0] == root else 'REPEAT')] for k, v in mods.items())
    assert all(not fc.modifiers for fc in anim_compat.fcurves(act))     # the user's action has none
    j = _joints(arm, (1, 111))
    assert np.linalg.norm(j[-1, 1:] - j[-1, :1] - (j[0, 1:] - j[0, :1]), axis=-1).max() < 0.03  # last pose = first


def test_extend_and_lead_in_add_motion_outside_the_action(scene):
    arm, act = _rig("smpl")
    snap = scenes.snapshot(act)
    assert _edit('EXTEND', seconds=2.0, prompt="a person sits down") == {'FINISHED'}
    ext = arm.animation_data.action
    lo, hi = ext.frame_range
    assert (lo, hi) == (1.0, 111.0 + 40.0)
    w = tuple(ext["remomask_edit_window"])
    assert w[0] == 111 - 7 and w[1] >= 151           # the last 8 frames (0.4 s) blend into the new motion
    scenes.assert_identical(scenes.outside(snap, w), scenes.outside(scenes.snapshot(ext), w))
    # lead in, on top of the extended version (v3 made from v2)
    assert _edit('LEAD_IN', seconds=1.0) == {'FINISHED'}
    lead = arm.animation_data.action
    assert lead.name == f"{act.name}.v3" and lead["remomask_edit_of"] == ext.name
    assert tuple(lead.frame_range) == (1.0 - 20.0, 151.0)
    w2 = tuple(lead["remomask_edit_window"])
    assert w2 == (-19, 1 + 7)                      # 20 new frames, then the first 8 frames blend
    scenes.assert_identical(scenes.outside(scenes.snapshot(ext), w2), scenes.outside(scenes.snapshot(lead), w2))


def test_samples_flip_then_accept_or_discard(scene):
    arm, act = _rig("smpl")
    assert _edit('REGENERATE', range_start=40, range_end=80, prompt="a person jumps", samples=3) == {'FINISHED'}
    from remomask_addon.ops import edit as edit_ops
    cands = edit_ops.pending_of(arm)
    assert len(cands) == 3 and arm.animation_data.action == cands[0]
    with pytest.raises(RuntimeError, match="Accept or discard the samples"):
        _edit('REGENERATE', samples=1)
    heights = []
    for c in cands:
        assert bpy.ops.remomask.edit_use_version(action=c.name) == {'FINISHED'}
        heights.append(_joints(arm, (60, 60))[0, 0, 1])
    assert heights[0] < heights[1] < heights[2]    # three different variations (0.25, 0.35, 0.45 m lifts)
    keep = cands[1].name
    bpy.ops.remomask.edit_use_version(action=keep)
    assert bpy.ops.remomask.edit_accept() == {'FINISHED'}
    kept = arm.animation_data.action
    assert kept.name == f"{act.name}.v2" and not edit_ops.pending_of(arm)
    assert sum(1 for a in bpy.data.actions if a.get("remomask_edit_root") == act.name) == 1
    # discard: the samples go, the version they were made from plays again
    assert _edit('REGENERATE', range_start=40, range_end=80, samples=2) == {'FINISHED'}
    assert len(edit_ops.pending_of(arm)) == 2
    assert bpy.ops.remomask.edit_discard() == {'FINISHED'}
    assert arm.animation_data.action == kept
    assert sum(1 for a in bpy.data.actions if a.get("remomask_edit_root") == act.name) == 1


def test_faults_give_one_message_and_change_nothing(scene):
    from remomask_addon.ops import session
    arm, act = _rig("smpl")
    ep = scene.remomask_edit
    ep.prompt = "a person jumps"
    before = scenes.everything(bpy)

    def fails(match, **kw):
        with pytest.raises(RuntimeError, match=match):
            _edit(kw.pop("op", 'REGENERATE'), **kw)
        assert scenes.everything(bpy) == before
        assert not session._JOBS

    fails("outside the action's keys", range_start=100, range_end=160)
    fails("prompt for the edit first", range_start=40, range_end=80, prompt=" ")
    ep.prompt = "a person jumps"
    fails("too short", range_start=40, range_end=50)
    bpy.ops.object.mode_set(mode='EDIT')
    fails("is in Edit Mode; switch to Object or Pose Mode", range_start=40, range_end=80)
    bpy.ops.object.mode_set(mode='OBJECT')
    bpy.context.view_layer.objects.active = None
    fails("Select an armature to edit", range_start=40, range_end=80)
    # an armature whose action has no keys
    _select(arm)
    empty = bpy.data.actions.new("Empty")
    arm.animation_data.action = empty
    with pytest.raises(RuntimeError, match="'Empty' has no keys"):
        _edit('REGENERATE', range_start=40, range_end=80)
    arm.animation_data.action = act
    bpy.data.actions.remove(empty)
    assert scenes.everything(bpy) == before
    # the backend dies mid-edit: the error is the status, nothing written
    scene_client = session._CLIENT
    scene_client.die = True
    fails("Edit failed \\(backend_died\\): The backend stopped", range_start=40, range_end=80)
    assert scene.remomask.status_is_error
    scene_client.die = False
    # a result that cannot be written (its second sample changed nothing inside the range): nothing is
    session._CLIENT.stray_sample = 1
    fails("Could not apply the edit: The generator changed no frame inside the range", range_start=40,
          range_end=80, samples=2)
    session._CLIENT.stray_sample = None
    ep.samples = 1
    # cancelled while running: the late result is dropped
    assert bpy.ops.remomask.edit(op='REGENERATE') == {'FINISHED'}
    assert session.cancel_job(scene)
    assert session._CLIENT.cancelled == len(session._CLIENT.requests)
    assert any("result" in e for e in session._CLIENT.events)   # a late result, dropped
    session.poll_once()
    assert scene.remomask.status == "Cancelled." and scenes.everything(bpy) == before
    # the armature plays another action when the result arrives: nothing is written
    assert bpy.ops.remomask.edit(op='REGENERATE') == {'FINISHED'}
    source = session._CLIENT.requests[-1][1]["source"]
    other = bpy.data.actions.new("Other")
    arm.animation_data.action = other
    session.poll_once()
    assert scene.remomask.status_is_error and "plays another action than 'Hand keyed'" in scene.remomask.status
    arm.animation_data.action = act
    bpy.data.actions.remove(other)
    assert scenes.everything(bpy) == before
    session.remove_timer()
    # no read-back source is left behind, whatever the end
    assert not os.path.exists(source)
    assert all(not os.path.exists(r[1]["source"]) for r in session._CLIENT.requests)


def test_an_edit_runs_beside_a_library_job_but_not_beside_a_generation(scene):
    """Edit shares the Generate panel (its progress, status and Cancel) with Generate and Timeline: one of them at a
    time. A library job is the Library panel's: the edit is sent (the backend queues it) and says so, and the
    Generate panel's Cancel stops the edit, not the library job."""
    from remomask_addon.ops import session
    _rig("smpl")
    ep = scene.remomask_edit
    ep.prompt, ep.range_start, ep.range_end = "a person jumps", 40, 80
    before = scenes.everything(bpy)
    client = session._CLIENT
    session.add_job(900, {"kind": "generate", "scene": scene.name, "target": 'NEW', "prompt": "a person walks"})
    with pytest.raises(RuntimeError, match="A generation is already running; wait for it or press Cancel."):
        bpy.ops.remomask.edit(op='REGENERATE')
    assert not client.requests and scenes.everything(bpy) == before
    del session._JOBS[900]
    library_errors = []
    session.add_job(901, {"kind": "library_search", "scene": scene.name,
                          "on_error": lambda job, sc, err: library_errors.append(err)})
    assert bpy.ops.remomask.edit(op='REGENERATE') == {'FINISHED'}
    assert len(client.requests) == 1 and scene.remomask.stage == "queued after a library search"
    assert bpy.ops.remomask.cancel() == {'FINISHED'}
    assert client.cancelled == 1 and not session._JOBS[901].get("cancelled")
    session.poll_once()                         # the edit's late result is dropped
    assert scene.remomask.status == "Cancelled." and scenes.everything(bpy) == before
    assert list(session._JOBS) == [901] and not library_errors
    assert not os.path.exists(client.requests[0][1]["source"])
    session.remove_timer()


def test_a_rig_with_unmapped_bones_is_refused(scene):
    rig = scenes.mixamo_rig(bpy, skip=("mixamorig:LeftForeArm", "mixamorig:LeftHand", "mixamorig:LeftHandIndex1"))
    rig.animation_data_create()
    pb = rig.pose.bones["mixamorig:Hips"]
    for f in (1, 40):
        pb.location.x = f / 100
        pb.keyframe_insert("location", frame=f)
    _select(rig)
    scene.remomask.bone_map = 'mixamo'
    before = scenes.everything(bpy)
    with pytest.raises(RuntimeError, match="Cannot edit 'Mixamo'.*LeftForeArm"):
        _edit('REGENERATE', range_start=5, range_end=35, prompt="jumps")
    assert scenes.everything(bpy) == before


def test_panel_draws_range_source_and_versions(scene):
    from remomask_addon.ui import edit_panel
    arm, act = _rig("smpl")
    assert edit_panel.range_text(bpy.context) == "Range: 1-60 (typed range)"
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 30, 90
    assert edit_panel.range_text(bpy.context) == "Range: 30-90 (preview range)"
    scene.use_preview_range = False
    from remomask_addon.blender import anim_compat
    fcs = anim_compat.fcurves(act)
    for kp in fcs[3].keyframe_points:
        kp.select_control_point = kp.co[0] in (41.0, 71.0)
    assert edit_panel.range_text(bpy.context) == "Range: 41-71 (selected keys)"
    for fc in fcs:                                  # every key selected (as new keys come) is no selection
        for kp in fc.keyframe_points:
            kp.select_control_point = True
    assert edit_panel.range_text(bpy.context) == "Range: 1-60 (typed range)"
    _deselect_keys(act)
    m1, m2 = scene.timeline_markers.new("a", frame=20), scene.timeline_markers.new("b", frame=70)
    m1.select = m2.select = True
    assert edit_panel.range_text(bpy.context) == "Range: 20-70 (selected markers)"
    assert _edit('REGENERATE', prompt="a person jumps") == {'FINISHED'}
    assert tuple(arm.animation_data.action["remomask_edit_window"]) == (20, 70)

    class Layout:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            def f(*a, **k):
                self.calls.append((name, a, k.get("text")))
                return self if name in ("column", "row", "box") else type("Op", (), {})()
            return f

    lay = Layout()
    panel = type("P", (), {"layout": lay})()
    edit_panel.REMOMASK_PT_edit.draw(panel, bpy.context)
    texts = [c[2] for c in lay.calls if c[2]]
    assert "Range: 20-70 (selected markers)" in texts
    assert any(t.startswith("v2 Hand keyed.v2: Regenerate 20-70: a person jumps") for t in texts), texts
    assert {"Regenerate Range", "In-between", "Extend", "Lead In", "Loop", "Change Body Part"} <= set(texts)
    assert any(t.startswith("Edited: Hand keyed.v2 (Regenerate 20-70") for t in texts), texts


@pytest.mark.parametrize("fps", [24, 30])
def test_other_scene_frame_rates(scene, fps):
    """At 24 and 30 fps the range is still the range (read back at 20 fps, keyed back at the scene's rate): keys
    outside bit-identical, the pose outside the user's neighbouring keys unchanged, seams continuous."""
    scene.render.fps = fps
    arm, act = _rig("smpl")
    snap = scenes.snapshot(act)

    def heads():
        out = []
        for f in range(1, 172):
            scene.frame_set(f)
            out.append([tuple(arm.matrix_world @ arm.pose.bones[n].head) for n in read_back.JOINT_NAMES])
        return np.asarray(out)

    src = heads()
    assert _edit('REGENERATE', range_start=60, range_end=120, prompt="a person jumps") == {'FINISHED'}
    new = arm.animation_data.action
    window = tuple(new["remomask_edit_window"])
    # inside the range; an end may move in by one frame where the scene frame falls between 20 fps samples
    assert 60 <= window[0] <= 61 and 119 <= window[1] <= 120, window
    scenes.assert_identical(scenes.outside(snap, window), scenes.outside(scenes.snapshot(new), window))
    out = heads()
    assert np.abs(out[:51] - src[:51]).max() == 0 and np.abs(out[120:] - src[120:]).max() == 0  # keys 51, 121
    assert (out[85:95, 0, 2] - src[85:95, 0, 2]).max() > 0.15            # raised in the middle (z-up)
    step = np.linalg.norm(np.diff(out, axis=0), axis=-1).max(axis=1)
    p99 = np.percentile(np.linalg.norm(np.diff(src, axis=0), axis=-1).max(axis=1), 99)
    for f in window:
        assert step[f - 4:f + 2].max() <= p99, (f, step[f - 4:f + 2].max(), p99)
