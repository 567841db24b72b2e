"""Building blocks of the motion planner: smooth keyframes, arm poses, footsteps, neutral standing."""

from __future__ import annotations

import numpy as np

from .kinematics import FPS, Controls, normalize
from .skeleton import Body


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Quintic ease 0 -> 1 with zero velocity and acceleration at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def bump(x: np.ndarray) -> np.ndarray:
    """0 at 0 and 1, 1 at 0.5, zero slope at the ends."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 * (1 - np.cos(2 * np.pi * x))


def keys(t: np.ndarray, times, values) -> np.ndarray:
    """Piecewise smoothstep interpolation through (times[i], values[i]); held constant outside."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if np.any(np.diff(times) <= 0):
        raise ValueError("keyframe times must increase")
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    s = smoothstep((t - times[i]) / (times[i + 1] - times[i]))
    a, b = values[i], values[i + 1]
    s = s.reshape(s.shape + (1,) * (values.ndim - 1))
    return a + s * (b - a)


def frames(seconds: float) -> int:
    return int(round(seconds * FPS))


def timebase(T: int) -> np.ndarray:
    return np.arange(T) / FPS


# --------------------------------------------------------------------------------- arm poses ---
# Left-arm poses in the heading frame (x = left, y = up, z = forward): (upper arm, forearm) directions.
# The right arm uses the mirror image (x negated).
def _pose(u, f):
    return np.stack([normalize(np.asarray(u, float)), normalize(np.asarray(f, float))])


ARM = {
    "down": _pose((0.16, -1, 0.0), (0.1, -1, 0.18)),
    "overhead": _pose((0.25, 1, 0.08), (0.12, 1, 0.05)),
    "sides": _pose((1, 0.05, 0.05), (1, 0.1, 0.12)),
    "forward": _pose((0.12, 0.0, 1), (0.05, 0.05, 1)),
    "wave_base": _pose((0.8, 0.55, 0.15), (0.3, 1, 0.15)),
    "wave_in": _pose((0.8, 0.55, 0.15), (-0.25, 1, 0.15)),
    "wave_out": _pose((0.8, 0.55, 0.15), (0.75, 1, 0.15)),
    "guard": _pose((0.3, -0.8, 0.5), (-0.3, 0.85, 0.6)),
    "punch": _pose((-0.12, 0.06, 1), (-0.12, 0.06, 1)),
    "clap_open": _pose((0.25, -0.45, 0.85), (0.1, 0.25, 0.95)),
    "clap_closed": _pose((0.02, -0.45, 0.9), (-0.75, 0.2, 0.62)),
    "thighs": _pose((0.12, -0.85, 0.45), (0.05, -0.55, 0.85)),
    "balance": _pose((0.6, -0.8, 0.1), (0.55, -0.5, 0.45)),
    "hips_back": _pose((0.3, -0.95, -0.25), (0.1, -0.9, -0.35)),
}


