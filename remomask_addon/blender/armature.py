"""The SMPL armature in Blender: build one from rest joints, recognise one, read its rest matrices.

The skeleton facts (names, parents, template rest pose, bone tails) are ``core/smpl_rig.py``.
"""

from __future__ import annotations

import numpy as np

import bpy

from ..core import coords
from ..core.smpl_rig import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS, TEMPLATE_REST_JOINTS, bone_tails


def build_smpl_armature(context_or_collection, rest_joints=None, name: str = "SMPL"):
    """Create an armature object with the 24 SMPL bones and link it into a collection.

    ``context_or_collection``: a ``bpy.types.Context`` (the scene's active collection is used)
    or a ``bpy.types.Collection``. ``rest_joints``: (24, 3) zero-pose joints, y-up metres
    (default: ``TEMPLATE_REST_JOINTS``). Bone heads sit at the converted joints, tails point at
    the child joint (leaves continue their parent's direction). Rolls are Blender's default:
    keying (``keying.key_motion``) reads each bone's rest matrix and is exact for any roll.

    Switches the armature in and out of edit mode with ``bpy.ops.object.mode_set`` (no UI
    context needed); the previously active object is restored. Returns the armature object.
    """
    rest = TEMPLATE_REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    if rest.shape != (NUM_JOINTS, 3) or not np.all(np.isfinite(rest)):
        raise ValueError(f"rest_joints must be a finite (24, 3) array, got shape {rest.shape}")

    if isinstance(context_or_collection, bpy.types.Collection):
        collection = context_or_collection
        context = bpy.context
    else:
        context = context_or_collection
        collection = context.collection or context.scene.collection
    view_layer = context.view_layer

    heads = coords.points_to_zup(rest)
    tails = coords.points_to_zup(bone_tails(rest))

    prev_active = view_layer.objects.active
    if prev_active is not None and prev_active.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")

    arm_data = bpy.data.armatures.new(name)
    arm_obj = bpy.data.objects.new(name, arm_data)
    collection.objects.link(arm_obj)
    arm_data.display_type = "OCTAHEDRAL"
    arm_obj.show_in_front = True

    view_layer.objects.active = arm_obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebones = []
        for j, bname in enumerate(SMPL_JOINT_NAMES):
            eb = arm_data.edit_bones.new(bname)
            eb.head = heads[j].tolist()
            eb.tail = tails[j].tolist()
            eb.roll = 0.0
            eb.use_connect = False
            ebones.append(eb)
        for j, p in enumerate(SMPL_PARENTS):
            if p >= 0:
                ebones[j].parent = ebones[p]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")

    for pb in arm_obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    arm_obj["remomask_rest_joints_yup"] = rest.astype(np.float64).ravel().tolist()
    if prev_active is not None:
        view_layer.objects.active = prev_active
    return arm_obj


def is_smpl_armature(obj) -> bool:
    """True if ``obj`` is an armature object holding all 24 SMPL bone names."""
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        return False
    bones = obj.data.bones
    return all(n in bones for n in SMPL_JOINT_NAMES)


def armature_rest_matrices(armature) -> np.ndarray:
    """(24, 4, 4) rest matrices (armature space) of the SMPL bones, in SMPL joint order."""
    if not is_smpl_armature(armature):
        name = getattr(armature, "name", armature)
        raise ValueError(f"'{name}' is not an armature with the 24 SMPL bones "
                         "(build one with armature.build_smpl_armature)")
    bones = armature.data.bones
    return np.array([np.array(bones[n].matrix_local) for n in SMPL_JOINT_NAMES])
