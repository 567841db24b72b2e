"""Root motion toggles on an armature's action: *In place* and *Extract root motion* (the maths is
``core/root_motion.py``).

Either works on any rig the add-on keys or retargets onto (the SMPL armature, Mixamo, Rigify, a custom map) and
on any action with location keys on its hips. It never edits the action it is given: it makes a COPY
(``Action.copy()``: every other bone's keys stay bit-identical), rewrites only the hips' channels there (and
the root bone's, for extraction) with one key per frame of the action's range, and makes the copy the active
action. The copy remembers its mode and its source (custom properties ``remomask_root_motion``,
``remomask_root_source``), so the operator can toggle back to the original.

Extraction needs a root bone above the hips: a rig whose hips have no parent gets one (``root``, at the
armature's origin on the floor, pointing forward along -Y), added in Edit Mode; bones keep their rest, so every
other action of the rig plays as before (the root stays at rest where it is not keyed). A hips bone whose parent
is a top-level bone (an existing ``root``) uses that parent.
"""

from __future__ import annotations

import numpy as np

import bpy
import mathutils

from ..core import root_motion as rm
from ..core.retarget import orthonormal
from . import anim_compat, keying
from .retarget import _rotation_channel

#: Suffix of the copies' names, per mode.
SUFFIX = {rm.IN_PLACE: "in place", rm.EXTRACT: "root motion"}
_ROTATION_PROPS = ("rotation_quaternion", "rotation_euler", "rotation_axis_angle")


def _bone_of(path: str):
    if path.startswith('pose.bones["'):
        end = path.find('"]', 12)
        if end > 0:
            return path[12:end].replace('\\"', '"').replace("\\\\", "\\"), path[end + 3:]
    return None, None


def keyed_channels(action) -> dict:
    """{bone: set of properties} of the pose-bone F-Curves of ``action`` (its first slot)."""
    out: dict = {}
    for fc in anim_compat.fcurves(action):
        bone, prop = _bone_of(fc.data_path)
        if bone is not None:
            out.setdefault(bone, set()).add(prop)
    return out


def hips_bone(armature, action) -> str:
    """The topmost bone with location keys in ``action`` (the bone that carries the travel)."""
    keyed = keyed_channels(action)
    bones = armature.data.bones
    cands = [b for b, props in keyed.items() if "location" in props and b in bones]
    if not cands:
        raise rm.RootMotionError(f"Action '{action.name}' moves no bone (no location keys): nothing to put in "
                                 "place or extract.")

    def depth(name):
        d, b = 0, bones[name]
        while b.parent is not None:
            d, b = d + 1, b.parent
        return d

    hips = min(cands, key=lambda n: (depth(n), n))
    parent = bones[hips].parent
    while parent is not None:
        if parent.name in keyed:
            raise rm.RootMotionError(f"'{hips}' moves under the keyed bone '{parent.name}'; apply root motion to "
                                     "an action whose topmost moving bone is the hips.")
        parent = parent.parent
    return hips


def _eval(fc, frames, default):
    if fc is None:
        return np.full(len(frames), default, dtype=np.float64)
    return np.array([fc.evaluate(float(f)) for f in frames], dtype=np.float64)


def basis_matrices(action, bone: str, rotation_mode: str, frames) -> np.ndarray:
    """(F, 4, 4) location @ rotation of ``bone`` keyed in ``action`` at ``frames`` (its scale is left out: it is
    applied after both and never changed here)."""
    path = keying.bone_path
    loc = np.stack([_eval(anim_compat.find_fcurve(action, path(bone, "location"), i), frames, 0.0)
                    for i in range(3)], -1)
    out = np.broadcast_to(np.eye(4), (len(frames), 4, 4)).copy()
    out[:, :3, 3] = loc
    if rotation_mode == "QUATERNION":
        q = np.stack([_eval(anim_compat.find_fcurve(action, path(bone, "rotation_quaternion"), i), frames,
                            1.0 if i == 0 else 0.0) for i in range(4)], -1)
        rots = [mathutils.Quaternion(v).normalized().to_matrix() for v in q]
    elif rotation_mode == "AXIS_ANGLE":
        a = np.stack([_eval(anim_compat.find_fcurve(action, path(bone, "rotation_axis_angle"), i), frames,
                            1.0 if i == 2 else 0.0) for i in range(4)], -1)
        rots = [mathutils.Matrix.Rotation(v[0], 3, mathutils.Vector(v[1:]).normalized()) for v in a]
    else:
        e = np.stack([_eval(anim_compat.find_fcurve(action, path(bone, "rotation_euler"), i), frames, 0.0)
                      for i in range(3)], -1)
        rots = [mathutils.Euler(v, rotation_mode).to_matrix() for v in e]
    out[:, :3, :3] = np.array([np.array(r) for r in rots])
    return out


def action_frames(action) -> np.ndarray:
    lo, hi = action.frame_range
    lo, hi = int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6))
    return np.arange(lo, max(hi, lo) + 1, dtype=np.float64)


def _rest(armature, name) -> np.ndarray:
    return np.array(armature.data.bones[name].matrix_local)


def hips_pose(armature, action, hips: str, frames) -> np.ndarray:
    """Armature-space pose matrices (F, 4, 4) of the hips (their ancestors are not keyed: they stay at rest)."""
    pb = armature.pose.bones[hips]
    return _rest(armature, hips)[None] @ basis_matrices(action, hips, pb.rotation_mode, frames)


