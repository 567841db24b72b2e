"""Controls -> joints: pelvis placement, analytic two-bone leg IK, forward kinematics.

Every frame is built by forward kinematics from per-joint global rotations on one rest skeleton
(`Body.offsets`), so bone lengths are exactly those of the rest skeleton. Stance feet are placed by the
planner; when a stance foot would be out of reach the pelvis is lowered (smoothly) until it is reachable,
so planted feet do not slide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from .skeleton import J, LEFT_LEG, PARENTS, RIGHT_LEG, Body

FPS = 20
REACH = 0.985  # stance legs never straighter than this fraction of thigh + shin


# ----------------------------------------------------------------------------- rotation helpers ---
def rot_x(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def swing(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit direction src (3,) to unit directions dst (T, 3); (T, 3, 3)."""
    a = normalize(np.broadcast_to(src, dst.shape))
    b = normalize(dst)
    v = np.cross(a, b)
    c = np.sum(a * b, -1)
    # Rodrigues with k = v/|v|, sin = |v|, cos = c:  R = I + [v]x + [v]x^2 / (1 + c)
    vx = np.zeros(dst.shape[:-1] + (3, 3))
    vx[..., 0, 1], vx[..., 0, 2] = -v[..., 2], v[..., 1]
    vx[..., 1, 0], vx[..., 1, 2] = v[..., 2], -v[..., 0]
    vx[..., 2, 0], vx[..., 2, 1] = -v[..., 1], v[..., 0]
    k = 1.0 / np.maximum(1.0 + c, 1e-6)
    return np.eye(3) + vx + (vx @ vx) * k[..., None, None]


# ---------------------------------------------------------------------------------- controls ---
@dataclass
class Controls:
    """Per-frame controls of one motion, in world coordinates (y-up, metres).

    Arms are given as unit directions of the upper arm and the forearm in the *heading frame*
    (x = the person's left, y = up, z = the person's forward), so that hanging arms hang down whatever the
    trunk does. Feet are ankle targets; a foot flagged in contact must not move (the planner's job).
    """

    root: np.ndarray          # (T, 2) pelvis x, z
    dy: np.ndarray            # (T,) pelvis height relative to the body's relaxed standing height
    yaw: np.ndarray           # (T,) heading, + = left (about +Y)
    feet: np.ndarray          # (T, 2, 3) ankle targets [left, right]
    foot_yaw: np.ndarray      # (T, 2)
    foot_pitch: np.ndarray    # (T, 2) + = toe down
    contact: np.ndarray       # (T, 2) bool [left, right]
    arms: np.ndarray          # (T, 2, 2, 3) [left, right] x [upper, fore] directions, heading frame
    pelvis_pitch: np.ndarray = field(default=None)  # (T,) + = trunk forward
    spine_pitch: np.ndarray = field(default=None)   # (T,) total forward flexion of spine1..3
    spine_yaw: np.ndarray = field(default=None)     # (T,) total twist of spine1..3 (+ = shoulders left)
    spine_roll: np.ndarray = field(default=None)    # (T,) total side bend (+ = towards the right side)
    head_pitch: np.ndarray = field(default=None)    # (T,) + = looking down
    heel: np.ndarray = field(default=None)          # (T, 2) bool: heel lifted, only the toe planted
    sway: np.ndarray = field(default=None)          # (T,) or scalar: lateral pelvis shift towards the
    #                                                   supporting foot (m at full single support)

    def __post_init__(self):
        T = len(self.dy)
        for name in ("pelvis_pitch", "spine_pitch", "spine_yaw", "spine_roll", "head_pitch"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(T))
        if self.heel is None:
            self.heel = np.zeros((T, 2), bool)
        self.sway = np.broadcast_to(np.asarray(0.05 if self.sway is None else self.sway, float), (T,)).copy()

    def __setattr__(self, name, value):
        if name == "sway" and getattr(self, "dy", None) is not None and value is not None:
            value = np.broadcast_to(np.asarray(value, float), (len(self.dy),)).copy()
        object.__setattr__(self, name, value)

    @property
    def T(self) -> int:
        return len(self.dy)

    ARRAYS = ("root", "dy", "yaw", "feet", "foot_yaw", "foot_pitch", "contact", "arms", "pelvis_pitch",
              "spine_pitch", "spine_yaw", "spine_roll", "head_pitch", "heel", "sway")

    def slice(self, a: int, b: int) -> "Controls":
        return Controls(**{n: getattr(self, n)[a:b].copy() for n in self.ARRAYS})

    def reversed(self) -> "Controls":
        return Controls(**{n: getattr(self, n)[::-1].copy() for n in self.ARRAYS})

    def transformed(self, x: float, z: float, yaw: float) -> "Controls":
        """The same motion rotated by `yaw` about +Y and then moved by (x, z)."""
        c, s = np.cos(yaw), np.sin(yaw)
        out = Controls(**{n: getattr(self, n).copy() for n in self.ARRAYS})
        rx, rz = self.root[:, 0], self.root[:, 1]
        out.root = np.stack([c * rx + s * rz + x, -s * rx + c * rz + z], -1)
        fx, fz = self.feet[..., 0], self.feet[..., 2]
        out.feet[..., 0] = c * fx + s * fz + x
        out.feet[..., 2] = -s * fx + c * fz + z
        out.yaw = self.yaw + yaw
        out.foot_yaw = self.foot_yaw + yaw
        return out

    @staticmethod
    def concat(parts: list["Controls"]) -> "Controls":
        out = {n: np.concatenate([getattr(p, n) for p in parts], 0) for n in Controls.ARRAYS}
        return Controls(**out)


