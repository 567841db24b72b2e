"""Retarget an action from one armature (normally the SMPL armature made by ``keying``) onto another
rig with different bone names, proportions, rest pose (T-pose / A-pose) and bone rolls.

Three parts: the bone map (``core/bone_map.py``: presets, files, automatic maps from bone names), the solver
(``core/retarget.py``: rest alignment, per-frame rotations, facing, leg-length scaling and foot grounding, numpy
only; its docstring has the method), and this module, the Blender side: it reads both armatures into
``core.retarget.Rig``s, samples the source pose frame by frame (so NLA layouts, constraints and drivers on the
source are retargeted as they play), and writes the solution as keys through ``keying.write_bone_action`` (the
same bulk writer the SMPL keying uses), one key per frame, in each target bone's own rotation mode (quaternion,
axis-angle or any Euler order). One new action per call; the target's previous action is kept (it gets a fake
user if it would lose its last one).

Only bpy, mathutils, numpy and the standard library are used. Limits: bone constraints, drivers
and non-uniform bone scale on the target are not modelled (the keys assume plain parenting; bones
with "inherit rotation" off are handled); see the README's Retargeting section.
"""

from __future__ import annotations

import json

import numpy as np

import bpy
import mathutils

from ..core import bone_map as bone_maps
from ..core import smpl_rig
from ..core.bone_map import BoneMap, RetargetError
from ..core.retarget import Retargeter, Rig, check_scale_root
from . import keying

__all__ = ["BoneMap", "RetargetError", "auto_bone_map", "retarget_action", "rig_of"]


def _check_armature(obj, role: str) -> None:
    try:
        ok = obj is not None and obj.type == "ARMATURE"
    except (AttributeError, ReferenceError):
        ok = False
    if not ok:
        name = getattr(obj, "name", obj)
        kind = getattr(obj, "type", type(obj).__name__)
        raise RetargetError(f"{role} {name!r} is not an armature object (it is {kind})")


def _bone_pairs(armature):
    return [(b.name, b.parent.name if b.parent else None) for b in armature.data.bones]


def auto_bone_map(target_armature) -> BoneMap:
    """Guess a SMPL -> target bone map from the armature's bone names (``core.bone_map.auto_bone_map``)."""
    _check_armature(target_armature, "target")
    return bone_maps.auto_bone_map(_bone_pairs(target_armature))


def _character_matrix(obj) -> np.ndarray:
    """The object's scale as a 4x4 matrix: the "character space" in which poses are compared is
    armature space in real-world units, so a moved/rotated armature object plays the motion
    relative to itself (as any action does), and an FBX rig in centimetres with object scale 0.01
    works like one in metres."""
    m = np.eye(4)
    m[:3, :3] = np.diag(tuple(obj.matrix_world.to_scale()))
    return m


def rig_of(armature) -> Rig:
    """The armature's bones and object scale, as the solver sees them."""
    return Rig.from_bones(((b.name, b.parent.name if b.parent else None, np.array(b.matrix_local),
                            np.array(b.head_local), b.length, b.use_inherit_rotation)
                           for b in armature.data.bones), scale=_character_matrix(armature))


def _sample_source(source_armature, src_names, frames, scene):
    """Armature-space matrices (F, n, 4, 4) of the source pose bones, evaluated frame by frame."""
    out = np.empty((len(frames), len(src_names), 4, 4))
    for k, f in enumerate(frames):
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get() if scene == bpy.context.scene \
            else scene.view_layers[0].depsgraph
        ev = source_armature.evaluated_get(dg)
        pbs = ev.pose.bones
        for i, n in enumerate(src_names):
            out[k, i] = np.array(pbs[n].matrix)
    return out


def _frame_range(source_armature, frame_range):
    """(first, last) scene frames: the given range, else the source action's, else its NLA strips' span."""
    ad = source_armature.animation_data
    src_action = ad.action if ad is not None else None
    if frame_range is None:
        strips = [st for tr in (ad.nla_tracks if ad is not None else ()) if not tr.mute
                  for st in tr.strips if not st.mute]
        if src_action is not None:
            fr = src_action.frame_range
            frame_range = (int(round(fr[0])), int(round(fr[1])))
        elif strips:  # an NLA layout (batch.lay_out_nla): retarget what it plays
            frame_range = (int(round(min(st.frame_start for st in strips))),
                           int(round(max(st.frame_end for st in strips))))
        else:
            raise RetargetError(f"source armature {source_armature.name!r} has no action or NLA strips; "
                                "pass frame_range to retarget its current (driven) pose")
    try:
        f0, f1 = int(frame_range[0]), int(frame_range[1])
    except (TypeError, ValueError, IndexError):
        raise RetargetError(f"frame_range must be (first, last) integers, got {frame_range!r}") from None
    if f1 < f0:
        raise RetargetError(f"frame_range {frame_range!r}: last frame before first")
    return f0, f1


