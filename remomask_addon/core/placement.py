"""Where a new take goes: the maths (bpy-free; ``blender/take_placement.py`` applies it to a scene).

A take's *footprint* is the axis-aligned box (min xyz, max xyz) that its body sweeps over the whole motion, in
Blender's z-up metres. ``beside_offset`` slides a footprint along +X, from where it starts, until it keeps
``gap`` metres (in X or in Y) from every other box it meets in height: beside the previous takes and clear of
the user's objects (a take is never buried in the default cube). Boxes that are only a floor under the take
(they overlap its height by less than ``floor_tolerance``) never push it away.
"""

from __future__ import annotations

import numpy as np

#: Metres kept between a new take and the boxes beside it.
GAP = 0.5
#: Half the body's thickness around the bone points it is measured from (arms, hands, feet, head).
BODY_PAD = 0.2
#: Boxes that overlap a take's height by less than this are a floor under it, not an obstacle.
FLOOR_TOLERANCE = 0.1
#: The footprint of a take whose bones cannot be measured: a standing person at the origin.
DEFAULT_FOOTPRINT = ((-0.5, -0.5, 0.0), (0.5, 0.5, 1.8))


def as_box(box) -> np.ndarray:
    """A (2, 3) float array (min corner, max corner) from any pair of 3-vectors (or 6 numbers)."""
    b = np.asarray(box, dtype=np.float64).reshape(2, 3)
    return np.stack([b.min(axis=0), b.max(axis=0)])


def footprint(points, pad: float = BODY_PAD) -> np.ndarray:
    """The box around ``points`` (..., 3), widened by ``pad`` on every side and upwards (not below the lowest
    point: the feet are on the floor). ``DEFAULT_FOOTPRINT`` when there are no points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    p = p[np.isfinite(p).all(axis=1)]
    if not len(p):
        return as_box(DEFAULT_FOOTPRINT)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return np.stack([lo - [pad, pad, 0.0], hi + pad])


def box_of_corners(corners) -> np.ndarray:
    """The axis-aligned box around transformed corners (N, 3), e.g. an object's ``bound_box`` in world space."""
    c = np.asarray(corners, dtype=np.float64).reshape(-1, 3)
    return np.stack([c.min(axis=0), c.max(axis=0)])


def _overlap(a_lo, a_hi, b_lo, b_hi) -> float:
    return min(a_hi, b_hi) - max(a_lo, b_lo)


def beside_offset(box, others, gap: float = GAP, floor_tolerance: float = FLOOR_TOLERANCE) -> float:
    """The smallest shift ``dx >= 0`` along +X after which ``box`` keeps ``gap`` from every box in ``others``
    that it meets in height (by more than ``floor_tolerance``). 0 when nothing is in the way."""
    b = as_box(box)
    blockers = []
    for o in others:
        o = as_box(o)
        if _overlap(b[0, 2], b[1, 2], o[0, 2], o[1, 2]) <= floor_tolerance:
            continue        # above or below the take, or only a floor under it
        if _overlap(b[0, 1] - gap, b[1, 1] + gap, o[0, 1], o[1, 1]) <= 0:
            continue        # beside it in Y: never in the way of a shift along X
        blockers.append((o[0, 0] - gap, o[1, 0] + gap))    # X interval the box may not enter
    candidates = sorted({0.0} | {hi - b[0, 0] for _, hi in blockers if hi - b[0, 0] > 0})
    for dx in candidates:
        if all(_overlap(b[0, 0] + dx, b[1, 0] + dx, lo, hi) <= 0 for lo, hi in blockers):
            return float(dx)
    return float(candidates[-1])   # not reached: the last candidate clears every blocker
