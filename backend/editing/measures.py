"""Measures of edited motions used by the tests and ``bench/editing.py`` (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["joint_steps", "seam_steps", "contact_skate", "pose", "TOES"]

TOES = (10, 11)  # left_foot, right_foot


def joint_steps(joints) -> np.ndarray:
    """(T, 22, 3) -> (T-1,): the largest joint displacement from each frame to the next (m/frame)."""
    j = np.asarray(joints, np.float64)
    return np.linalg.norm(np.diff(j, axis=0), axis=-1).max(-1)


def seam_steps(joints, ranges) -> list[float]:
    """The joint steps across the boundaries of the frame ranges [lo, hi) (into lo and out of hi)."""
    s = joint_steps(joints)
    out = []
    for lo, hi in ranges:
        if lo > 0:
            out.append(float(s[lo - 1]))
        if hi < len(s) + 1:
            out.append(float(s[hi - 1]))
    return out


def contact_skate(joints, height: float = 0.03) -> np.ndarray:
    """(T, 22, 3) -> (T-1,): the horizontal speed (m/frame) of a toe that stays within ``height`` of the motion's
    lowest toe height on both frames (foot contact), the larger of the two toes; 0 where neither is in contact."""
    j = np.asarray(joints, np.float64)
    out = np.zeros(len(j) - 1)
    for t in TOES:
        y = j[:, t, 1]
        ground = y.min()
        d = np.linalg.norm(np.diff(j[:, t][:, [0, 2]], axis=0), axis=-1)
        c = (y[1:] < ground + height) & (y[:-1] < ground + height)
        out = np.maximum(out, np.where(c, d, 0.0))
    return out


def pose(joints) -> np.ndarray:
    """(..., 22, 3) -> root-relative joints turned to face +Z (hips + shoulders facing), for comparing poses."""
    j = np.asarray(joints, np.float64)
    rel = j - j[..., :1, :] * np.array([1.0, 0.0, 1.0])
    across = (j[..., 1, :] - j[..., 2, :]) + (j[..., 16, :] - j[..., 17, :])
    ang = np.arctan2(-across[..., 2], across[..., 0])  # the angle turning +X onto "across"
    c, s = np.cos(-ang)[..., None], np.sin(-ang)[..., None]
    x, z = rel[..., 0], rel[..., 2]
    out = rel.copy()
    out[..., 0] = c * x + s * z
    out[..., 2] = -s * x + c * z
    return out
