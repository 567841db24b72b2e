"""Feet on the ground: the fitted motion stands on the floor (y = 0), feet in contact touch it and stay put.

Runs on the fitted parameters (after the IK and the refinement), analytically, vectorised over frames, with
numpy/scipy only:

1. **Contacts** of the ankle and toe joints (``FOOT_JOINTS``: left ankle, left foot, right ankle, right foot)
   from the input joints (slow and near the floor: ``optimize.detect_contacts``) and the generator's own
   predictions (the four HumanML3D foot-contact channels) when given; one-frame gaps are closed, and soft
   weights ramp in and out over a few frames.
2. **Targets**: a contact is pinned at one place (its mean position; a new place once the foot has moved
   ``lock_radius_m`` from it, with a short blend), at its rest height: toe joints on the floor (y = 0), ankles
   at the rest skeleton's ankle-above-toe height. A foot without contact keeps its fitted path, lifted
   (smoothly) where it would be below the floor.
3. **Pelvis height**: a smooth vertical correction from the contacts' height errors (the fit restores the
   median bone lengths, so a generated short leg leaves the fitted foot below the floor), interpolated across
   flight phases; lowered further (smoothly) where a pinned foot would be out of the leg's reach.
4. **Leg IK** per frame: the knee turns about its hinge axis until the hip-ankle distance is right, the hip
   swings minimally to point the leg at the target (the knee's bend plane is kept), the ankle turns the toe
   to its target.

5. **Hands on the floor** (push-ups, crawling, getting up from the ground): a wrist low (``hand_height_m``) and
   slow (``hand_speed_mps``) is pinned the same way (its place, a new one after ``lock_radius_m``; its height
   the contact's median; fully on every contact frame, ramping in and out just outside it: ``hand_weights``),
   no wrist goes lower than ``hand_floor_m`` (lifted smoothly, contact or not), and the arm is solved like a
   leg: the elbow turns about its hinge for the shoulder-wrist distance, the shoulder swings minimally, the
   wrist keeps its orientation in the world (a flat palm stays flat). Generated hands on the floor creep as
   feet do.

Only the root translation's height and the hip, knee, ankle (and, for hands in contact, shoulder, elbow and
wrist) rotations change; bone lengths cannot change (forward kinematics of the rest skeleton).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter1d, maximum_filter1d

from . import skeleton as sk
from .ik import HINGE_AXES, _signed_angle, axis_angle_matrix, swing
from .optimize import FOOT_JOINTS, detect_contacts

#: (hip, knee, ankle, toe) of each leg and the columns of its ankle and toe in FOOT_JOINTS order.
LEGS = ((sk.L_HIP, sk.L_KNEE, sk.L_ANKLE, sk.L_FOOT), (sk.R_HIP, sk.R_KNEE, sk.R_ANKLE, sk.R_FOOT))
LEG_COLUMNS = ((0, 1), (2, 3))
#: (shoulder, elbow, wrist) of each arm (left, right): the columns of hand_contacts.
ARMS = ((sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST), (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST))


@dataclass
class GroundSettings:
    smooth_sigma: float = 0.5         # frames: Gaussian low-pass of the fitted rotations and root over time
    ramp_frames: float = 6.0          # contact weights go 0 -> 1 over this many frames (centred on the edge)
    lock_radius_m: float = 0.08       # a pinned foot gets a new place once the input has moved this far
    lock_blend_sigma: float = 1.0     # frames: blend between two places of one contact
    pelvis_sigma: float = 8.0         # frames: smoothing of the pelvis height correction
    pelvis_support: float = 0.5       # contact weight (smoothed sum over joints) below which it is interpolated
    lift_frames: int = 3              # half-width of the (smooth) lift envelope of feet below the floor
    reach: float = 0.998              # fraction of thigh + shin a pinned foot may be away from the hip
    max_drop_m: float = 0.15          # the pelvis is lowered at most this much for a foot out of reach
    floor_search_m: float = 0.25      # the input must have feet within this of y = 0 (else: not grounded)
    speed_mps: float = 0.25           # contact from the joints: slower than this ...
    model_speed_mps: float = 0.5      # ... or predicted by the model and slower than this ...
    height_m: float = 0.05            # ... and within this of the joint's floor height
    min_frames: int = 3               # shorter contacts are dropped (after closing one-frame gaps)
    target_sigma: float = 1.0         # frames: smoothing of the feet's paths where they are not pinned
    swing_clearance_m: float = 0.07   # a foot without contact moving fast: its toe at least this high ...
    swing_speed_mps: tuple = (0.3, 1.0)  # ... from 0 at the first speed to all of it at the second
    hands: bool = True                # pin hands on the floor too (push-ups, crawling)
    hand_height_m: float = 0.15       # a wrist joint lower than this above the floor ...
    hand_speed_mps: float = 0.35      # ... and slower than this (horizontally) is a hand contact
    hand_floor_m: float = 0.03        # a pinned wrist joint is never lower than this (the palm's thickness)


@dataclass
class GroundInfo:
    applied: bool
    reason: str = ""
    contact_frames: list = field(default_factory=lambda: [0, 0, 0, 0])  # per FOOT_JOINTS column
    pelvis_shift_m: np.ndarray | None = None   # (T,) vertical pelvis correction (contacts' height - reach)
    reach_drop_m: np.ndarray | None = None     # (T,) the part of it that lowers the pelvis for the reach
    rest_heights_m: tuple = (0.0, 0.0, 0.0, 0.0)
    hand_contact_frames: list = field(default_factory=lambda: [0, 0])  # left, right wrist


# --------------------------------------------------------------------------------------------- helpers
def rest_heights(rest: np.ndarray) -> np.ndarray:
    """(4,) height above the floor of each FOOT_JOINTS joint in the rest pose: toes 0, ankles their height
    above the toe joint of the same foot."""
    r = np.asarray(rest, float)
    out = np.zeros(4)
    for (_, _, ankle, toe), (ca, _) in zip(LEGS, LEG_COLUMNS):
        out[ca] = max(r[ankle, 1] - r[toe, 1], 0.0)
    return out


def _runs(m: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def clean_mask(mask: np.ndarray, gap: int = 1, min_frames: int = 3) -> np.ndarray:
    """Close gaps of at most ``gap`` frames inside contacts, then drop contacts shorter than ``min_frames``."""
    out = np.asarray(mask, bool).copy()
    for k in range(out.shape[1]):
        m = out[:, k]
        for a, b in _runs(~m):
            if 0 < a and b < len(m) and b - a <= gap:
                m[a:b] = True
        for a, b in _runs(m):
            if b - a < min_frames:
                m[a:b] = False
    return out


def ramp_weights(mask: np.ndarray, ramp: float) -> np.ndarray:
    """Soft contact weights (T, K) in [0, 1]: 1 inside a contact, a smoothstep over ``ramp`` frames centred
    on each edge (half inside, half outside). The clip's ends are not edges."""
    m = np.asarray(mask, bool)
    out = np.zeros(m.shape)
    for k in range(m.shape[1]):
        col = m[:, k]
        if not col.any():
            continue
        if col.all():
            out[:, k] = 1.0
            continue
        d_in = distance_transform_edt(col)      # inside: frames to the nearest non-contact
        d_out = distance_transform_edt(~col)    # outside: frames to the nearest contact
        s = np.where(col, d_in - 0.5, -(d_out - 0.5))
        x = np.clip((s + 0.5 * ramp) / max(ramp, 1e-6), 0.0, 1.0)
        out[:, k] = x * x * (3.0 - 2.0 * x)
    return out


