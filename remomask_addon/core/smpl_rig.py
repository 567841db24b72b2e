"""SMPL skeleton facts and numpy rotation/FK helpers (no bpy: usable and tested anywhere).

Names, parents, the template rest pose, rotation conversions and forward kinematics. The Blender
armature built from them is ``blender/armature.py``.

Conventions: rotations are 3x3 matrices acting on column vectors; quaternions are (w, x, y, z).
SMPL poses are local axis-angle rotations, joint 0 is the global root orientation; the world
rotation of joint j is G_j = G_parent(j) @ R_j, and its position is
p_j = p_parent + G_parent @ (rest_j - rest_parent), with the pelvis at rest_0 + trans.
"""

from __future__ import annotations

import numpy as np

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = 24
#: HumanML3D's 22 joints are the first 22 SMPL joints, in the same order.
NUM_HML_JOINTS = 22

#: The child each bone's tail points at (None: a leaf, the tail continues the parent's direction,
#: or points up for the head).
BONE_TAIL_CHILD = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, None, None, 15, 16, 17, None, 18, 19, 20, 21,
                   22, 23, None, None)
#: Length (metres) of leaf bones, which have no child joint to point at.
LEAF_BONE_LENGTH = {10: 0.08, 11: 0.08, 15: 0.18, 22: 0.08, 23: 0.08}

#: A plausible zero-pose (T-pose) SMPL-like skeleton, y-up metres, facing +Z: a copy of
#: ``smpl_fitting.skeleton.TEMPLATE_REST_JOINTS`` (pelvis at the origin; the add-on cannot import the backend,
#: tests/shared/test_shared_facts.py checks the copy), lifted by ``TEMPLATE_FLOOR_OFFSET`` so that the foot joints
#: are 1 cm above the floor. Used for joints-only imports and tests; SMPL fits carry their own ``rest_joints``.
TEMPLATE_REST_JOINTS_CENTRED = np.array([
    [0.000, 0.000, 0.000],     # pelvis
    [0.070, -0.090, -0.005],   # left_hip
    [-0.070, -0.090, -0.005],  # right_hip
    [0.000, 0.115, -0.025],    # spine1
    [0.105, -0.470, 0.005],    # left_knee
    [-0.105, -0.470, 0.005],   # right_knee
    [0.000, 0.250, 0.000],     # spine2
    [0.090, -0.870, -0.040],   # left_ankle
    [-0.090, -0.870, -0.040],  # right_ankle
    [0.000, 0.305, 0.005],     # spine3
    [0.120, -0.925, 0.080],    # left_foot
    [-0.120, -0.925, 0.080],   # right_foot
    [0.000, 0.515, -0.035],    # neck
    [0.075, 0.425, -0.025],    # left_collar
    [-0.075, 0.425, -0.025],   # right_collar
    [0.000, 0.600, 0.015],     # head
    [0.170, 0.470, -0.040],    # left_shoulder
    [-0.170, 0.470, -0.040],   # right_shoulder
    [0.430, 0.450, -0.060],    # left_elbow
    [-0.430, 0.450, -0.060],   # right_elbow
    [0.685, 0.460, -0.065],    # left_wrist
    [-0.685, 0.460, -0.065],   # right_wrist
    [0.770, 0.4633, -0.0667],  # left_hand
    [-0.770, 0.4633, -0.0667], # right_hand
], dtype=np.float64)
TEMPLATE_FLOOR_OFFSET = 0.935
TEMPLATE_REST_JOINTS = TEMPLATE_REST_JOINTS_CENTRED + np.array([0.0, TEMPLATE_FLOOR_OFFSET, 0.0])


