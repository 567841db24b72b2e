"""Lay several generated takes end to end on the NLA, with root motion that continues.

``lay_out_nla(armature, actions, blend_frames=5)``:
- take k starts ``blend_frames`` frames before take k-1 ends (they overlap by that many frames);
- root continuity is baked into the takes' root channels: take k is turned about the vertical
  axis and moved on the ground so that its first frame starts where take k-1 is on the frame where
  take k begins (same ground position and heading; height untouched). With blend_frames == 0 the
  target is take k-1 extrapolated one frame past its end. NLA strips cannot carry transforms, so
  the offsets live in the actions (the actions are edited in place: pass fresh takes);
- strips alternate between two tracks; every upper-track strip blends in over the overlap with
  the strip below it and blends out over the next overlap (lower-track strips stay at full
  influence), so each join is a linear cross-fade; every bone's quaternions in take k are put in
  the same hemisphere as take k-1's at the join so the cross-fade never passes through zero;
- the active action is cleared so the NLA plays.
Returns the strips in order. ``motion_to_armature.import_batch`` keys motions and lays them out in one call.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import smpl_rig
from ..core.channels import ROOT_BONE
from . import anim_compat, keying
from .armature import armature_rest_matrices

TRACK_NAMES = ("ReMoMask A", "ReMoMask B")
_FORWARD_REST = np.array([0.0, -1.0, 0.0])  # the SMPL body faces -Y in Blender (coords.py)


def _rot_curves(action, slot, bone):
    path = keying.bone_path(bone, "rotation_quaternion")
    return [anim_compat.find_fcurve(action, path, i, slot) for i in range(4)]


def _root_curves(action, slot):
    bone = ROOT_BONE
    loc = [anim_compat.find_fcurve(action, keying.bone_path(bone, "location"), i, slot) for i in range(3)]
    rot = _rot_curves(action, slot, bone)
    if any(fc is None for fc in loc + rot):
        raise ValueError(f"action '{action.name}' has no pelvis location/rotation_quaternion keys "
                         "(key it with keying.key_motion)")
    return loc, rot


def _read(curves):
    frames = None
    cols = []
    for fc in curves:
        f, v = anim_compat.read_keys(fc)
        if frames is None:
            frames = f
        elif f.shape != frames.shape:
            raise ValueError("root channels of one action have different key counts")
        cols.append(v)
    return frames, np.stack(cols, -1)


def _yaw(world_rot):
    """Heading (radians about +Z) of the body's forward axis. When the pelvis faces nearly up or
    down (lying, flipping), the left-right axis gives the heading instead."""
    f = world_rot @ _FORWARD_REST
    if math.hypot(f[0], f[1]) >= 0.3:
        return math.atan2(f[1], f[0])
    left = world_rot @ np.array([1.0, 0.0, 0.0])  # rest left (+X) is forward (-Y) turned by +90 deg
    return math.atan2(left[1], left[0]) - math.pi / 2


def _rz(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _world_root(B0, head0, loc, quat):
    """World (armature-space) pelvis positions (N,3) and rotations (N,3,3) from channels."""
    L = smpl_rig.quaternion_to_matrix(quat)
    W = B0[None] @ L @ B0.T[None]
    pos = head0 + loc @ B0.T
    return pos, W


def _sample(frames, values, frame):
    """Linear sample of per-frame channel values at ``frame`` (extrapolates past the ends)."""
    n = frames.shape[0]
    if n == 1:
        return values[0]
    i = int(np.clip(np.searchsorted(frames, frame) - 1, 0, n - 2))
    u = (frame - frames[i]) / (frames[i + 1] - frames[i])
    return values[i] * (1 - u) + values[i + 1] * u


def _bone_quats_at(action, slot, frame):
    """{bone: quaternion at frame} (sampled from keys) for all SMPL bones present."""
    out = {}
    for bone in smpl_rig.SMPL_JOINT_NAMES:
        curves = _rot_curves(action, slot, bone)
        if all(fc is not None for fc in curves):
            out[bone] = np.array([fc.evaluate(frame) for fc in curves])
    return out


def _match_hemispheres(action, slot, reference: dict, frame):
    """Negate a bone's whole quaternion track where it starts opposite to ``reference``."""
    for bone, q_ref in reference.items():
        curves = _rot_curves(action, slot, bone)
        if any(fc is None for fc in curves):
            continue
        q = np.array([fc.evaluate(frame) for fc in curves])
        if float(np.dot(q, q_ref)) < 0.0:
            for fc in curves:
                _, v = anim_compat.read_keys(fc)
                anim_compat.set_key_values(fc, -v)