def hand_weights(mask: np.ndarray, ramp: float) -> np.ndarray:
    """Hand contact weights (T, K) in [0, 1]: 1 on every contact frame (a hand on the floor does not move at all;
    generated ones rest for a few frames at a time, so a ramp across the edge would leave most of a contact
    sliding), easing to 0 over the ``ramp`` frames outside it (feet ramp across the edge: ``ramp_weights``)."""
    half = max(1, int(round(ramp / 2)))
    grown = binary_dilation(np.asarray(mask, bool), structure=np.ones((3, 1), bool), iterations=half)  # over time
    return ramp_weights(grown, ramp)


def lock_paths(xz: np.ndarray, mask: np.ndarray, radius: float, blend_sigma: float) -> np.ndarray:
    """Pinned horizontal positions (T, K, 2) of contacts: each contact's mean position, split into a new
    place whenever the input moves more than ``radius`` from the current place's running mean (blended over
    ``blend_sigma`` frames). Frames outside contacts take the nearest contact's place (for the ramps)."""
    t, kk = mask.shape
    out = np.array(xz, float, copy=True)
    for k in range(kk):
        runs = _runs(mask[:, k])
        if not runs:
            continue
        path = np.full((t, 2), np.nan)
        for a, b in runs:
            seg = np.empty((b - a, 2))
            start = a
            while start < b:
                end = start + 1
                total = xz[start, k].copy()
                while end < b:
                    mean = total / (end - start)
                    if np.linalg.norm(xz[end, k] - mean) > radius:
                        break
                    total += xz[end, k]
                    end += 1
                seg[start - a:end - a] = total / (end - start)
                start = end
            if b - a > 1 and blend_sigma > 0:
                seg = gaussian_filter1d(seg, blend_sigma, axis=0, mode="nearest")
            path[a:b] = seg
        nearest = distance_transform_edt(np.isnan(path[:, 0]), return_distances=False, return_indices=True)[0]
        out[:, k] = path[nearest]
    return out


