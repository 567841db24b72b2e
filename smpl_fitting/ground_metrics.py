"""Measures of how a motion stands on the floor (y = 0), shared by the tests and ``bench/quality.py``.

Every function takes joints ``(T, J, 3)`` (J >= 22: HumanML3D / SMPL order, y-up, metres, 20 fps) and works on
the SMPL foot joints 7, 8 (ankles) and 10, 11 (toes; SMPL calls them "foot").

* ``lowest_foot``: the lowest foot joint of a clip (negative = below the floor); ``penetration`` summarises it
  over clips (median, worst, share of clips more than 1 cm / 3 cm below).
* ``contact_skate``: mean horizontal toe speed on frames where the toe is within 5 cm of the floor (on both
  frames of a step), per clip.
* ``floating``: on contact frames (a mask, e.g. ``ground.foot_contacts``), how far the toes are above the
  floor and the ankles above their rest height (signed, and as a mean distance).
* ``jerk``: mean absolute third difference of the 22 joint positions (metres per frame^3).
"""

from __future__ import annotations

import numpy as np

ANKLES = (7, 8)
TOES = (10, 11)
FOOT_JOINTS = (7, 10, 8, 11)   # l_ankle, l_foot, r_ankle, r_foot: the HumanML3D contact-channel order
FPS = 20.0


def lowest_foot(joints) -> float:
    """Height (m) of the lowest ankle/toe joint over the clip (negative: below the floor)."""
    j = np.asarray(joints, float)
    return float(j[:, list(FOOT_JOINTS), 1].min())


def penetration(lows) -> dict:
    """Summary over clips of ``lowest_foot`` values (m): median and worst (cm), share of clips > 1 / > 3 cm
    below the floor."""
    lows = np.asarray(lows, float)
    return {"median_cm": float(np.median(lows) * 100), "worst_cm": float(lows.min() * 100),
            "share_below_1cm": float(np.mean(lows < -0.01)), "share_below_3cm": float(np.mean(lows < -0.03))}


def contact_skate(joints, height: float = 0.05, fps: float = FPS) -> float | None:
    """Mean horizontal toe speed (m/s) on the steps (frame t -> t+1) where the toe is within ``height`` of the
    floor on both frames; None when the toes never are."""
    j = np.asarray(joints, float)
    speeds = []
    for toe in TOES:
        y = j[:, toe, 1]
        step = np.linalg.norm(np.diff(j[:, toe][:, [0, 2]], axis=0), axis=-1) * fps
        low = (y[1:] < height) & (y[:-1] < height)
        speeds.append(step[low])
    s = np.concatenate(speeds)
    return float(s.mean()) if len(s) else None


def floating(joints, contacts, rest_heights=(0.055, 0.0, 0.055, 0.0)) -> dict:
    """On contact frames: mean height (m) of the toes above the floor and of the ankles above their rest
    height, the mean of both, and the mean distance of both to it either way (``abs_m``). ``contacts`` (T, 4) bool in FOOT_JOINTS order; ``rest_heights`` (4,) the
    joints' rest heights above the floor (toes 0). NaN where there is no contact."""
    j = np.asarray(joints, float)[:, list(FOOT_JOINTS), 1] - np.asarray(rest_heights, float)[None, :]
    m = np.asarray(contacts, bool)[: len(j)]
    toe_cols, ankle_cols = [1, 3], [0, 2]

    def mean(cols, f=lambda v: v):
        v = j[:, cols][m[:, cols]]
        return float(f(v).mean()) if len(v) else float("nan")

    return {"toe_m": mean(toe_cols), "ankle_m": mean(ankle_cols), "all_m": mean([0, 1, 2, 3]),
            "abs_m": mean([0, 1, 2, 3], np.abs), "frames": int(m.sum())}


def jerk(joints) -> float:
    """Mean |third difference over time| of the 22 joint positions (m / frame^3); 0 for < 4 frames."""
    j = np.asarray(joints, float)[:, :22]
    if len(j) < 4:
        return 0.0
    return float(np.abs(np.diff(j, 3, axis=0)).mean())


def mean_defined(values) -> float:
    """Mean of the values that are not None/NaN (NaN if none)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
    return float(v.mean()) if len(v) else float("nan")
