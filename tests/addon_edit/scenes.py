"""Scenes for the Edit-panel tests: an SMPL armature and a Mixamo-named rig, each with a hand-keyed action
(sparse keys, custom interpolation, handle types and handles), and snapshots of every keyframe point."""

from __future__ import annotations

import numpy as np

import importlib.util
from pathlib import Path

from remomask_addon.blender import anim_compat, motion_to_armature
from remomask_addon.blender.action_splice import read_points  # noqa: F401 - re-exported for the tests

_spec = importlib.util.spec_from_file_location(
    "addon_keying_motions", Path(__file__).resolve().parent.parent / "addon_keying" / "conftest.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
make_motion = _mod.make_motion      # the keying tests' synthetic SMPL motion


def keyed_smpl(bpy, T=120, seed=1):
    """An SMPL armature keyed with a synthetic motion by the add-on (dense keys, frames 1..T)."""
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=T, seed=seed, turn=0.2, amp=0.25),
                                              with_mannequin=False)
    return arm


def mixamo_rig(bpy, skip=()):
    import rigs
    return rigs.build_armature(bpy, "Mixamo", rigs.mixamo_bones(rigs.target_joints(leg_scale=1.1), skip=skip))


def keyed_mixamo(bpy, T=120, seed=1):
    rig = mixamo_rig(bpy)
    motion_to_armature.key_motions(bpy.context.scene, [make_motion(T=T, seed=seed, turn=0.2, amp=0.25)],
                                   armature=rig, placement=None, select=False)
    return rig


def hand_keyed(bpy, arm, step=10, name="Hand keyed"):
    """Thin the armature's action to one key every ``step`` frames (a new action, assigned) and give the keys
    the kinds of settings animators use: Bezier keys with FREE / VECTOR / ALIGNED handles moved by hand,
    CONSTANT and LINEAR segments, elastic easing, breakdown and extreme key types."""
    src = arm.animation_data.action
    act, slot = anim_compat.new_action(name, arm)
    rng = np.random.default_rng(0)
    for fc in anim_compat.fcurves(src):
        pts = read_points(fc)
        frames = pts["co"][::step, 0]
        vals = pts["co"][::step, 1]
        grp = fc.group.name if fc.group is not None else None
        new = anim_compat.new_fcurve(act, slot, fc.data_path, fc.array_index, group_name=grp)
        for f, v in zip(frames, vals):
            new.keyframe_points.insert(float(f), float(v), options={'FAST'})
        new.update()
        for i, kp in enumerate(new.keyframe_points):
            kind = (i + fc.array_index) % 5
            if kind == 0:
                kp.handle_left_type = kp.handle_right_type = 'FREE'
                kp.handle_left.y += float(rng.normal(0, 0.05))
                kp.handle_right.y += float(rng.normal(0, 0.05))
            elif kind == 1:
                kp.interpolation = 'CONSTANT'
            elif kind == 2:
                kp.interpolation = 'ELASTIC'
                kp.easing = 'EASE_OUT'
                kp.type = 'BREAKDOWN'
            elif kind == 3:
                kp.handle_left_type = kp.handle_right_type = 'VECTOR'
                kp.interpolation = 'LINEAR'
                kp.type = 'EXTREME'
    anim_compat.assign_action(arm, act, slot)
    return act


def snapshot(action) -> dict:
    """(data_path, index) -> every keyframe point property, plus the F-Curve's modifiers and settings."""
    out = {}
    for fc in anim_compat.fcurves(action):
        pts = read_points(fc)
        out[(fc.data_path, fc.array_index)] = {k: v.copy() for k, v in pts.items()}
        out[(fc.data_path, fc.array_index)]["_fc"] = (fc.extrapolation, fc.mute, len(fc.modifiers),
                                                      fc.group.name if fc.group else None)
    return out


def outside(snap: dict, window) -> dict:
    """The snapshot's points outside the window (inclusive)."""
    res = {}
    for key, pts in snap.items():
        f = pts["co"][:, 0]
        keep = (f < window[0] - 1e-3) | (f > window[1] + 1e-3)
        res[key] = {k: (v[keep] if k != "_fc" else v) for k, v in pts.items()}
    return res


def assert_identical(a: dict, b: dict, keys=None):
    """Bit-identical keyframe points (every property, byte for byte)."""
    keys = a.keys() if keys is None else keys
    for key in keys:
        assert key in b, key
        for prop, v in a[key].items():
            if prop == "_fc":
                continue
            w = b[key][prop]
            assert v.shape == w.shape, (key, prop, v.shape, w.shape)
            assert v.tobytes() == w.tobytes(), (key, prop)


def everything(bpy) -> tuple:
    """What must not change when an edit fails: the actions (names and every key), objects, NLA, assignments."""
    acts = {a.name: snapshot(a) for a in bpy.data.actions}
    flat = {n: {k: {p: v.tobytes() if hasattr(v, "tobytes") else v for p, v in d.items()} for k, d in s.items()}
            for n, s in acts.items()}
    objs = tuple(sorted((o.name, o.animation_data.action.name if o.animation_data and o.animation_data.action
                         else None, tuple(o.location)) for o in bpy.data.objects))
    return flat, objs