def smooth_envelope(x: np.ndarray, half_width: int) -> np.ndarray:
    """A smooth curve that (nearly) covers ``x`` (>= 0) from above: running maximum over +-half_width frames,
    then a Gaussian of sigma half_width / 2.5 (>= 98.8 % of a lone peak is kept)."""
    x = np.asarray(x, float)
    if half_width <= 0 or len(x) < 2 or not np.any(x > 0):
        return x.copy()
    env = maximum_filter1d(x, size=2 * half_width + 1, axis=0, mode="nearest")
    return gaussian_filter1d(env, half_width / 2.5, axis=0, mode="nearest")


def _globals(local: np.ndarray) -> np.ndarray:
    g = np.empty_like(local)
    for j in range(local.shape[1]):
        p = sk.SMPL_PARENTS[j]
        g[:, j] = local[:, j] if p < 0 else g[:, p] @ local[:, j]
    return g


def _fk(rest: np.ndarray, glob: np.ndarray, trans: np.ndarray) -> np.ndarray:
    out = np.empty(glob.shape[:2] + (3,))
    out[:, 0] = rest[0] + trans
    for j in range(1, glob.shape[1]):
        p = sk.SMPL_PARENTS[j]
        out[:, j] = out[:, p] + glob[:, p] @ (rest[j] - rest[p])
    return out


