"""SMPL motion -> pose-bone channel values (numpy only): the keyed local rotations and root location of an SMPL
armature, resampled to the scene's frame rate, and the action name a motion gets.

Math (all rotations act on column vectors; armature space is Blender z-up, C = coords.YUP_TO_ZUP):
a pose bone's armature-space matrix is P_j = P_parent @ (M_parent^-1 @ M_j) @ L_j, where M is the
bone's rest matrix (``bone.matrix_local``, rotation part B_j) and L_j the keyed local transform.
Asking P_j's rotation to be W_j @ B_j with W_j = C @ G_j @ C^T (the SMPL world rotation in z-up)
gives the keyed local rotation

    L_j = B_j^T @ (C @ R_j @ C^T) @ B_j          (R_j: the SMPL local rotation, y-up)

whatever the bone rolls are, and the pelvis location L_0 = B_0^T @ (C @ (rest_0 + trans) - head_0).
Every other bone keeps its rest offset from its parent, so its head lands exactly on the FK joint.

The motion is resampled from its fps to the scene's (slerp for rotations, linear for the root location), with
quaternions made sign-continuous. ``blender/keying.py`` writes the result as keys.
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import coords, smpl_rig

ROOT_BONE = smpl_rig.SMPL_JOINT_NAMES[0]
MAX_NAME_CHARS = 48


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
