"""SMPL 24-joint kinematic tree, the HumanML3D 22-joint mapping, rotation helpers and forward kinematics.

Pure numpy/scipy. Conventions (shared with the Blender keying helper):

* y-up, metres, SMPL's native frame (the body faces +z, its left side is +x);
* ``poses[t, j]`` is the *local* axis-angle rotation of joint ``j`` relative to its parent, joint 0 is the
  global root orientation;
* ``rest_joints`` are the joint positions of the zero pose (T-pose);
* world joints = ``forward_kinematics(rest_joints, poses, trans)``: the pelvis sits at
  ``rest_joints[0] + trans[t]`` and rotates about itself (how ``smplx`` applies ``transl``).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_SMPL_JOINTS = 24
#: HumanML3D's 22 joints are SMPL joints 0..21 in the same order.
NUM_HML_JOINTS = 22
HML_TO_SMPL = tuple(range(NUM_HML_JOINTS))

# Named indices used by the solvers.
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD = range(10, 16)
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = range(16, 24)

#: An approximate SMPL-like neutral T-pose (metres, y-up, pelvis near the origin), used for bone
#: *directions* when no SMPL files are given and as the default body of the synthetic tests.
#: Hand offsets are collinear with the forearms.
TEMPLATE_REST_JOINTS = np.array([
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

_CHILDREN: list[list[int]] = [[] for _ in range(NUM_SMPL_JOINTS)]
for _j, _p in enumerate(SMPL_PARENTS):
    if _p >= 0:
        _CHILDREN[_p].append(_j)
SMPL_CHILDREN = tuple(tuple(c) for c in _CHILDREN)


def place_hands(joints22: np.ndarray, rest_joints: np.ndarray | None = None) -> np.ndarray:
    """(T, 22, 3) -> (T, 24, 3): hand joints extend each forearm by the rest wrist->hand length."""
    j = np.asarray(joints22, dtype=np.float64)
    rest = TEMPLATE_REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    out = np.empty(j.shape[:-2] + (NUM_SMPL_JOINTS, 3))
    out[..., :NUM_HML_JOINTS, :] = j[..., :NUM_HML_JOINTS, :]
    for hand, wrist, elbow in ((L_HAND, L_WRIST, L_ELBOW), (R_HAND, R_WRIST, R_ELBOW)):
        length = np.linalg.norm(rest[hand] - rest[wrist])
        d = j[..., wrist, :] - j[..., elbow, :]
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        out[..., hand, :] = j[..., wrist, :] + length * d
    return out


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., J, 3) -> (..., J) length of the bone from each joint's parent (0 for the root)."""
    joints = np.asarray(joints, dtype=np.float64)
    n = joints.shape[-2]
    out = np.zeros(joints.shape[:-1])
    for j in range(1, n):
        out[..., j] = np.linalg.norm(joints[..., j, :] - joints[..., SMPL_PARENTS[j], :], axis=-1)
    return out


def global_rotations(poses: np.ndarray) -> np.ndarray:
    """(T, 24, 3) local axis-angle -> (T, 24, 3, 3) global rotation matrices."""
    poses = np.asarray(poses, dtype=np.float64)
    t, n = poses.shape[:2]
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(t, n, 3, 3)
    glob = np.empty_like(local)
    for j in range(n):
        p = SMPL_PARENTS[j]
        glob[:, j] = local[:, j] if p < 0 else glob[:, p] @ local[:, j]
    return glob


def forward_kinematics(rest_joints: np.ndarray, poses: np.ndarray, trans: np.ndarray | None = None) -> np.ndarray:
    """World joint positions (T, 24, 3) of ``poses`` (T, 24, 3) applied to ``rest_joints`` (24, 3).

    The pelvis is placed at ``rest_joints[0] + trans[t]``; ``trans`` defaults to zeros.
    """
    rest = np.asarray(rest_joints, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim == 2:
        poses = poses[None]
    t = poses.shape[0]
    glob = global_rotations(poses)
    out = np.empty((t, NUM_SMPL_JOINTS, 3))
    out[:, 0] = rest[0]
    for j in range(1, NUM_SMPL_JOINTS):
        p = SMPL_PARENTS[j]
        out[:, j] = out[:, p] + glob[:, p] @ (rest[j] - rest[p])
    if trans is not None:
        out += np.asarray(trans, dtype=np.float64).reshape(t, 1, 3)
    return out