def _interp_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` (T, ...) on the ``valid`` frames, linearly interpolated over time to every frame (held
    constant before the first and after the last valid frame); zeros when no frame is valid."""
    values = np.asarray(values, float)
    if not valid.any():
        return np.zeros_like(values)
    idx = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(idx, idx[valid], flat[valid, c]) for c in range(flat.shape[1])], -1)
    return out.reshape(values.shape)


# ---------------------------------------------------------------------------------------------- contacts
def foot_contacts(joints: np.ndarray, rest: np.ndarray, contacts: np.ndarray | None = None, fps: float = 20.0,
                  settings: GroundSettings | None = None) -> np.ndarray:
    """Contact mask (T, 4) (FOOT_JOINTS order) of input joints (T, 22, 3), from the joints and, when given,
    the generator's contact predictions ``contacts`` (T, 4) or (T-1, 4)."""
    s = settings or GroundSettings()
    j = np.asarray(joints, float)
    feet = j[:, list(FOOT_JOINTS), 1]
    # each joint's floor: its low level over the clip, but never above its rest height + 3 cm (a foot that
    # never touches does not define the floor)
    floor = np.minimum(np.percentile(feet, 5, axis=0), rest_heights(rest) + 0.03)
    mask, _ = detect_contacts(j, fps, speed_mps=s.speed_mps, height_m=s.height_m, reach_m=np.inf,
                              model_contacts=contacts, model_speed_mps=s.model_speed_mps, floor=floor)
    return clean_mask(mask, gap=1, min_frames=s.min_frames)


def hand_contacts(joints: np.ndarray, fps: float = 20.0, settings: GroundSettings | None = None) -> np.ndarray:
    """Contact mask (T, 2) (left, right wrist) of input joints (T, 22, 3) on the floor (y = 0): the wrist joint
    lower than ``hand_height_m`` and slower than ``hand_speed_mps`` horizontally, for ``min_frames`` or more
    (one-frame gaps closed)."""
    s = settings or GroundSettings()
    w = np.asarray(joints, float)[:, [sk.L_WRIST, sk.R_WRIST]]
    if len(w) < 2:
        return np.zeros((len(w), 2), bool)
    speed = np.linalg.norm(np.gradient(w[..., [0, 2]], axis=0), axis=-1) * fps
    return clean_mask((w[..., 1] < s.hand_height_m) & (speed < s.hand_speed_mps), gap=1, min_frames=s.min_frames)


def is_floor_aligned(joints: np.ndarray, search_m: float = 0.25) -> bool:
    """True when the input stands on y = 0 (HumanML3D's floor): its lowest foot joint comes near it."""
    low = np.asarray(joints, float)[:, list(FOOT_JOINTS), 1].min(axis=1)
    return bool(abs(np.percentile(low, 10)) < search_m)


# ------------------------------------------------------------------------------------------------ solver
def ground_fit(rest: np.ndarray, local: np.ndarray, trans: np.ndarray, joints: np.ndarray,
               contacts: np.ndarray | None = None, *, lock: bool = True, fps: float = 20.0,
               settings: GroundSettings | None = None):
    """Put a fitted motion's feet on the floor.

    ``rest`` (24, 3) rest joints, ``local`` (T, 24, 3, 3) local rotations, ``trans`` (T, 3): the fit;
    ``joints`` (T, 22, 3): the input joints (contacts are detected on them); ``contacts``: the generator's
    foot-contact predictions (T, 4) or (T-1, 4) in FOOT_JOINTS order, or None; ``lock``: pin contacts in
    place horizontally (else only their height is corrected).
    Returns (local, trans, GroundInfo).
    """
    s = settings or GroundSettings()
    rest = np.asarray(rest, float)
    local = np.array(local, float, copy=True)
    trans = np.array(trans, float, copy=True)
    t = local.shape[0]
    heights = rest_heights(rest)
    if not is_floor_aligned(joints, s.floor_search_m):
        return local, trans, GroundInfo(False, f"the input's feet are not near the floor (y = 0 within "
                                               f"{s.floor_search_m:g} m)", rest_heights_m=tuple(heights))
    mask = foot_contacts(joints, rest, contacts, fps, s)
    w = ramp_weights(mask, s.ramp_frames)                                     # (T, 4)

    if s.smooth_sigma > 0 and t > 2:
        # a slight low-pass of the fit over time (generated joints carry frame-to-frame noise that the rigid
        # skeleton turns into jerk); the feet are placed exactly afterwards
        local = gaussian_filter1d(local, s.smooth_sigma, axis=0, mode="nearest")
        u, _, vt = np.linalg.svd(local)
        local = u @ vt
        trans = gaussian_filter1d(trans, s.smooth_sigma, axis=0, mode="nearest")
    glob = _globals(local)
    pos = _fk(rest, glob, trans)
    feet = pos[:, list(FOOT_JOINTS)]                                          # (T, 4, 3)

    # 1. pelvis height from the contacts' height errors, interpolated over frames without contact
    #    (slow: a normalised Gaussian average of the contacts' errors; across flights and other frames far
    #    from any contact, interpolated between the contacts before and after)
    err = heights[None, :] - feet[..., 1]
    num, den = (w * err).sum(1), w.sum(1)
    if t > 1 and s.pelvis_sigma > 0:
        num = gaussian_filter1d(num, s.pelvis_sigma, mode="nearest")
        den = gaussian_filter1d(den, s.pelvis_sigma, mode="nearest")
    supported = den >= s.pelvis_support
    delta = _interp_missing(num / np.maximum(den, 1e-9), supported)
    trans[:, 1] += delta
    pos[..., 1] += delta[:, None]
    feet = pos[:, list(FOOT_JOINTS)]

    # 2. targets of the ankles and toes
    place = feet.copy()
    place[..., 1] = heights[None, :]
    if lock:
        place[..., [0, 2]] = lock_paths(feet[..., [0, 2]], mask, s.lock_radius_m, s.lock_blend_sigma)
    disp = w[..., None] * (place - feet)                                      # (T, 4, 3)
    targets = feet.copy()
    w_foot = np.stack([np.maximum(w[:, ca], w[:, co]) for ca, co in LEG_COLUMNS], 1)   # (T, 2)
    for leg, (ca, co) in enumerate(LEG_COLUMNS):
        # a pinned toe carries a free ankle along (and vice versa): the foot is rigid
        d_a = disp[:, ca] + (1.0 - w[:, ca, None]) * disp[:, co]
        d_o = disp[:, co] + (1.0 - w[:, co, None]) * disp[:, ca]
        # between contacts the foot's path is warped by the displacements of the contacts before and after
        # (linear in time), so a swing starts where the foot was pinned and lands where it will be pinned
        full = w_foot[:, leg] > 0.95
        free_a, free_o = _interp_missing(d_a, full), _interp_missing(d_o, full)
        targets[:, ca] += d_a + (1.0 - w_foot[:, leg, None]) * free_a
        targets[:, co] += d_o + (1.0 - w_foot[:, leg, None]) * free_o
    if s.target_sigma > 0 and t > 1:
        # smooth the paths where the feet are free (a pinned foot stays exactly where it is pinned)
        smooth = gaussian_filter1d(targets, s.target_sigma, axis=0, mode="nearest")
        for leg, cols in enumerate(LEG_COLUMNS):
            wf = w_foot[:, leg, None, None]
            targets[:, cols] = wf * targets[:, cols] + (1.0 - wf) * smooth[:, cols]
    for leg, (ca, co) in enumerate(LEG_COLUMNS):
        if s.swing_clearance_m > 0 and t > 1:
            # a foot swinging fast clears the floor (generated swings often drag the toe along it)
            speed = np.linalg.norm(np.gradient(targets[:, co, [0, 2]], axis=0), axis=-1) * fps
            x = np.clip((speed - s.swing_speed_mps[0]) / (s.swing_speed_mps[1] - s.swing_speed_mps[0]), 0, 1)
            want = s.swing_clearance_m * x * x * (3 - 2 * x)
            clear = smooth_envelope(np.maximum(0.0, want - targets[:, co, 1]), s.lift_frames)
            clear *= 1.0 - w_foot[:, leg]
            targets[:, ca, 1] += clear
            targets[:, co, 1] += clear
        # nothing below the floor: an ankle lifts its foot, a toe tilts it (both smoothly)
        lift = smooth_envelope(np.maximum(0.0, -targets[:, ca, 1]), s.lift_frames)
        targets[:, ca, 1] += lift
        targets[:, co, 1] += lift
        targets[:, co, 1] += smooth_envelope(np.maximum(0.0, -targets[:, co, 1]), s.lift_frames)

    # 3. lower the pelvis where a target is out of the leg's reach (farther than both the nearly straight
    #    leg and the fitted leg): just enough for the leg to reach it, if lowering helps at all
    drop = np.zeros(t)
    for (hip, knee, ankle, _), (ca, _) in zip(LEGS, LEG_COLUMNS):
        full = np.linalg.norm(rest[knee] - rest[hip]) + np.linalg.norm(rest[ankle] - rest[knee])
        reach = np.maximum(s.reach * full, np.linalg.norm(feet[:, ca] - pos[:, hip], axis=-1))
        d = targets[:, ca] - pos[:, hip]
        horiz = np.hypot(d[:, 0], d[:, 2])
        need = -d[:, 1] - np.sqrt(np.maximum(reach ** 2 - horiz ** 2, 0.0))
        ok = (np.linalg.norm(d, axis=-1) > reach) & (horiz < reach) & (d[:, 1] < 0)
        drop = np.maximum(drop, np.where(ok, np.clip(need, 0.0, s.max_drop_m), 0.0))
    drop = smooth_envelope(drop, 2 * s.lift_frames)
    trans[:, 1] -= drop
    pos[..., 1] -= drop[:, None]

    # 4. leg IK; where a straight (not over-stretched) leg still cannot reach its target, the pelvis comes down
    #    by the rest (smoothly) and the legs are solved again
    def solve_legs():
        out = local.copy()
        for (hip, knee, ankle, toe), (ca, co) in zip(LEGS, LEG_COLUMNS):
            out[:, hip], out[:, knee], out[:, ankle] = _leg_ik(
                rest, glob, local, pos[:, hip], targets[:, ca], targets[:, co], hip, knee, ankle, toe)
        return out

    solved = solve_legs()
    for _ in range(2):
        reached = _fk(rest, _globals(solved), trans)[:, [leg[2] for leg in LEGS], 1]
        miss = np.maximum(reached - targets[:, [ca for ca, _ in LEG_COLUMNS], 1], 0.0).max(1)
        if miss.max() < 1e-3:
            break
        extra = np.minimum(smooth_envelope(np.where(miss >= 1e-3, miss, 0.0), 2 * s.lift_frames),
                           np.maximum(s.max_drop_m - drop, 0.0))
        trans[:, 1] -= extra
        pos[..., 1] -= extra[:, None]
        drop = drop + extra
        solved = solve_legs()
    local = solved
    hands = hand_contacts(joints, fps, s) if s.hands else np.zeros((t, 2), bool)
    if s.hands:
        local = _pin_hands(rest, local, trans, hands, lock, s)
    info = GroundInfo(True, contact_frames=[int(c) for c in mask.sum(0)],
                      pelvis_shift_m=delta - drop, reach_drop_m=drop,
                      rest_heights_m=tuple(float(h) for h in heights),
                      hand_contact_frames=[int(c) for c in hands.sum(0)])
    return local, trans, info


def _pin_hands(rest, local, trans, mask, lock, s: GroundSettings):
    """Step 5: wrists in contact (``mask`` (T, 2)) pinned where they are put down, and no wrist lower than
    ``hand_floor_m`` (lifted smoothly), by arm IK. Returns ``local`` itself when there is nothing to do."""
    glob = _globals(local)
    pos = _fk(rest, glob, trans)
    wrists = pos[:, [arm[2] for arm in ARMS]]                                  # (T, 2, 3)
    if not mask.any() and wrists[..., 1].min() >= s.hand_floor_m:
        return local
    w = hand_weights(mask, s.ramp_frames)
    place = wrists.copy()
    if lock:
        place[..., [0, 2]] = lock_paths(wrists[..., [0, 2]], mask, s.lock_radius_m, s.lock_blend_sigma)
    for k in range(2):
        height = wrists[:, k, 1].copy()
        for a, b in _runs(mask[:, k]):
            height[a:b] = np.median(height[a:b])
        place[:, k, 1] = np.maximum(height, s.hand_floor_m)
    targets = wrists + w[..., None] * (place - wrists)
    out = local.copy()
    for k, (shoulder, elbow, wrist) in enumerate(ARMS):
        lift = smooth_envelope(np.maximum(0.0, s.hand_floor_m - targets[:, k, 1]), s.lift_frames)
        targets[:, k, 1] += lift
        on = (w[:, k] > 1e-6) | (lift > 1e-9)
        if not on.any():
            continue
        r_sh, r_el, r_wr = _arm_ik(rest, glob, local, pos[:, shoulder], targets[:, k], shoulder, elbow, wrist)
        out[on, shoulder], out[on, elbow], out[on, wrist] = r_sh[on], r_el[on], r_wr[on]
    return out


def _reach(rest, glob, local, root_pos, target, upper, hinge, end):
    """Two-bone reach: the hinge joint turns about its axis until ``end`` is as far from ``upper`` (at
    ``root_pos``) as ``target``, never past straight (or no worse than the fit, where it already is), then
    ``upper`` swings minimally to point the limb at ``target``. Returns the new global rotation of ``upper``
    and the new local rotations of ``upper`` and ``hinge`` (each (T, 3, 3))."""
    g_parent = glob[:, sk.SMPL_PARENTS[upper]]
    g_upper = glob[:, upper]
    r_hinge = local[:, hinge]
    first = g_upper @ (rest[hinge] - rest[upper])
    g_hinge = g_upper @ r_hinge
    second = g_hinge @ (rest[end] - rest[hinge])
    # the hinge: rotate the second bone about the hinge axis (in the upper joint's frame, positive = flexion)
    axis = g_upper @ HINGE_AXES[hinge]
    s_par = np.sum(second * axis, -1, keepdims=True) * axis
    s_perp = second - s_par
    s_perp2 = np.cross(axis, s_perp)
    u = first + s_par
    a_ = np.sum(u * s_perp, -1)
    b_ = np.sum(u * s_perp2, -1)
    rho = np.maximum(np.hypot(a_, b_), 1e-12)
    phi = np.arctan2(b_, a_)                       # the straight limb (longest reach) is at delta = phi
    want = np.linalg.norm(target - root_pos, axis=-1)
    c = (want ** 2 - np.sum(u * u, -1) - np.sum(s_perp * s_perp, -1)) / (2.0 * rho)
    gamma = np.arccos(np.clip(c, -1.0, 1.0))       # bend from straight needed for that distance
    delta = phi + gamma                            # bent the flexion way
    delta = np.arctan2(np.sin(delta), np.cos(delta))
    # never past straight: the hinge angle (about the axis, from the rest bone) stays >= 0 (or, when the fit
    # already bends it backwards, gets no worse)
    l0 = rest[end] - rest[hinge]
    l0 = l0 / np.linalg.norm(l0)
    bend = _signed_angle(l0, r_hinge @ l0, HINGE_AXES[hinge])
    delta = np.maximum(delta, np.minimum(0.0, -bend))
    r_hinge_new = axis_angle_matrix(HINGE_AXES[hinge], delta) @ r_hinge
    # the upper joint: minimal swing pointing the limb at the target
    limb = first + (g_upper @ r_hinge_new) @ (rest[end] - rest[hinge])
    g_upper_new = swing(limb, target - root_pos) @ g_upper
    return g_upper_new, np.swapaxes(g_parent, -1, -2) @ g_upper_new, r_hinge_new


def _arm_ik(rest, glob, local, shoulder_pos, wrist_target, shoulder, elbow, wrist):
    """New local rotations of shoulder, elbow and wrist (T, 3, 3) bringing the wrist to ``wrist_target``; the
    wrist keeps its global orientation (the hand does not turn with the arm)."""
    g_shoulder_new, r_shoulder_new, r_elbow_new = _reach(rest, glob, local, shoulder_pos, wrist_target,
                                                         shoulder, elbow, wrist)
    g_elbow_new = g_shoulder_new @ r_elbow_new
    r_wrist_new = np.swapaxes(g_elbow_new, -1, -2) @ glob[:, wrist]
    return r_shoulder_new, r_elbow_new, r_wrist_new


def _leg_ik(rest, glob, local, hip_pos, ankle_target, toe_target, hip, knee, ankle, toe):
    """New local rotations of hip, knee and ankle (T, 3, 3) bringing the ankle to ``ankle_target`` and
    pointing the foot at ``toe_target``."""
    g_hip_new, r_hip_new, r_knee_new = _reach(rest, glob, local, hip_pos, ankle_target, hip, knee, ankle)
    r_ankle = local[:, ankle]
    # ankle: turn the foot so that the toe points at its target
    g_knee_new = g_hip_new @ r_knee_new
    ankle_pos = hip_pos + g_hip_new @ (rest[knee] - rest[hip]) + g_knee_new @ (rest[ankle] - rest[knee])
    g_ankle_tmp = g_knee_new @ r_ankle
    foot = g_ankle_tmp @ (rest[toe] - rest[ankle])
    # the toe lands at its target's height (when the foot is long enough), in its target's direction
    length = np.linalg.norm(rest[toe] - rest[ankle])
    aim = toe_target - ankle_pos
    dy = np.clip(aim[:, 1], -length, length)
    horiz = aim[:, [0, 2]]
    hn = np.linalg.norm(horiz, axis=-1, keepdims=True)
    fallback = foot[:, [0, 2]] / np.maximum(np.linalg.norm(foot[:, [0, 2]], axis=-1, keepdims=True), 1e-12)
    hdir = np.where(hn > 1e-6, horiz / np.maximum(hn, 1e-12), fallback)
    hlen = np.sqrt(np.maximum(length ** 2 - dy ** 2, 0.0))
    aim = np.stack([hdir[:, 0] * hlen, dy, hdir[:, 1] * hlen], -1)
    g_ankle_new = swing(foot, aim) @ g_ankle_tmp
    r_ankle_new = np.swapaxes(g_knee_new, -1, -2) @ g_ankle_new
    return r_hip_new, r_knee_new, r_ankle_new
