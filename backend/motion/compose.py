"""Joining HumanML3D feature sequences one after another (pure numpy).

Features hold the root's motion as velocities in its own facing frame, so a sequence appended to another
continues from where, and in the direction, the first one ended once the joints are recovered
(``features_to_joints``). Consecutive parts are cross-faded over ``blend`` frames so the pose does not jump.
"""

from __future__ import annotations

import numpy as np

__all__ = ["join_features"]


def join_features(parts, blend: int = 8) -> np.ndarray:
    """[(T_i, 263), ...] -> (sum T_i - blend * (n - 1), 263) float32: the last ``blend`` frames of each part
    blend linearly into the first ``blend`` frames of the next. Every part must be longer than ``blend``."""
    arrs = [np.asarray(p, dtype=np.float32) for p in parts]
    if not arrs:
        raise ValueError("join_features needs at least one part")
    if any(a.ndim != 2 or a.shape[1] != arrs[0].shape[1] for a in arrs):
        raise ValueError("every part must be (T, D) with the same D")
    if blend < 0:
        raise ValueError("blend must be >= 0")
    if len(arrs) > 1 and any(len(a) <= blend for a in arrs):
        raise ValueError(f"every part must be longer than the {blend}-frame blend")
    if len(arrs) == 1 or blend == 0:
        return np.concatenate(arrs)
    w = np.linspace(0.0, 1.0, blend + 2, dtype=np.float32)[1:-1, None]
    out = arrs[0]
    for nxt in arrs[1:]:
        mid = (1 - w) * out[-blend:] + w * nxt[:blend]
        out = np.concatenate([out[:-blend], mid, nxt[blend:]])
    return out
