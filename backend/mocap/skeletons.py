"""Source skeletons -> the 22 HumanML3D (SMPL) joints: one table per skeleton, in code.

Each table says, for every one of the 22 joints, where it is on the source skeleton: a joint (by name), a point
along a bone (``Along(a, b, t)``: a + t (b - a), exact for a point of a rigid bone), or a joint's end site
(``EndSite(j)``). The SMPL pelvis sits between the hips and spine1 (43 % of the way up on the SMPL template);
neither source has a joint there, so it is placed the same way between the source's hips and its first spine
joint. ``axes`` turns the source's coordinates into the project's (y-up, the body facing +Z in the rest pose,
its left at +X) and ``metres`` is the source's unit in metres.

The tables are checked on each skeleton's rest pose and on real frames in tests/mocap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, default_rest_joints


@dataclass(frozen=True)
class Along:
    a: str
    b: str
    t: float


@dataclass(frozen=True)
class EndSite:
    joint: str


def pelvis_fraction() -> float:
    """How far the SMPL pelvis is from the hips' midpoint towards spine1 (vertically) on the template."""
    r = default_rest_joints()
    hips = (r[JOINT_INDEX["left_hip"], 1] + r[JOINT_INDEX["right_hip"], 1]) / 2
    return float((r[0, 1] - hips) / (r[JOINT_INDEX["spine1"], 1] - hips))


@dataclass(frozen=True)
class SkeletonMap:
    name: str
    joints: dict  # the 22 HumanML3D joint names -> str | Along | EndSite | ("pelvis", left_hip, right_hip, spine1)
    axes: np.ndarray  # (3, 3): project = axes @ source
    metres: float
    required: tuple = field(default=())  # the source joint names that identify this skeleton

    def matches(self, names) -> bool:
        return set(self.required) <= set(names)


def _pelvis(lh, rh, sp):
    return ("pelvis", lh, rh, sp)


# CMU mocap on the DAZ-style skeleton of the Auto-Conditioned RNN release: y-up, facing +Z, left at +X, cm.
# abdomen/chest/neck stand for spine1/spine2/neck; spine3 is a quarter of the way from chest to neck (the SMPL
# template's spine2 -> spine3 -> neck proportions); the foot joint is the toe end site of the foot.
DAZ_CMU = SkeletonMap(
    name="daz_cmu",
    joints={
        "pelvis": _pelvis("lThigh", "rThigh", "abdomen"),
        "left_hip": "lThigh", "right_hip": "rThigh", "spine1": "abdomen",
        "left_knee": "lShin", "right_knee": "rShin", "spine2": "chest",
        "left_ankle": "lFoot", "right_ankle": "rFoot", "spine3": Along("chest", "neck", 0.25),
        "left_foot": EndSite("lFoot"), "right_foot": EndSite("rFoot"), "neck": "neck",
        "left_collar": "lCollar", "right_collar": "rCollar", "head": "head",
        "left_shoulder": "lShldr", "right_shoulder": "rShldr", "left_elbow": "lForeArm", "right_elbow": "rForeArm",
        "left_wrist": "lHand", "right_wrist": "rHand",
    },
    axes=np.eye(3),
    metres=0.01,
    required=("hip", "abdomen", "chest", "lThigh", "rThigh", "lShin", "lFoot", "lShldr", "lForeArm", "lHand"),
)

# Mesh2Motion's human rig as written by Blender's BVH exporter: z-up, facing -Y, left at +X, metres.
# (x, y, z) -> (x, z, -y) is a rotation of -90 degrees about X: z-up -> y-up and -Y -> +Z.
MESH2MOTION = SkeletonMap(
    name="mesh2motion",
    joints={
        "pelvis": _pelvis("thigh_l", "thigh_r", "spine_01"),
        "left_hip": "thigh_l", "right_hip": "thigh_r", "spine1": "spine_01",
        "left_knee": "calf_l", "right_knee": "calf_r", "spine2": "spine_02",
        "left_ankle": "foot_l", "right_ankle": "foot_r", "spine3": "spine_03",
        "left_foot": "ball_l", "right_foot": "ball_r", "neck": "neck_01",
        "left_collar": "clavicle_l", "right_collar": "clavicle_r", "head": "head",
        "left_shoulder": "upperarm_l", "right_shoulder": "upperarm_r", "left_elbow": "lowerarm_l",
        "right_elbow": "lowerarm_r", "left_wrist": "hand_l", "right_wrist": "hand_r",
    },
    axes=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    metres=1.0,
    required=("pelvis", "spine_01", "spine_03", "thigh_l", "calf_l", "foot_l", "ball_l", "upperarm_l", "hand_l"),
)

SKELETON_MAPS = (DAZ_CMU, MESH2MOTION)


def find_map(names) -> SkeletonMap | None:
    for m in SKELETON_MAPS:
        if m.matches(names):
            return m
    return None


def map_joints(smap: SkeletonMap, names, positions: np.ndarray, end_sites: dict) -> np.ndarray:
    """World positions of the source joints (T, J, 3) -> the 22 joints (T, 22, 3) in the project's axes and
    metres. ``end_sites`` maps a joint index to its end site's world positions (T, 3)."""
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros(positions.shape[:1] + (len(JOINT_NAMES), 3))
    frac = pelvis_fraction()

    def at(ref):
        if isinstance(ref, str):
            return positions[:, index[ref]]
        if isinstance(ref, Along):
            a, b = positions[:, index[ref.a]], positions[:, index[ref.b]]
            return a + ref.t * (b - a)
        if isinstance(ref, EndSite):
            return end_sites[index[ref.joint]]
        raise TypeError(ref)

    for k, name in enumerate(JOINT_NAMES):
        ref = smap.joints[name]
        if isinstance(ref, tuple) and ref and ref[0] == "pelvis":
            hips = (at(ref[1]) + at(ref[2])) / 2
            out[:, k] = hips + frac * (at(ref[3]) - hips)
        else:
            out[:, k] = at(ref)
    return np.einsum("ij,tkj->tki", smap.axes, out) * smap.metres
