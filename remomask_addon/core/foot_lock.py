"""Planted feet on a retargeted rig (numpy only): foot locking with a two-bone leg IK, for the retargeting solver
(``core/retarget.py`` calls ``lock_legs`` after it has placed the root).

A rig with other proportions than the source (longer thighs, shorter shins, wider hips) follows the source's
bone directions, so its feet slide where the source's stood still. Here, per leg and frame, in the target's
armature space:

1. **Contacts** come from the source (``detect_contacts``): its ankle / toe joint is near its rest height above
   the source's floor and slow. The source is what the generator made and grounded (the backend's
   ``smpl_fitting.ground`` pinned its feet using the model's foot-contact channels), so these are the model's
   contacts. Weights are 1 during a contact and ramp to 0 over a few frames outside it (``contact_weights``).
2. **Pins**: every contact of the target's ankle (toe) is held at one place horizontally, the mean of its own
   path over the contact; heights stay as the retargeting's grounding (``Retargeter.foot_lift``) set them, so
   no foot point goes lower than it did (``pin_positions``).
3. **Pelvis drop**: where a pinned ankle is out of the leg's reach, the whole body is lowered (a smooth envelope,
   at most a tenth of the leg), and feet that are not pinned are put back where they were.
4. **Two-bone IK** (``two_bone_ik``): the knee turns about its hinge (the leg's bend plane) until hip-ankle has
   the target length (clipped to the leg's reach), the thigh swings minimally to point the leg at the pinned
   ankle; the foot keeps its world orientation, turned minimally where its toe is pinned.

Only the thigh, shin and foot rotations change; bone lengths cannot (forward kinematics of the rest). The new
local rotations follow from the world deltas: a bone whose parent moved by ``D_p`` and which should move by
``D`` gets ``L' = L @ W^T @ D_p^T @ D @ W`` (``W``: its world rotation before).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import smpl_rig

#: SMPL bones of each leg: thigh (hip joint), shin (knee joint), foot (ankle joint), toe (toe joint).
SMPL_LEGS = (("left_hip", "left_knee", "left_ankle", "left_foot"),
             ("right_hip", "right_knee", "right_ankle", "right_foot"))
#: A source joint within this height (metres) of its rest height above the floor ...
CONTACT_HEIGHT_M = 0.03
#: ... and slower than this (m/s, horizontal) is in contact.
CONTACT_SPEED_MPS = 0.35
#: Contacts shorter than this many frames (after closing one-frame gaps) are dropped.
MIN_CONTACT_FRAMES = 3
#: Contact weights ramp over this many seconds on each side of an edge.
RAMP_S = 0.1
#: A pinned ankle is kept within this fraction of thigh + shin from the hip.
REACH = 0.999


@dataclass
class Leg:
    """Target bone names of one leg (thigh, shin, foot, toe)."""
    thigh: str
    shin: str
    foot: str
    toe: str


def runs(mask) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(int))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def clean_mask(mask, min_frames: int = MIN_CONTACT_FRAMES) -> np.ndarray:
    """Close one-frame gaps, then drop runs shorter than ``min_frames``."""
    m = np.asarray(mask, bool).copy()
    gap = ~m[1:-1] & m[:-2] & m[2:]
    m[1:-1] |= gap
    for s, e in runs(m):
        if e - s < min_frames:
            m[s:e] = False
    return m


def detect_contacts(positions, rest_heights, floor: float, *, fps: float, height_m: float = CONTACT_HEIGHT_M,
                    speed_mps: float = CONTACT_SPEED_MPS) -> np.ndarray:
    """(F, K) contacts of K joints from their positions (F, K, 3) (z up): within ``height_m`` of their rest
    height above ``floor`` and horizontally slower than ``speed_mps``."""
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 2:
        return np.zeros(p.shape[:2], bool)
    speed = np.linalg.norm(np.gradient(p[..., :2], axis=0), axis=-1) * float(fps)
    low = p[..., 2] - floor < np.asarray(rest_heights, dtype=np.float64)[None] + height_m
    raw = low & (speed < speed_mps)
    return np.stack([clean_mask(raw[:, k]) for k in range(p.shape[1])], -1)


def contact_weights(mask, fps: float, ramp_s: float = RAMP_S) -> np.ndarray:
    """Soft weights in [0, 1] for a (F,) contact mask: 1 on contact frames (a pinned joint does not move at all
    there), falling linearly to 0 over ``ramp_s`` seconds outside them."""
    m = np.asarray(mask, bool)
    w = np.zeros(len(m))
    idx = np.flatnonzero(m)
    if len(idx):
        dist = np.abs(np.arange(len(m))[:, None] - idx[None]).min(axis=1)
        ramp = max(1.0, ramp_s * fps)
        w = np.clip(1.0 - dist / (ramp + 1.0), 0.0, 1.0)
    return w


def pin_positions(path, mask) -> np.ndarray:
    """(F, 3) where a joint is pinned on each frame: the mean of ``path`` (F, 3) horizontally over the contact
    that frame belongs to (the nearest contact outside them), at the path's own height on that frame (heights
    are the retargeting's foot grounding's business); NaN when there is no contact."""
    p = np.asarray(path, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    rs = runs(mask)
    if not rs:
        return out
    centres = np.array([(s + e - 1) / 2.0 for s, e in rs])
    spots = np.array([p[s:e, :2].mean(axis=0) for s, e in rs])
    t = np.arange(len(p))
    owner = np.argmin(np.abs(t[:, None] - centres[None]), axis=1)
    for i, (s, e) in enumerate(rs):
        owner[s:e] = i
    out[:, :2] = spots[owner]
    out[:, 2] = p[:, 2]
    return out


def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12), n[..., 0]


def rotation_between(a, b) -> np.ndarray:
    """(F, 3, 3) smallest rotations turning vectors a (F, 3) onto b (F, 3) (identity where either is ~0)."""
    a, na = _unit(np.asarray(a, dtype=np.float64))
    b, nb = _unit(np.asarray(b, dtype=np.float64))
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.clip(np.einsum("fi,fi->f", a, b), -1.0, 1.0)
    ang = np.arctan2(s, c)
    # opposite vectors: any axis perpendicular to a
    perp = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]))
    axis = np.where((s < 1e-9)[:, None] & (c < 0)[:, None], perp, axis)
    axis, _ = _unit(axis)
    aa = axis * ang[:, None]
    aa[(na < 1e-12) | (nb < 1e-12)] = 0.0
    return smpl_rig.axis_angle_to_matrix(aa)


def two_bone_ik(A, B, C, target, hinge_fallback, reach: float = REACH):
    """World rotations (dA about the hip A, dB about the knee B), each (F, 3, 3), that move the ankle C onto
    ``target`` (F, 3) as far as the leg reaches: dB bends the knee about the leg's bend-plane normal (or
    ``hinge_fallback`` (F, 3) for a straight leg), then dA swings the whole leg minimally. The new ankle is
    ``A + dA @ (B - A + dB @ (C - B))``."""
    A, B, C, T = (np.asarray(x, dtype=np.float64) for x in (A, B, C, target))
    u, l1 = _unit(B - A)
    v, l2 = _unit(C - B)
    n = np.cross(-u, v)
    straight = np.linalg.norm(n, axis=-1) < 1e-6
    n = np.where(straight[:, None], np.asarray(hinge_fallback, dtype=np.float64), n)
    n, _ = _unit(n)
    # interior knee angle now and wanted (law of cosines), distance clipped to what the leg can reach
    phi = np.arccos(np.clip(np.einsum("fi,fi->f", -u, v), -1.0, 1.0))
    d = np.clip(np.linalg.norm(T - A, axis=-1), np.abs(l1 - l2) + 1e-6, reach * (l1 + l2))
    phi_new = np.arccos(np.clip((l1 ** 2 + l2 ** 2 - d ** 2) / np.maximum(2 * l1 * l2, 1e-12), -1.0, 1.0))
    dB = smpl_rig.axis_angle_to_matrix(n * (phi_new - phi)[:, None])
    C1 = B + np.einsum("fij,fj->fi", dB, C - B)
    dA = rotation_between(C1 - A, T - A)
    return dA, dB


def _drop_envelope(need, fps: float, smooth_s: float = 0.15) -> np.ndarray:
    """A smooth curve at or above ``need`` (F,): a running maximum, then a moving average, then ``need`` again."""
    need = np.asarray(need, dtype=np.float64)
    half = max(1, int(round(smooth_s * fps)))
    if len(need) <= 2 * half:
        return need.copy()
    pad = np.pad(need, half, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1)
    env = np.pad(win.max(axis=1), half, mode="edge")
    env = np.convolve(env, np.ones(2 * half + 1) / (2 * half + 1), mode="valid")
    return np.maximum(env, need)


def lock_legs(P, rotations: dict, index: dict, legs, ankle_contacts, toe_contacts, *, fps: float,
              max_drop: float | None = None):
    """Pin the target's feet during contacts.

    P: (F, n, 4, 4) armature-space pose matrices of the target's bones with the root in place; rotations:
    {bone: (F, 3, 3) keyed local rotation} (changed copies are returned for the thigh, shin and foot of each
    leg); index: {bone: column of P}; legs: ``Leg`` per side; ankle_contacts / toe_contacts: (F, len(legs))
    bool. Pins hold the joints still horizontally; their heights stay what the retargeting's foot grounding
    made them. Where a pinned ankle is out of the leg's reach the whole body is lowered (smoothly, at most
    ``max_drop``, default a tenth of the leg), and every foot not pinned is put back where it was.
    Returns ``(rotations, drop (F,), ankles (F, legs, 3), toes (F, legs, 3))``: the caller lowers the root by
    ``drop``; ankles/toes are the joints' new positions.
    """
    P = np.asarray(P, dtype=np.float64)
    out = dict(rotations)
    F = P.shape[0]
    parts = []
    need = np.zeros(F)
    for k, leg in enumerate(legs):
        it, ish, ift, ito = (index[b] for b in (leg.thigh, leg.shin, leg.foot, leg.toe))
        A, B, C, E = (P[:, i, :3, 3] for i in (it, ish, ift, ito))
        wa = contact_weights(ankle_contacts[:, k], fps)
        wt = contact_weights(toe_contacts[:, k], fps)
        pin_a = pin_positions(C, ankle_contacts[:, k])
        pin_t = pin_positions(E, toe_contacts[:, k])
        C_goal = np.where(wa[:, None] > 0, C + wa[:, None] * (np.nan_to_num(pin_a) - C), C)
        reach = 0.998 * (np.linalg.norm(B - A, axis=-1) + np.linalg.norm(C - B, axis=-1))
        h2 = np.sum((C_goal - A)[:, :2] ** 2, axis=-1)
        v_max = np.sqrt(np.maximum(reach ** 2 - h2, 0.0))
        need = np.maximum(need, np.where(wa > 0, (A[:, 2] - C_goal[:, 2]) - v_max, 0.0))
        parts.append((leg, A, B, C, E, wt, pin_t, C_goal, reach))
    if max_drop is None:
        max_drop = 0.1 * float(np.mean([r.mean() for *_, r in parts])) if parts else 0.0
    drop = np.minimum(_drop_envelope(np.maximum(need, 0.0), fps), max_drop)
    down = np.array([0.0, 0.0, 1.0]) * drop[:, None]
    ankles, toes = np.empty((F, len(legs), 3)), np.empty((F, len(legs), 3))
    T = np.swapaxes
    for k, (leg, A, B, C, E, wt, pin_t, C_goal, _) in enumerate(parts):
        Wt, Ws, Wf = (P[:, index[b], :3, :3] for b in (leg.thigh, leg.shin, leg.foot))
        A, B, C0 = A - down, B - down, C - down       # the lowered leg reaches for the goal
        dA, dB = two_bone_ik(A, B, C0, C_goal, hinge_fallback=Wt[:, :, 0])
        C_new = A + np.einsum("fij,fj->fi", dA, B - A + np.einsum("fij,fj->fi", dB, C0 - B))
        # the foot keeps its world orientation, turned minimally where its toe is pinned
        E_free = C_new + (E - C)
        E_goal = np.where(wt[:, None] > 0, E_free + wt[:, None] * (np.nan_to_num(pin_t) - E_free), E_free)
        dF = rotation_between(E - C, E_goal - C_new)
        out[leg.thigh] = rotations[leg.thigh] @ T(Wt, -1, -2) @ dA @ Wt
        out[leg.shin] = rotations[leg.shin] @ T(Ws, -1, -2) @ dB @ Ws
        out[leg.foot] = rotations[leg.foot] @ T(Wf, -1, -2) @ T(dA @ dB, -1, -2) @ dF @ Wf
        ankles[:, k] = C_new
        toes[:, k] = C_new + np.einsum("fij,fj->fi", dF, E - C)
    return out, drop, ankles, toes
