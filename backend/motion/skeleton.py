"""The HumanML3D ("t2m") skeleton: 22 SMPL body joints, y-up, metres, 20 fps.

Everything here is a constant or a cheap function of constants. The joint order, the kinematic chains,
the raw offset directions, the face-direction joints and the foot joints follow the HumanML3D
convention used by every model trained on its 263-d features (T2M, MoMask, ReMoMask, ...).

The Part-TMR body-part split (six parts: root, right leg, left leg, backbone, right arm, left arm) is
exposed both as joint indices (``BODY_PARTS``) and as index arrays into the 263-d feature vector
(``BODY_PART_FEATURES``), in the exact element order the Part-TMR encoders expect.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 22
FPS = 20
FEATURE_DIM = 263

JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

# The t2m kinematic chains: right leg, left leg, spine+head, right arm, left arm.
KINEMATIC_CHAINS = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)


def _parents_from_chains(chains, n):
    parents = [-1] * n
    for chain in chains:
        for a, b in zip(chain[:-1], chain[1:]):
            parents[b] = a
    return tuple(parents)


PARENTS = _parents_from_chains(KINEMATIC_CHAINS, NUM_JOINTS)

# Rest direction of each bone (child joint minus parent joint) in the t2m convention (x = the body's left,
# y = up, z = forward). Used by the feature IK: every local rotation maps this direction onto the bone.
RAW_OFFSETS = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)  # read-only by convention (kept writable so that torch.from_numpy / tensor indexing do not warn)

# Left/right swap: MIRROR_INDEX[j] is the joint that j becomes when the body is mirrored (x -> -x).
MIRROR_INDEX = tuple(
    JOINT_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in JOINT_NAMES
)

# (right hip, left hip, right shoulder, left shoulder), as the official feature code passes them.
FACE_JOINTS = (2, 1, 17, 16)
# (ankle, foot) index pairs; foot contacts are reported left pair first, then right pair.
LEFT_FOOT = (7, 10)
RIGHT_FOOT = (8, 11)
# Joints whose offsets (right hip->knee, knee->ankle) give the leg length used by the official
# skeleton-uniformisation scale.
LEG_LENGTH_JOINTS = (5, 8)

# ---------------------------------------------------------------------------------------------------------
# 263-d feature layout
# ---------------------------------------------------------------------------------------------------------
FEATURE_SLICES = {
    "root_rot_velocity": slice(0, 1),  # half of the per-frame yaw change (radians), see features.py
    "root_linear_velocity": slice(1, 3),  # root xz displacement in the body's facing frame
    "root_y": slice(3, 4),  # root height above the floor
    "ric": slice(4, 4 + (NUM_JOINTS - 1) * 3),  # joints 1..21 relative to the root, facing +Z
    "rot6d": slice(4 + (NUM_JOINTS - 1) * 3, 4 + (NUM_JOINTS - 1) * 9),  # joints 1..21, continuous 6D
    "local_velocity": slice(4 + (NUM_JOINTS - 1) * 9, 4 + (NUM_JOINTS - 1) * 9 + NUM_JOINTS * 3),
    "foot_contact": slice(FEATURE_DIM - 4, FEATURE_DIM),  # l_ankle, l_foot, r_ankle, r_foot
}
assert FEATURE_SLICES["local_velocity"].stop == FEATURE_SLICES["foot_contact"].start

# ---------------------------------------------------------------------------------------------------------
# Part-TMR body parts
# ---------------------------------------------------------------------------------------------------------
BODY_PART_NAMES = ("root", "right_leg", "left_leg", "backbone", "right_arm", "left_arm")
BODY_PARTS = {
    "root": (0,),
    "right_leg": (2, 5, 8, 11),
    "left_leg": (1, 4, 7, 10),
    "backbone": (3, 6, 9, 12, 15),
    "right_arm": (9, 14, 17, 19, 21),
    "left_arm": (9, 13, 16, 18, 20),
}
# Joint 9 (spine3) belongs to the backbone and both arms; when merging parts back it is averaged.
SHARED_PART_JOINT = 9


def _part_feature_index(name: str) -> np.ndarray:
    ric0 = FEATURE_SLICES["ric"].start
    rot0 = FEATURE_SLICES["rot6d"].start
    vel0 = FEATURE_SLICES["local_velocity"].start
    foot0 = FEATURE_SLICES["foot_contact"].start
    if name == "root":
        # root rotation velocity, root xz velocity, root height, then the root's local velocity
        return np.array([0, 1, 2, 3, vel0, vel0 + 1, vel0 + 2], dtype=np.int64)
    idx = []
    for j in BODY_PARTS[name]:
        idx += [ric0 + 3 * (j - 1) + k for k in range(3)]
        idx += [rot0 + 6 * (j - 1) + k for k in range(6)]
        idx += [vel0 + 3 * j + k for k in range(3)]
    if name == "right_leg":
        idx += [foot0 + 2, foot0 + 3]
    elif name == "left_leg":
        idx += [foot0 + 0, foot0 + 1]
    return np.array(idx, dtype=np.int64)


# int64 index arrays; read-only by convention (kept writable so that indexing torch tensors does not warn)
BODY_PART_FEATURES = {name: _part_feature_index(name) for name in BODY_PART_NAMES}
BODY_PART_DIMS = {name: len(v) for name, v in BODY_PART_FEATURES.items()}  # 7, 50, 50, 60, 60, 60

# ---------------------------------------------------------------------------------------------------------
# A neutral rest skeleton
# ---------------------------------------------------------------------------------------------------------
# Approximate joint positions of a neutral adult in a T-pose (arms out to the sides, palms down),
# facing +Z with its left side towards +X, in metres. Shifted below so that the lowest foot joint is at
# y = 0 and the pelvis is above the origin.
_REST = np.array(
    [
        [-0.0018, -0.2233, 0.0282],  # pelvis
        [0.0695, -0.3143, 0.0239],  # left_hip
        [-0.0677, -0.3145, 0.0215],  # right_hip
        [-0.0025, -0.1038, 0.0120],  # spine1
        [0.1043, -0.6916, 0.0166],  # left_knee
        [-0.1055, -0.6998, 0.0152],  # right_knee
        [0.0055, 0.0245, 0.0264],  # spine2
        [0.0883, -1.1005, -0.0245],  # left_ankle
        [-0.0896, -1.1055, -0.0240],  # right_ankle
        [0.0016, 0.0846, 0.0285],  # spine3
        [0.1202, -1.1616, 0.1027],  # left_foot
        [-0.1179, -1.1627, 0.1049],  # right_foot
        [-0.0123, 0.2945, 0.0027],  # neck
        [0.0746, 0.1939, 0.0128],  # left_collar
        [-0.0747, 0.1928, 0.0091],  # right_collar
        [-0.0003, 0.3583, 0.0515],  # head
        [0.1974, 0.2374, -0.0029],  # left_shoulder
        [-0.1912, 0.2360, -0.0120],  # right_shoulder
        [0.4480, 0.2282, -0.0276],  # left_elbow
        [-0.4498, 0.2221, -0.0308],  # right_elbow
        [0.7112, 0.2355, -0.0306],  # left_wrist
        [-0.7105, 0.2396, -0.0355],  # right_wrist
    ],
    dtype=np.float64,
)


def default_rest_joints() -> np.ndarray:
    """(22, 3) float32 rest joint positions in metres: y-up, facing +Z, lowest foot joint at y = 0,
    pelvis above the origin (x = z = 0). A fresh copy on every call."""
    j = _REST.copy()
    j[:, 0] -= j[0, 0]
    j[:, 2] -= j[0, 2]
    j[:, 1] -= j[[LEFT_FOOT[0], LEFT_FOOT[1], RIGHT_FOOT[0], RIGHT_FOOT[1]], 1].min()
    return j.astype(np.float32)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., 22) distance of every joint to its parent (0 for the root)."""
    joints = np.asarray(joints, dtype=np.float64)
    par = np.array(PARENTS)
    par[0] = 0
    return np.linalg.norm(joints - joints[..., par, :], axis=-1)