def arm_pair(left: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    """(2, 2, 3) from a left pose and a right pose given as left-arm poses (mirrored here)."""
    right = left if right is None else right
    r = right.copy()
    r[..., 0] *= -1
    return np.stack([left, r])


def slerp_keys(t: np.ndarray, times, dirs) -> np.ndarray:
    """Like `keys` for unit directions (K, ..., 3): eased spherical interpolation, so that a direction
    moving through a wide angle (arm hanging -> overhead) sweeps round instead of collapsing."""
    times = np.asarray(times, dtype=np.float64)
    dirs = normalize(np.asarray(dirs, dtype=np.float64))
    if np.any(np.diff(times) <= 0):
        raise ValueError("keyframe times must increase")
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    s = smoothstep((t - times[i]) / (times[i + 1] - times[i]))
    a, b = dirs[i], dirs[i + 1]
    s = s.reshape(s.shape + (1,) * (dirs.ndim - 1))
    cos = np.clip(np.sum(a * b, -1, keepdims=True), -0.999, 1.0)
    om = np.arccos(cos)
    so = np.sin(om)
    small = so < 1e-4
    wa = np.where(small, 1 - s, np.sin((1 - s) * om) / np.where(small, 1, so))
    wb = np.where(small, s, np.sin(s * om) / np.where(small, 1, so))
    return normalize(wa * a + wb * b)


def arms_keys(t, times, poses) -> np.ndarray:
    """(T, 2, 2, 3) unit directions interpolated through keyframes of arm pairs."""
    return slerp_keys(t, times, np.stack(poses))


def arm_swing(angle: np.ndarray, bend: float | np.ndarray = 0.25) -> np.ndarray:
    """Left-arm (T, 2, 3) swinging forward by `angle` (rad) from hanging, elbow flexed by `bend`."""
    a = np.asarray(angle, float)
    b = np.broadcast_to(np.asarray(bend, float), a.shape)
    u = np.stack([np.full_like(a, 0.16), -np.cos(a), np.sin(a)], -1)
    f = np.stack([np.full_like(a, 0.1), -np.cos(a + b), np.sin(a + b)], -1)
    return normalize(np.stack([u, f], 1))


# ---------------------------------------------------------------------------------- standing ---
def neutral(T: int, body: Body) -> Controls:
    """Standing still at the origin, facing +Z, feet under the hips, arms hanging."""
    hw = body.hip_half_width
    feet = np.zeros((T, 2, 3))
    feet[:, 0] = (hw, body.ankle_height, 0.0)
    feet[:, 1] = (-hw, body.ankle_height, 0.0)
    return Controls(
        root=np.zeros((T, 2)), dy=np.zeros(T), yaw=np.zeros(T), feet=feet,
        foot_yaw=np.zeros((T, 2)), foot_pitch=np.zeros((T, 2)), contact=np.ones((T, 2), bool),
        arms=np.broadcast_to(arm_pair(ARM["down"]), (T, 2, 2, 3)).copy(),
    )


def neutral_foot(body: Body, k: int, x: float, z: float, yaw: float) -> np.ndarray:
    """Where foot k (0 left, 1 right) stands when the root is at (x, z) with heading yaw."""
    side = body.hip_half_width * (1 if k == 0 else -1)
    return np.array([x + side * np.cos(yaw), body.ankle_height, z - side * np.sin(yaw)])


def apply_steps(c: Controls, body: Body, steps, lift: float = 0.1, pitch: float = 0.0,
                heel: float = 0.0, toe_off: float = 0.0) -> None:
    """Move the feet along footsteps, in place.

    steps: list of (foot k, t_lift, t_land, target xyz (ankle, on the floor), target yaw); the foot is in
    the air (contact False) strictly between lift and land frames and planted elsewhere. Swing paths ease
    horizontally and rise by `lift` metres (smooth bump), toes lifted by `pitch` mid-swing. With heel > 0
    the heel rises during the last `heel` seconds before the lift, the foot rolling about its planted toe
    joint up to `toe_off` radians (marked in c.heel: the toe is planted, the ankle is not).
    """
    from .kinematics import rot_x, rot_y
    from .skeleton import J

    T = c.T
    t = timebase(T)
    for k in (0, 1):
        off_foot = body.offsets[J["left_foot"] if k == 0 else J["right_foot"]]
        mine = sorted((s for s in steps if s[0] == k), key=lambda s: s[1])
        pos = c.feet[0, k].copy()
        fy = float(c.foot_yaw[0, k])
        last_end = 0
        for _, t0, t1, target, tyaw in mine:
            i0 = int(np.floor(t0 * FPS))
            i1 = int(np.ceil(t1 * FPS))
            i0, i1 = max(i0, 0), min(i1, T - 1)
            c.feet[last_end:i0 + 1, k] = pos
            c.foot_yaw[last_end:i0 + 1, k] = fy
            start, q0 = pos, 0.0
            if heel > 0 and toe_off > 0:
                h0 = max(last_end + 1, int(np.floor((t0 - heel) * FPS)))
                if h0 < i0:
                    q = toe_off * smoothstep((t[h0:i0 + 1] - (t0 - heel)) / heel)
                    R = rot_y(np.full(len(q), fy)) @ rot_x(q)
                    toe = pos + rot_y(fy) @ off_foot
                    c.feet[h0:i0 + 1, k] = toe - R @ off_foot
                    c.foot_pitch[h0:i0 + 1, k] = q
                    c.heel[h0:i0 + 1, k] = True
                    start, q0 = c.feet[i0, k].copy(), float(q[-1])
            s = (t[i0:i1 + 1] - t0) / (t1 - t0)
            sc = np.clip(s, 0.0, 1.0)
            e = (sc * sc * (3 - 2 * sc))[:, None]  # cubic ease: gentler peak speed than the quintic
            target = np.asarray(target, float)
            c.feet[i0:i1 + 1, k] = start + e * (target - start)
            c.feet[i0:i1 + 1, k, 1] += lift * bump(s)
            c.foot_yaw[i0:i1 + 1, k] = fy + e[:, 0] * (tyaw - fy)
            c.foot_pitch[i0:i1 + 1, k] = q0 * (1 - e[:, 0]) - pitch * bump(s)
            c.contact[i0 + 1:i1, k] = False
            pos, fy, last_end = target, float(tyaw), i1
        c.feet[last_end:, k] = pos
        c.foot_yaw[last_end:, k] = fy


def extend(c: Controls, n: int, at_start: bool = False) -> Controls:
    """Hold the first/last frame for n more frames."""
    if n <= 0:
        return c
    out = {}
    for name in Controls.ARRAYS:
        a = getattr(c, name)
        edge = a[:1] if at_start else a[-1:]
        pad = np.repeat(edge, n, 0)
        out[name] = np.concatenate([pad, a] if at_start else [a, pad], 0)
    return Controls(**out)