# --------------------------------------------------------------------------- rotation helpers
def axis_angle_to_matrix(aa) -> np.ndarray:
    """Rodrigues: (..., 3) axis-angle -> (..., 3, 3) rotation matrices (float64)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    small = theta < 1e-12
    axis = aa / np.where(small, 1.0, theta)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    k = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    th = theta[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + np.sin(th) * k + (1.0 - np.cos(th)) * (k @ k)


def axis_angle_to_quaternion(aa) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) unit quaternions (w, x, y, z)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * theta
    # sin(theta/2)/theta, with its limit 1/2 near zero
    k = np.where(theta < 1e-8, 0.5 - theta * theta / 48.0, np.sin(half) / np.where(theta < 1e-8, 1.0, theta))
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def matrix_to_quaternion(m) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0 not enforced."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate magnitudes; pick the numerically safest per element.
    cand = np.stack([1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22,
                     1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22], axis=-1)
    best = np.argmax(cand, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, best[..., None], -1)[..., 0], 1e-30)) * 2.0
    q = np.empty(m.shape[:-2] + (4,))
    r21m12, r02m20, r10m01 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    r21p12, r02p20, r10p01 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    cases = [
        np.stack([0.25 * s, r21m12 / s, r02m20 / s, r10m01 / s], -1),
        np.stack([r21m12 / s, 0.25 * s, r10p01 / s, r02p20 / s], -1),
        np.stack([r02m20 / s, r10p01 / s, 0.25 * s, r21p12 / s], -1),
        np.stack([r10m01 / s, r02p20 / s, r21p12 / s, 0.25 * s], -1),
    ]
    for i, c in enumerate(cases):
        sel = best == i
        q[sel] = c[sel]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quaternion_to_matrix(q) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_axis_angle(m) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) axis-angle (angle in [0, pi])."""
    q = matrix_to_quaternion(m)
    q = np.where(q[..., :1] < 0, -q, q)
    vn = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(vn, q[..., :1])
    return q[..., 1:] * np.where(vn < 1e-12, 2.0, angle / np.maximum(vn, 1e-12))


def make_quaternions_continuous(q, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.
    (Flipping q_t must flip the comparison for q_t+1 too: a cumulative product of dot signs.)"""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    if q.shape[0] > 1:
        dots = np.einsum("...i,...i->...", q[1:], q[:-1])
        signs = np.cumprod(np.where(dots < 0.0, -1.0, 1.0), axis=0)
        q[1:] *= signs[..., None]
    return np.moveaxis(q, 0, axis)


def slerp(q0, q1, u) -> np.ndarray:
    """Spherical interpolation between quaternion arrays (..., 4), weight u broadcast on (...)."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.array(q1, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)[..., None]
    dot = np.einsum("...i,...i->...", q0, q1)[..., None]
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    near = sin_t < 1e-6
    safe = np.where(near, 1.0, sin_t)
    w0 = np.where(near, 1.0 - u, np.sin((1.0 - u) * theta) / safe)
    w1 = np.where(near, u, np.sin(u * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- kinematics
def forward_kinematics(rest_joints, poses, trans):
    """World joint positions (T, 24, 3) and world rotations (T, 24, 3, 3), y-up.

    rest_joints (24, 3), poses (T, 24, 3) local axis-angle, trans (T, 3). The pelvis sits at
    rest_joints[0] + trans[t] and rotates about itself (the way smplx applies ``transl``).
    """
    rest = np.asarray(rest_joints, dtype=np.float64)
    local = axis_angle_to_matrix(poses)
    trans = np.asarray(trans, dtype=np.float64)
    T = local.shape[0]
    glob = np.empty_like(local)
    pos = np.empty((T, NUM_JOINTS, 3))
    glob[:, 0] = local[:, 0]
    pos[:, 0] = rest[0] + trans
    for j in range(1, NUM_JOINTS):
        p = SMPL_PARENTS[j]
        glob[:, j] = glob[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + glob[:, p] @ (rest[j] - rest[p])
    return pos, glob


def bone_tails(rest_joints) -> np.ndarray:
    """Tail positions (24, 3) for bones whose heads are at ``rest_joints`` (any frame, any up axis
    as long as ``up`` below matches: the head bone's tail points along the parent's direction)."""
    rest = np.asarray(rest_joints, dtype=np.float64)
    tails = np.empty_like(rest)
    for j in range(NUM_JOINTS):
        c = BONE_TAIL_CHILD[j]
        if c is not None and np.linalg.norm(rest[c] - rest[j]) > 1e-4:
            tails[j] = rest[c]
            continue
        p = SMPL_PARENTS[j]
        d = rest[j] - rest[p] if p >= 0 else np.array([0.0, 1.0, 0.0])
        n = np.linalg.norm(d)
        d = d / n if n > 1e-6 else np.array([0.0, 1.0, 0.0])
        tails[j] = rest[j] + d * LEAF_BONE_LENGTH.get(j, 0.05)
    return tails
