"""Key a motion (SMPL local rotations + root translation) onto an SMPL armature.

Math (all rotations act on column vectors; armature space is Blender z-up, C = coords.YUP_TO_ZUP):
a pose bone's armature-space matrix is P_j = P_parent @ (M_parent^-1 @ M_j) @ L_j, where M is the
bone's rest matrix (``bone.matrix_local``, rotation part B_j) and L_j the keyed local transform.
Asking P_j's rotation to be W_j @ B_j with W_j = C @ G_j @ C^T (the SMPL world rotation in z-up)
gives the keyed local rotation

    L_j = B_j^T @ (C @ R_j @ C^T) @ B_j          (R_j: the SMPL local rotation, y-up)

whatever the bone rolls are, and the pelvis location L_0 = B_0^T @ (C @ (rest_0 + trans) - head_0).
Every other bone keeps its rest offset from its parent, so its head lands exactly on the FK joint.

Keys are written in bulk (``keyframe_points.add`` + ``foreach_set``), one key per scene frame,
after resampling from the motion's fps to the scene's (slerp for rotations, linear for the root
location), with quaternions made sign-continuous. One new action per call, never overwriting.
No bpy.ops are used.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .core import coords, motion_io, smpl_rig

# bpy (and anim_compat, which needs it) are imported inside the functions that touch Blender, so
# the numpy parts (bone_channels, resample_times, action_name_for_prompt) work without bpy.

ROOT_BONE = smpl_rig.SMPL_JOINT_NAMES[0]
MAX_NAME_CHARS = 48


def _rot_path(bone: str) -> str:
    return f'pose.bones["{bone}"].rotation_quaternion'


def _loc_path(bone: str) -> str:
    return f'pose.bones["{bone}"].location'


def action_name_for_prompt(prompt: str) -> str:
    """A readable action name from a prompt ("ReMoMask" when empty), at most 48 characters.
    Blender appends .001, .002 ... when the name is taken."""
    text = re.sub(r"\s+", " ", str(prompt or "")).strip()
    text = re.sub(r"[^\w .,'!?()-]", "", text)
    if not text:
        return "ReMoMask"
    if len(text) > MAX_NAME_CHARS:
        text = text[:MAX_NAME_CHARS].rstrip() + "~"
    return text


# --------------------------------------------------------------------------- pure numpy parts
def resample_times(num_frames: int, src_fps: float, dst_fps: float):
    """Source sample positions (float indices) for each destination frame, covering the motion's
    duration (T-1)/src_fps; the first destination frame is at source frame 0."""
    if num_frames <= 1:
        return np.zeros(1)
    duration = (num_frames - 1) / float(src_fps)
    n_out = int(math.floor(duration * dst_fps + 1e-6)) + 1
    s = np.arange(n_out) * (float(src_fps) / float(dst_fps))
    return np.minimum(s, num_frames - 1)


def _interp_linear(x, s):
    i0 = np.clip(np.floor(s).astype(int), 0, max(x.shape[0] - 2, 0))
    i1 = np.minimum(i0 + 1, x.shape[0] - 1)
    u = (s - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i0] * (1.0 - u) + x[i1] * u


def _interp_slerp(q, s):
    """q (T, J, 4) continuous quaternions; s (N,) float indices."""
    i0 = np.clip(np.floor(s).astype(int), 0, max(q.shape[0] - 2, 0))
    i1 = np.minimum(i0 + 1, q.shape[0] - 1)
    u = np.broadcast_to((s - i0)[:, None], (s.shape[0], q.shape[1]))
    return smpl_rig.slerp(q[i0], q[i1], u)


def bone_channels(rest_matrices, motion: dict, dst_fps: float | None = None):
    """Pose-bone channels for a validated motion.

    rest_matrices: (24, 4, 4) armature-space rest matrices of the SMPL bones (``bone.matrix_local``),
    in SMPL joint order. Returns ``(quats (N, 24, 4) w-first, root_loc (N, 3))`` sampled at
    ``dst_fps`` (default: the motion's own fps), quaternions sign-continuous over time.
    """
    rest_m = np.asarray(rest_matrices, dtype=np.float64)
    B = rest_m[:, :3, :3]
    head0 = rest_m[0, :3, 3]
    # L = B^T C R C^T B = D^T R D with D = C^T B: the same angle about the axis D^T a, so the
    # axis-angle vectors are just rotated (row form: a^T D) and turned into quaternions.
    D = coords.ZUP_TO_YUP[None] @ B                              # (24, 3, 3)
    aa_local = np.einsum("tja,jab->tjb", np.asarray(motion["poses"], dtype=np.float64), D)
    quats = smpl_rig.make_quaternions_continuous(smpl_rig.axis_angle_to_quaternion(aa_local), axis=0)
    pelvis = coords.points_to_zup(motion["rest_joints"][0] + motion["trans"])  # (T, 3)
    loc = (pelvis - head0) @ B[0]                                # B0^T (p - head0), row form
    src_fps = float(motion["fps"])
    if dst_fps is not None and abs(float(dst_fps) - src_fps) > 1e-9:
        s = resample_times(quats.shape[0], src_fps, float(dst_fps))
        quats = smpl_rig.make_quaternions_continuous(_interp_slerp(quats, s), axis=0)
        loc = _interp_linear(loc, s)
    return quats, loc


# --------------------------------------------------------------------------- Blender parts
def armature_rest_matrices(armature) -> np.ndarray:
    """(24, 4, 4) rest matrices (armature space) of the SMPL bones, in SMPL joint order."""
    from .blender.armature import is_smpl_armature

    if not is_smpl_armature(armature):
        name = getattr(armature, "name", armature)
        raise ValueError(f"'{name}' is not an armature with the 24 SMPL bones "
                         "(build one with armature.build_smpl_armature)")
    bones = armature.data.bones
    return np.array([np.array(bones[n].matrix_local) for n in smpl_rig.SMPL_JOINT_NAMES])


def scene_fps_of(scene) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


def _reset_pose(armature) -> None:
    for pb in armature.pose.bones:
        pb.rotation_mode = "QUATERNION"
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)


def write_action(armature, quats, root_loc, *, name: str, start_frame: int = 1):
    """Create a new action holding ``quats`` (N, 24, 4) and ``root_loc`` (N, 3) as one key per
    frame from ``start_frame`` (bulk writes). Returns ``(action, slot)``; does not assign it."""
    from . import anim_compat

    n = quats.shape[0]
    frames = np.arange(n, dtype=np.float64) + float(start_frame)
    action, slot = anim_compat.new_action(name, armature)
    for j, bone in enumerate(smpl_rig.SMPL_JOINT_NAMES):
        if j == 0:
            for i in range(3):
                fc = anim_compat.new_fcurve(action, slot, _loc_path(bone), i, group_name=bone)
                anim_compat.write_keys(fc, frames, root_loc[:, i])
        for i in range(4):
            fc = anim_compat.new_fcurve(action, slot, _rot_path(bone), i, group_name=bone)
            anim_compat.write_keys(fc, frames, quats[:, j, i])
    return action, slot


def key_motion(armature, motion: dict, *, action_name: str | None = None,
               scene_fps: float | None = None, start_frame: int = 1, scene=None):
    """Key ``motion`` onto the SMPL ``armature`` as a new action and make it the active action.

    motion: a dict as returned by ``motion_io.load_motion`` (or any mapping with poses, trans,
    rest_joints, fps, prompt; it is validated first). scene_fps: target frame rate (default:
    the scene's ``render.fps / fps_base``); the motion is resampled to it. start_frame: the scene
    frame of the motion's first sample. The action is named after the prompt (or
    ``action_name``); an existing action of that name is never touched (Blender picks
    "name.001"). A previously active action that would lose its last user gets a fake user, so
    it survives saving. Custom properties ``remomask_prompt``, ``remomask_seed``,
    ``remomask_source_fps`` are set on the action. Returns the action.
    Raises MotionFileError / ValueError before changing anything.
    """
    import bpy

    from . import anim_compat

    m = motion if "num_frames" in motion else motion_io.validate_motion(motion)
    rest_m = armature_rest_matrices(armature)
    if scene_fps is None:
        scene = scene or bpy.context.scene
        scene_fps = scene_fps_of(scene)
    if not (scene_fps > 0):
        raise ValueError(f"scene_fps must be positive, got {scene_fps}")

    quats, loc = bone_channels(rest_m, m, scene_fps)
    name = action_name or action_name_for_prompt(m.get("prompt", ""))
    action, slot = write_action(armature, quats, loc, name=name, start_frame=int(start_frame))
    action.use_fake_user = True
    action["remomask_prompt"] = str(m.get("prompt", ""))
    if m.get("seed") is not None:
        action["remomask_seed"] = int(m["seed"])
    action["remomask_source_fps"] = float(m["fps"])

    ad = armature.animation_data
    prev = ad.action if ad is not None else None
    if prev is not None and prev.users <= 1 and not prev.use_fake_user:
        prev.use_fake_user = True
    _reset_pose(armature)
    anim_compat.assign_action(armature, action, slot)
    return action


def remove_objects(objs) -> None:
    import bpy

    for ob in objs:
        data, kind = ob.data, ob.type
        bpy.data.objects.remove(ob, do_unlink=True)
        if data is not None and data.users == 0:
            (bpy.data.armatures if kind == "ARMATURE" else bpy.data.meshes).remove(data)


def import_motion(context, motion: dict, *, armature=None, name: str | None = None,
                  with_mannequin: bool = True, start_frame: int | None = None):
    """Convenience for operators: build an SMPL armature from the motion's rest joints (unless one
    is given), optionally a mannequin mesh, and key the motion at ``start_frame`` (default: the
    scene's start). Returns ``(armature, action)``. On error nothing it created is left behind."""
    m = motion if "num_frames" in motion else motion_io.validate_motion(motion)
    created = []
    try:
        if armature is None:
            armature = new_rig(context, m, name, with_mannequin, created)
        frame = context.scene.frame_start if start_frame is None else start_frame
        action = key_motion(armature, m, start_frame=frame, scene=context.scene)
    except Exception:
        remove_objects(reversed(created))
        raise
    return armature, action


def new_rig(context, m, name, with_mannequin, created):
    from . import mannequin

    from .blender.armature import build_smpl_armature

    armature = build_smpl_armature(context, m["rest_joints"], name=name or "ReMoMask")
    created.append(armature)
    if with_mannequin:
        created.append(mannequin.build_body(armature, m))
    return armature