def ensure_root_bone(armature, hips: str) -> str:
    """The root bone above ``hips``: its parent when that is a top-level bone, else a new bone ``root`` (a unique
    name) at the armature's origin, made the hips' parent (rest poses unchanged)."""
    bone = armature.data.bones[hips]
    if bone.parent is not None:
        if bone.parent.parent is not None:
            raise rm.RootMotionError(f"'{hips}' is not directly under a top-level bone; cannot add a root bone.")
        return bone.parent.name
    view_layer = bpy.context.view_layer
    prev_active, prev_mode = view_layer.objects.active, armature.mode
    if prev_active is not None and prev_active.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    # size the bone for the rig: a fifth of the hips' rest height, in the armature's own units
    length = max(abs(bone.head_local[2]) * 0.2, 1e-3) if abs(bone.head_local[2]) > 1e-6 else 0.2
    view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        eb = armature.data.edit_bones
        name = rm.ROOT_BONE_NAME
        k = 1
        while name in eb:
            name = f"{rm.ROOT_BONE_NAME}.{k:03d}"
            k += 1
        root = eb.new(name)
        root.head = (0.0, 0.0, 0.0)
        root.tail = (0.0, -length, 0.0)
        root.roll = 0.0
        root.use_deform = False
        eb[hips].use_connect = False
        eb[hips].parent = root
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = prev_active
        if prev_active is not None and prev_mode != "OBJECT" and prev_active == armature:
            bpy.ops.object.mode_set(mode=prev_mode)
    pb = armature.pose.bones[name]
    pb.rotation_mode = "QUATERNION"
    return name


def _replace_channels(action, slot, bone: str, props, frames, channels) -> None:
    """Remove ``bone``'s F-Curves for ``props`` from the action and write ``channels`` ((prop, values) pairs)."""
    for fc in list(anim_compat.fcurves(action, slot)):
        b, p = _bone_of(fc.data_path)
        if b == bone and p in props:
            anim_compat.remove_fcurve(action, fc, slot)
    for prop, values in channels:
        values = np.asarray(values)
        for c in range(values.shape[1]):
            fc = anim_compat.new_fcurve(action, slot, keying.bone_path(bone, prop), c, group_name=bone)
            anim_compat.write_keys(fc, frames, values[:, c])


def source_action(action):
    """The action a root-motion copy was made from (None when ``action`` is no such copy or it is gone)."""
    name = action.get("remomask_root_source") if action is not None else None
    return bpy.data.actions.get(name) if name else None


def apply_root_motion(armature, mode: str, *, action=None, scene=None, smooth_s: float = rm.DEFAULT_SMOOTH_S):
    """A copy of ``action`` (default: the armature's active action) in place or with its root motion extracted,
    made the active action; returns it. The original is kept (with a fake user). Raises RootMotionError before
    changing anything, except that extraction may first add the root bone (``ensure_root_bone``)."""
    if mode not in rm.MODES:
        raise rm.RootMotionError(f"mode must be one of {', '.join(rm.MODES)}, got {mode!r}")
    if armature is None or getattr(armature, "type", None) != "ARMATURE":
        raise rm.RootMotionError("Select an armature.")
    if armature.mode == "EDIT":
        raise rm.RootMotionError(f"'{armature.name}' is in Edit Mode; switch to Object or Pose Mode first.")
    ad = armature.animation_data
    action = action or (ad.action if ad is not None else None)
    if action is None:
        raise rm.RootMotionError(f"'{armature.name}' has no active action.")
    if action.get("remomask_root_motion"):
        raise rm.RootMotionError(f"'{action.name}' already has root motion applied "
                                 f"({action['remomask_root_motion']}); apply it to the original action.")
    hips = hips_bone(armature, action)
    frames = action_frames(action)
    scene = scene or bpy.context.scene
    fps = keying.scene_fps_of(scene)
    P = hips_pose(armature, action, hips, frames)
    hips_rest = _rest(armature, hips)
    if mode == rm.EXTRACT:
        root = ensure_root_bone(armature, hips)
        if root in keyed_channels(action):
            raise rm.RootMotionError(f"'{action.name}' already keys the root bone '{root}'.")
        root_local, hips_local = rm.extract_root(P, hips_rest, _rest(armature, root), fps=fps, smooth_s=smooth_s)
    else:
        hips_local = rm.local_transforms(rm.in_place(P), hips_rest)
    copy = action.copy()
    try:
        copy.name = f"{action.name} ({SUFFIX[mode]})"
        slot = anim_compat.default_slot(copy)
        pb = armature.pose.bones[hips]
        loc, rot = rm.split_local(hips_local)
        channels = [("location", loc)]
        if mode == rm.EXTRACT:
            channels.append(_rotation_channel(pb.rotation_mode, orthonormal(rot)))
            props = ("location",) + _ROTATION_PROPS
        else:
            props = ("location",)
        _replace_channels(copy, slot, hips, props, frames, channels)
        if mode == rm.EXTRACT:
            rloc, rrot = rm.split_local(root_local)
            rpb = armature.pose.bones[root]
            _replace_channels(copy, slot, root, ("location",) + _ROTATION_PROPS, frames,
                              [("location", rloc), _rotation_channel(rpb.rotation_mode, orthonormal(rrot))])
            copy["remomask_root_bone"] = root
        copy["remomask_root_motion"] = mode
        copy["remomask_root_source"] = action.name
        copy["remomask_hips_bone"] = hips
    except Exception:
        bpy.data.actions.remove(copy)
        raise
    keying.activate_action(armature, copy, anim_compat.default_slot(copy))
    return copy


def restore_source(armature) -> object:
    """Make the original of the active root-motion copy the active action again (the copy is kept); returns it."""
    ad = armature.animation_data
    copy = ad.action if ad is not None else None
    src = source_action(copy)
    if src is None:
        raise rm.RootMotionError("The active action is not a root-motion copy, or its original is gone.")
    copy.use_fake_user = True
    keying.activate_action(armature, src, anim_compat.default_slot(src))
    return src
