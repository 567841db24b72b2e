"""The rest skeleton the synthetic corpus is built on, and per-clip body variation.

Conventions (HumanML3D): 22 joints, y-up, metres, 20 fps. A person in the rest pose faces +Z and their
LEFT side is +X (left_hip.x > 0). Yaw is the angle about +Y; a positive yaw turns the facing direction
from +Z towards +X, i.e. a positive yaw is a turn to the LEFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.skeleton import JOINT_NAMES, PARENTS, default_rest_joints


def _base_rest_joints() -> np.ndarray:
    """The project's rest skeleton (backend.motion), made exactly left/right symmetric so that both legs
    have the same lengths and both feet the same ankle height."""
    return symmetrize(np.asarray(default_rest_joints(), dtype=np.float64))


def symmetrize(rest: np.ndarray) -> np.ndarray:
    off = rest_offsets(rest)
    out = off.copy()
    flip = np.array([-1.0, 1.0, 1.0])
    for i, name in enumerate(JOINT_NAMES):
        if name.startswith("left_"):
            r = JOINT_NAMES.index("right_" + name[5:])
            avg = 0.5 * (off[i] + off[r] * flip)
            out[i], out[r] = avg, avg * flip
        elif not name.startswith("right_"):
            out[i, 0] = 0.0 if i else out[i, 0]
    j = np.zeros_like(out)
    for i, p in enumerate(PARENTS):
        j[i] = out[i] if p < 0 else j[p] + out[i]
    return j


J = {name: i for i, name in enumerate(JOINT_NAMES)}
LEFT_LEG = (J["left_hip"], J["left_knee"], J["left_ankle"], J["left_foot"])
RIGHT_LEG = (J["right_hip"], J["right_knee"], J["right_ankle"], J["right_foot"])
LEFT_ARM = (J["left_collar"], J["left_shoulder"], J["left_elbow"], J["left_wrist"])
RIGHT_ARM = (J["right_collar"], J["right_shoulder"], J["right_elbow"], J["right_wrist"])
# HumanML3D's foot-contact channels: (left_ankle, left_foot, right_ankle, right_foot).
CONTACT_JOINTS = (J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"])

SCALE_RANGE = (0.88, 1.12)  # overall body scale (1.0 = backend.motion's rest skeleton)


def rest_offsets(rest_joints: np.ndarray) -> np.ndarray:
    """Offsets child - parent (22, 3); row 0 is the pelvis position itself."""
    off = rest_joints.copy()
    for i, p in enumerate(PARENTS):
        if p >= 0:
            off[i] = rest_joints[i] - rest_joints[p]
    return off


@dataclass(frozen=True)
class Body:
    """One body: rest offsets (bone lengths fixed for a whole clip) and derived sizes used by the planner."""

    offsets: np.ndarray  # (22, 3), rest pose, feet flat, facing +Z
    scale: float

    @property
    def thigh(self) -> float:
        return float(np.linalg.norm(self.offsets[J["left_knee"]]))

    @property
    def shin(self) -> float:
        return float(np.linalg.norm(self.offsets[J["left_ankle"]]))

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    @property
    def hip_half_width(self) -> float:
        return float(abs(self.offsets[J["left_hip"], 0]))

    @property
    def ankle_height(self) -> float:
        """Ankle height above the floor when the foot is flat (toe joint on the floor)."""
        return float(-self.offsets[J["left_foot"], 1])

    @property
    def stand_height(self) -> float:
        """Pelvis height standing relaxed: legs at 97.5 % of full reach, feet under the hips."""
        hip_drop = -self.offsets[J["left_hip"], 1]
        return float(self.ankle_height + hip_drop + 0.975 * self.leg)

    def rest_joints(self) -> np.ndarray:
        j = np.zeros((22, 3))
        for i, p in enumerate(PARENTS):
            j[i] = self.offsets[i] if p < 0 else j[p] + self.offsets[i]
        return j


def make_body(rng: np.random.Generator | None = None, scale: float | None = None) -> Body:
    """A body with overall scale in SCALE_RANGE and small (+-4 %) per-segment proportion changes."""
    base = rest_offsets(_base_rest_joints())
    if scale is None:
        scale = 1.0 if rng is None else float(rng.uniform(*SCALE_RANGE))
    if not (0.5 <= scale <= 1.5):
        raise ValueError(f"body scale {scale} outside the plausible range 0.5..1.5")
    off = base * scale
    if rng is not None:
        leg = rng.uniform(0.96, 1.04)
        torso = rng.uniform(0.96, 1.04)
        arm = rng.uniform(0.96, 1.04)
        for side in (LEFT_LEG, RIGHT_LEG):
            off[side[1]] *= leg
            off[side[2]] *= leg
        for name in ("spine1", "spine2", "spine3", "neck"):
            off[J[name]] *= torso
        for side in (LEFT_ARM, RIGHT_ARM):
            off[side[2]] *= arm
            off[side[3]] *= arm
    return Body(offsets=off, scale=scale)