def continue_root(armature, prev_action, action, align_frame_prev: float, prev_slot=None, slot=None):
    """Bake a ground-plane rotation + translation into ``action``'s root channels so that its first
    key matches ``prev_action`` at ``align_frame_prev`` (a frame in prev_action's own timing) in
    ground position and heading. Returns the (yaw, dx, dy) applied."""
    rest = armature_rest_matrices(armature)
    B0, head0 = rest[0, :3, :3], rest[0, :3, 3]
    p_loc, p_rot = _root_curves(prev_action, prev_slot)
    pf, ploc = _read(p_loc)
    _, prot = _read(p_rot)
    loc_c, rot_c = _root_curves(action, slot)
    f, loc = _read(loc_c)
    _, rot = _read(rot_c)

    target_loc = _sample(pf, ploc, align_frame_prev)
    i_near = int(np.clip(np.round(align_frame_prev - pf[0]), 0, len(pf) - 1))
    target_pos, _ = _world_root(B0, head0, target_loc[None], prot[i_near:i_near + 1])
    target_yaw = _yaw(_world_root(B0, head0, ploc[i_near:i_near + 1], prot[i_near:i_near + 1])[1][0])

    pos, W = _world_root(B0, head0, loc, rot)
    yaw = target_yaw - _yaw(W[0])
    Rz = _rz(yaw)
    pivot = np.array([pos[0, 0], pos[0, 1], 0.0])
    dest = np.array([target_pos[0, 0], target_pos[0, 1], 0.0])
    new_pos = (pos - pivot) @ Rz.T + dest
    new_W = Rz[None] @ W
    new_loc = (new_pos - head0) @ B0
    new_L = B0.T[None] @ new_W @ B0[None]
    q = smpl_rig.make_quaternions_continuous(smpl_rig.matrix_to_quaternion(new_L), axis=0)
    if float(np.dot(q[0], rot[0])) < 0:  # keep the original sign convention
        q = -q
    for i, fc in enumerate(loc_c):
        anim_compat.set_key_values(fc, new_loc[:, i])
    for i, fc in enumerate(rot_c):
        anim_compat.set_key_values(fc, q[:, i])
    return yaw, float(dest[0] - pivot[0]), float(dest[1] - pivot[1])


def lay_out_nla(armature, actions, blend_frames: int = 5, *, start_frame: int | None = None,
                continue_root_motion: bool = True):
    """Put ``actions`` end to end on ``armature``'s NLA (see the module doc). Returns the strips."""
    actions = list(actions)
    if not actions:
        raise ValueError("no actions to lay out")
    armature_rest_matrices(armature)  # raises if not an SMPL armature
    slots = [anim_compat.default_slot(a) for a in actions]
    ranges = []
    for a, s in zip(actions, slots):
        loc, _ = _root_curves(a, s)
        frames, _ = anim_compat.read_keys(loc[0])
        ranges.append((float(frames[0]), float(frames[-1])))
    b = max(0, int(blend_frames))
    shortest = min(r[1] - r[0] for r in ranges)
    if len(actions) > 1 and b > 0 and 2 * b >= shortest:
        b = max(0, int(shortest // 2) - 1)

    starts = [ranges[0][0] if start_frame is None else float(start_frame)]
    for k in range(1, len(actions)):
        prev_len = ranges[k - 1][1] - ranges[k - 1][0]
        starts.append(starts[k - 1] + prev_len + 1 - b)

    if continue_root_motion:
        for k in range(1, len(actions)):
            # the frame of take k-1 (in its own key timing) on which take k begins
            align = ranges[k - 1][0] + (starts[k] - starts[k - 1])
            continue_root(armature, actions[k - 1], actions[k], align, slots[k - 1], slots[k])
            ref = _bone_quats_at(actions[k - 1], slots[k - 1], min(align, ranges[k - 1][1]))
            _match_hemispheres(actions[k], slots[k], ref, ranges[k][0])

    ad = armature.animation_data or armature.animation_data_create()
    ad.action = None
    n_tracks = 2 if (b > 0 and len(actions) > 1) else 1
    tracks = []
    for i in range(n_tracks):
        tr = ad.nla_tracks.new()
        tr.name = TRACK_NAMES[i]
        tracks.append(tr)
    strips = []
    for k, (a, s) in enumerate(zip(actions, slots)):
        track = tracks[k % n_tracks]
        strip = track.strips.new(a.name, int(round(starts[k])), a)
        anim_compat.set_strip_slot(strip, s)
        strip.blend_type = "REPLACE"
        strip.use_auto_blend = False
        upper = n_tracks == 2 and k % 2 == 1
        strip.blend_in = float(b) if upper else 0.0
        strip.blend_out = float(b) if (upper and k < len(actions) - 1) else 0.0
        strips.append(strip)
    for k, strip in enumerate(strips):
        strip.extrapolation = "HOLD_FORWARD" if k == len(strips) - 1 else "NOTHING"
    return strips