def _rotation_channel(mode: str, L):
    """(property, values (F, k)) of local rotations L (F, 3, 3) in a pose bone's rotation mode."""
    if mode == "QUATERNION":
        return "rotation_quaternion", smpl_rig.make_quaternions_continuous(smpl_rig.matrix_to_quaternion(L), axis=0)
    if mode == "AXIS_ANGLE":
        aa = smpl_rig.matrix_to_axis_angle(L)
        ang = np.linalg.norm(aa, axis=-1)
        ax = np.where(ang[:, None] > 1e-9, aa / np.maximum(ang[:, None], 1e-12), [0.0, 1.0, 0.0])
        return "rotation_axis_angle", np.concatenate([ang[:, None], ax], axis=1)
    eul, prev = np.empty((L.shape[0], 3)), None
    for fi in range(L.shape[0]):   # Euler: mathutils keeps each frame compatible with the previous one
        m = mathutils.Matrix(L[fi].tolist())
        e = m.to_euler(mode, prev) if prev is not None else m.to_euler(mode)
        eul[fi] = tuple(e)
        prev = e
    return "rotation_euler", eul


def retarget_action(source_armature, target_armature, bone_map=None, *, frame_range=None,
                    action_name=None, scale_root="leg_length", keep_feet_on_ground=True,
                    snap_contacts=True, scene=None, lock_feet=True):
    """Copy the source armature's animation onto ``target_armature`` as a new action.

    bone_map: ``{source_bone: target_bone}`` dict, a preset name (``"mixamo"``, ``"rigify"``), a
    JSON path, or None for ``auto_bone_map(target_armature)``. frame_range: ``(first, last)``
    scene frames (default: the source action's frame range, or the span of its NLA strips when it
    has no active action; the source is evaluated frame by frame, so NLA layouts, constraints and
    drivers on the source are retargeted as they play). scale_root: ``"leg_length"``
    (target/source leg length), a number, or None (1.0). keep_feet_on_ground: lift the body so
    the foot joints (ankle and toe heads) never go below their rest heights, and turn the toes up where their
    tips would; snap_contacts: also give the lowest one the source's height above its rest height where
    the source's feet touch the ground (``core/retarget.py``, "Foot grounding"); lock_feet: the target's ankles and toes stay where they are planted while the
    source's are (leg IK, ``core/foot_lock.py``), so a rig with other leg proportions does not slide. The new action is made the target's active action (its
    previous action is kept, with a fake user if needed); unmapped target bones are reset to rest.
    If mapped target bones carry constraints (which would override the keys), the action gets a
    ``remomask_retarget_warning`` custom property naming them, for the operator to report.
    Returns the action. Raises RetargetError before changing anything.
    """
    _check_armature(source_armature, "source")
    _check_armature(target_armature, "target")
    if source_armature == target_armature:
        raise RetargetError("source and target are the same armature")
    for obj in (source_armature, target_armature):
        if obj.mode == "EDIT":
            raise RetargetError(f"armature {obj.name!r} is in Edit Mode; switch to Object or Pose Mode first")
    scene = scene or bpy.context.scene
    bm = bone_maps.resolve_map(bone_map, source_armature.data.bones, target_armature.data.bones,
                               source_name=source_armature.name, target_name=target_armature.name,
                               auto=lambda: auto_bone_map(target_armature))
    f0, f1 = _frame_range(source_armature, frame_range)
    check_scale_root(scale_root)

    solver = Retargeter(rig_of(source_armature), rig_of(target_armature), bm, scale_root=scale_root)
    frames = np.arange(f0, f1 + 1)
    prev_frame, prev_sub = scene.frame_current, scene.frame_subframe
    try:
        pose = _sample_source(source_armature, solver.source_bones, frames, scene)
    finally:
        scene.frame_set(prev_frame, subframe=prev_sub)
    sol = solver.solve(pose, fps=keying.scene_fps_of(scene), keep_feet_on_ground=keep_feet_on_ground,
                       snap_contacts=snap_contacts, lock_feet=lock_feet)

    pbs = target_armature.pose.bones
    channels = []
    for tname, L in sol.rotations.items():
        if tname == sol.root_bone:
            channels.append((tname, "location", sol.root_location))
        channels.append((tname, *_rotation_channel(pbs[tname].rotation_mode, L)))
    ad = source_armature.animation_data
    src_action = ad.action if ad is not None else None
    name = action_name or (f"{src_action.name} -> {target_armature.name}" if src_action
                           else f"Retarget -> {target_armature.name}")
    action, slot = keying.write_bone_action(target_armature, name, frames.astype(np.float64), channels)

    action["remomask_retarget_source"] = source_armature.name
    constrained = sorted(t for t in bm.values()
                         if any(not c.mute and c.influence > 0 for c in pbs[t].constraints))
    if constrained:
        action["remomask_retarget_warning"] = (
            "constraints on these target bones override or change the retargeted keys: " + ", ".join(constrained))
    action["remomask_bone_map"] = json.dumps(dict(bm))
    action["remomask_root_scale"] = float(sol.root_scale)
    if src_action is not None and "remomask_prompt" in src_action:
        action["remomask_prompt"] = str(src_action["remomask_prompt"])
    keying.activate_action(target_armature, action, slot)
    return action