# -------------------------------------------------------------------------------------- solve ---
def _support(contact: np.ndarray) -> np.ndarray:
    """+1 when only the left foot supports, -1 only the right; flight frames keep the previous value."""
    s = contact[:, 0].astype(np.float64) - contact[:, 1].astype(np.float64)
    flight = ~contact.any(1)
    if flight.any():
        idx = np.where(~flight, np.arange(len(s)), 0)
        np.maximum.accumulate(idx, out=idx)
        s = s[idx]
    return gaussian_filter1d(s, 2.5, mode="nearest")


def solve(c: Controls, body: Body) -> np.ndarray:
    """Joints (T, 22, 3) float64 from controls, by leg IK + forward kinematics."""
    T = c.T
    off = body.offsets
    heading = rot_y(c.yaw)                                   # (T,3,3)
    left_axis = heading[:, :, 0]                             # person's left in world
    pelvis = np.zeros((T, 3))
    pelvis[:, 0], pelvis[:, 2] = c.root[:, 0], c.root[:, 1]
    pelvis[:, 1] = body.stand_height + c.dy
    pelvis += left_axis * (c.sway * _support(c.contact))[:, None]
    g_pelvis = heading @ rot_x(c.pelvis_pitch)

    # Lower the pelvis where a stance foot would be out of reach (smoothly, never below the need).
    reach = REACH * body.leg
    need = np.zeros(T)
    for k, leg in enumerate((LEFT_LEG, RIGHT_LEG)):
        hip = pelvis + g_pelvis @ off[leg[0]]
        d = c.feet[:, k] - hip
        dh2 = d[:, 0] ** 2 + d[:, 2] ** 2
        dv_max = np.sqrt(np.maximum(reach ** 2 - dh2, (0.2 * reach) ** 2))
        lower = (hip[:, 1] - c.feet[:, k, 1]) - dv_max
        need = np.maximum(need, np.where(c.contact[:, k], lower, 0.0))
    if need.max() > 0:
        sm = gaussian_filter1d(maximum_filter1d(need, 7, mode="nearest"), 1.5, mode="nearest")
        sm = np.maximum(sm, need)
        pelvis[:, 1] -= gaussian_filter1d(sm, 0.7, mode="nearest") + 1e-4
        # keep the guarantee exactly after the light final smoothing
        pelvis[:, 1] = np.minimum(pelvis[:, 1], body.stand_height + c.dy - need)

    G = np.zeros((T, 22, 3, 3))
    G[:] = np.eye(3)
    G[:, 0] = g_pelvis
    # Spine: spread flexion / twist / side bend over spine1..3, head pitch over neck + head.
    w = (0.3, 0.35, 0.35)
    g = g_pelvis
    for name, wi in zip(("spine1", "spine2", "spine3"), w):
        g = g @ rot_y(c.spine_yaw * wi) @ rot_x(c.spine_pitch * wi) @ rot_z(c.spine_roll * wi)
        G[:, J[name]] = g
    G[:, J["neck"]] = g @ rot_x(0.5 * c.head_pitch)
    G[:, J["head"]] = G[:, J["neck"]] @ rot_x(0.5 * c.head_pitch)
    G[:, J["left_collar"]] = g
    G[:, J["right_collar"]] = g

    # Arms: directions given in the heading frame.
    for k, (collar, shoulder, elbow, wrist) in enumerate(((13, 16, 18, 20), (14, 17, 19, 21))):
        up = np.einsum("tij,tj->ti", heading, c.arms[:, k, 0])
        fo = np.einsum("tij,tj->ti", heading, c.arms[:, k, 1])
        G[:, shoulder] = swing(normalize(off[elbow]), up)
        G[:, elbow] = swing(normalize(off[wrist]), fo)

    # Joint positions of the trunk first (hips needed for leg IK).
    P = np.zeros((T, 22, 3))
    P[:, 0] = pelvis
    for j in range(1, 22):
        if j in (4, 5, 7, 8, 10, 11):
            continue
        p = PARENTS[j]
        P[:, j] = P[:, p] + G[:, p] @ off[j]

    # Legs: analytic two-bone IK with the knee towards the foot's forward direction.
    l1, l2 = body.thigh, body.shin
    for k, (hip, knee, ankle, foot) in enumerate((LEFT_LEG, RIGHT_LEG)):
        H = P[:, hip]
        v = c.feet[:, k] - H
        dist = np.linalg.norm(v, axis=-1)
        u = v / np.maximum(dist, 1e-9)[:, None]
        # soft limit beyond the stance reach: the knee straightens smoothly, never snapping
        L = l1 + l2
        lim, room = REACH * L, (0.9995 - REACH) * L
        d = np.where(dist > lim, lim + room * np.tanh((dist - lim) / room), dist)
        d = np.maximum(d, abs(l1 - l2) + 1e-3)
        fy = c.foot_yaw[:, k]
        # the knee points forward (the foot's direction, slightly outwards); as the leg swings forward
        # (a kick, a raised knee) the pole turns upwards so that the knee leads
        fwd = np.stack([np.sin(fy), np.zeros(T), np.cos(fy)], -1)
        side = 1.0 if k == 0 else -1.0
        lift = np.maximum(np.sum(u * fwd, -1), 0.0)[:, None]
        pole = fwd + 2.0 * lift * np.array([0.0, 1.0, 0.0])
        pole = pole + side * 0.08 * np.stack([np.cos(fy), np.zeros(T), -np.sin(fy)], -1)
        n = normalize(pole - np.sum(pole * u, -1, keepdims=True) * u)
        cos_a = np.clip((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d), -1, 1)
        sin_a = np.sqrt(1 - cos_a ** 2)
        K = H + l1 * (cos_a[:, None] * u + sin_a[:, None] * n)
        A = H + d[:, None] * u
        G[:, hip] = swing(normalize(off[knee]), (K - H))
        G[:, knee] = swing(normalize(off[ankle]), (A - K))
        G[:, ankle] = rot_y(fy) @ rot_x(c.foot_pitch[:, k])
        P[:, knee] = H + G[:, hip] @ off[knee]
        P[:, ankle] = P[:, knee] + G[:, knee] @ off[ankle]
        P[:, foot] = P[:, ankle] + G[:, ankle] @ off[foot]
    return P
