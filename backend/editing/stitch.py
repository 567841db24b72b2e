"""Decoded features -> the edited frames: the source exactly outside, a cross-fade over a short margin, the root
drift spread over the hole.

For a hole [a, b) of a :class:`~backend.editing.canvas.Canvas` and the features decoded for its window:

- Frames before ``a - margin`` and from ``b + margin`` on are the canvas's own rows, features and joints, bit for
  bit. The ``margin`` frames on each side cross-fade linearly between the canvas and the decoded features (the
  decoded motion there comes from the kept tokens, so both are nearly the same pose); the hole is the decoded
  motion. A side with fewer given frames gets a shorter margin (one given frame always stays as the anchor).
- Root: the edited frames are integrated from the last untouched frame before them (its world position and
  facing). When given motion follows the hole, what the hole's root ends at is corrected so that the first
  untouched frame after it is met exactly: the facing difference is spread over the edited frames' rotation
  velocities and the position difference over their root velocities (smooth bump weights, zero at the seams),
  so features and joints stay consistent. ``right="yaw"`` corrects the facing only and moves the motion after
  the hole along (a loop that keeps travelling); ``right="follow"`` corrects nothing and moves the motion after
  the hole rigidly to continue from where the hole ends (a second clip placed after a transition).
- A hole at the start of the canvas is placed so that it ends where the motion after it begins.

World facing here is the angle about +Y that turns a frame's body-frame positions (the features' "ric") onto its
world joints; the features' rotation velocity r gives a world turn of -2 r per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.features import features_to_joints

__all__ = ["stitch", "Stitched", "world_yaw", "place", "correct_root", "rot_y", "RIGHT_MODES"]

RIGHT_MODES = ("fixed", "yaw", "follow")
_RIC = slice(4, 67)
_LOCAL_VEL = slice(193, 259)


def rot_y(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def world_yaw(feature_row: np.ndarray, joints_row: np.ndarray) -> float:
    """World facing of one frame: the yaw turning its ric positions (body frame) onto its world joints."""
    p = np.asarray(feature_row, np.float64)[_RIC].reshape(21, 3)
    j = np.asarray(joints_row, np.float64)
    q = j[1:] - j[0]
    s = float(np.sum(q[:, 0] * p[:, 2] - q[:, 2] * p[:, 0]))
    c = float(np.sum(q[:, 0] * p[:, 0] + q[:, 2] * p[:, 2]))
    return float(np.arctan2(s, c))


def _yaws(seg: np.ndarray, yaw0: float) -> np.ndarray:
    """World facing of every row of a segment integrated from facing ``yaw0`` at its first row."""
    y = np.empty(len(seg))
    y[0] = yaw0
    y[1:] = yaw0 - 2.0 * np.cumsum(seg[:-1, 0].astype(np.float64))
    return y


def place(seg: np.ndarray, yaw0: float, pos0, y_off) -> np.ndarray:
    """Joints (n, 22, 3) float64 of features ``seg`` integrated from facing ``yaw0`` and root xz ``pos0`` at its
    first row; ``y_off`` (scalar or (n,)) is added to the heights (the source's floor)."""
    g = features_to_joints(seg).astype(np.float64) @ rot_y(yaw0).T
    g[..., 0] += float(pos0[0])
    g[..., 2] += float(pos0[2])
    g[..., 1] += np.asarray(y_off, np.float64).reshape(-1, 1) if np.ndim(y_off) else float(y_off)
    return g


def _bump(n: int) -> np.ndarray:
    w = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
    return w / w.sum()


def correct_root(seg: np.ndarray, yaw0: float, pos0, yaw_target: float, pos_target=None) -> np.ndarray:
    """Features ``seg`` (n, 263) whose integration starts at row 0 (facing ``yaw0``, root ``pos0``) -> a copy
    whose rows 1..n-2 are corrected so that row n-1 faces ``yaw_target`` and (if given) has its root at
    ``pos_target`` (xz). Rows 0 and n-1 are untouched."""
    out = np.asarray(seg, np.float64).copy()
    n = len(out)
    if n < 3:
        return out.astype(np.float32)
    inner = np.arange(1, n - 1)
    d = _wrap(yaw_target - _yaws(out, yaw0)[-1])
    out[inner, 0] += -0.5 * d * _bump(len(inner))
    if pos_target is not None:
        y = _yaws(out, yaw0)
        r = np.array([float(pos0[0]), 0.0, float(pos0[2])])
        for t in range(n - 1):
            r = r + rot_y(y[t + 1]) @ np.array([out[t, 1], 0.0, out[t, 2]])
        dp = np.array([float(pos_target[0]) - r[0], 0.0, float(pos_target[2]) - r[2]])
        for s, v in zip(inner, _bump(len(inner))):
            delta = dp * v
            step = rot_y(-y[s + 1]) @ delta
            out[s, 1] += step[0]
            out[s, 2] += step[2]
            lv = rot_y(-y[s]) @ delta
            vel = out[s, _LOCAL_VEL].reshape(22, 3)
            vel[:, 0] += lv[0]
            vel[:, 2] += lv[2]
            out[s, _LOCAL_VEL] = vel.reshape(-1)
    return out.astype(np.float32)


@dataclass
class Stitched:
    features: np.ndarray    # (N, 263) float32
    joints: np.ndarray      # (N, 22, 3) float32
    changed: tuple          # [lo, hi): the frames that differ from the canvas (hole + margins)
    moved_from: int | None = None   # frames from here on were moved rigidly (right="yaw"/"follow")
    shift: np.ndarray | None = None  # ... by this 4x4 transform (world)


def _rigid(yaw: float, pivot, target) -> np.ndarray:
    """4x4: rotate by ``yaw`` about +Y through ``pivot``, then move ``pivot`` onto ``target`` (xz only)."""
    m = np.eye(4)
    r = rot_y(yaw)
    piv = np.array([pivot[0], 0.0, pivot[2]])
    tgt = np.array([target[0], 0.0, target[2]])
    m[:3, :3] = r
    m[:3, 3] = tgt - r @ piv
    return m


def apply_rigid(m: np.ndarray, joints: np.ndarray) -> np.ndarray:
    j = np.asarray(joints, np.float64)
    return (j @ m[:3, :3].T + m[:3, 3]).astype(np.float32)


def stitch(canvas, gen: np.ndarray, w0: int, a: int, b: int, margin: int = 8, right: str = "fixed") -> Stitched:
    """Put decoded window features ``gen`` (covering canvas frames [w0, w0+len(gen))) into the hole [a, b) of
    ``canvas`` (see the module doc). Returns new arrays; the canvas is not modified."""
    if right not in RIGHT_MODES:
        raise ValueError(f"right must be one of {RIGHT_MODES}")
    F, J, real = canvas.features, canvas.joints, canvas.real
    n = len(F)
    has_left = a >= 1 and bool(real[a - 1])
    has_right = b < n and bool(real[b])
    m_l = m_r = 0
    if has_left:
        run = 0
        while a - run - 1 >= 0 and real[a - run - 1]:
            run += 1
        m_l = max(0, min(margin, run - 1))
        anchor_l = a - m_l - 1
    if has_right:
        run = 0
        while b + run < n and real[b + run]:
            run += 1
        m_r = max(0, min(margin, run - 1))
        anchor_r = b + m_r
    lo = a - m_l
    hi = b + m_r
    if lo < w0 or hi > w0 + len(gen):
        raise ValueError(f"the decoded window [{w0}, {w0 + len(gen)}) does not cover the frames [{lo}, {hi})")
    out = F.copy()
    out[a:b] = gen[a - w0:b - w0]
    for i in range(m_l):
        t, w = lo + i, (i + 1) / (m_l + 1)
        out[t] = (1 - w) * F[t] + w * gen[t - w0]
    for i in range(m_r):
        t, w = b + i, (m_r - i) / (m_r + 1)
        out[t] = (1 - w) * F[t] + w * gen[t - w0]
    jo = J.copy()
    moved_from, shift = None, None
    if has_left:
        yaw0 = world_yaw(F[anchor_l], J[anchor_l])
        pos0 = J[anchor_l, 0].astype(np.float64)
        yoff_l = float(J[anchor_l, 0, 1]) - float(F[anchor_l, 3])
        if has_right:
            yaw_r = world_yaw(F[anchor_r], J[anchor_r])
            yoff_r = float(J[anchor_r, 0, 1]) - float(F[anchor_r, 3])
            seg = out[anchor_l:anchor_r + 1]
            if right in ("fixed", "yaw"):
                seg = correct_root(seg, yaw0, pos0, yaw_r, J[anchor_r, 0] if right == "fixed" else None)
                out[anchor_l + 1:anchor_r] = seg[1:-1]
            ramp = np.linspace(0.0, 1.0, len(seg)) if right == "fixed" else np.zeros(len(seg))
            ramp = ramp * ramp * (3 - 2 * ramp)
            placed = place(seg, yaw0, pos0, yoff_l + (yoff_r - yoff_l) * ramp)
            jo[lo:hi] = placed[1:-1].astype(np.float32)
            if right != "fixed":
                yaw_end = _yaws(seg, yaw0)[-1]
                # the motion after the hole turns by the facing difference and moves to where the hole ends
                shift = _rigid(yaw_end - yaw_r, J[anchor_r, 0], placed[-1, 0])
                moved_from = anchor_r
                jo[anchor_r:] = apply_rigid(shift, J[anchor_r:])
                jo[anchor_r:, :, 1] += np.float32(yoff_l - yoff_r)
        else:
            seg = out[anchor_l:hi]
            placed = place(seg, yaw0, pos0, yoff_l)
            jo[lo:hi] = placed[1:].astype(np.float32)
    elif has_right:
        yaw_r = world_yaw(F[anchor_r], J[anchor_r])
        yoff_r = float(J[anchor_r, 0, 1]) - float(F[anchor_r, 3])
        seg = out[lo:anchor_r + 1]
        yaw_end = _yaws(seg, 0.0)[-1]
        placed = place(seg, yaw_r - yaw_end, np.zeros(3), yoff_r)
        placed[..., [0, 2]] += (J[anchor_r, 0, [0, 2]] - placed[-1, 0, [0, 2]])
        jo[lo:hi] = placed[:-1].astype(np.float32)
    else:
        jo[lo:hi] = place(out[lo:hi], 0.0, np.zeros(3), 0.0).astype(np.float32)
    return Stitched(features=out.astype(np.float32), joints=jo, changed=(lo, hi), moved_from=moved_from,
                    shift=shift)
