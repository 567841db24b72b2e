"""Reusable plausibility and semantic checks on joint sequences (T, 22, 3), y-up, metres, 20 fps.

Conventions: the person faces +Z at the start and their left side is +X (left_hip.x > right_hip.x).
The root yaw is the angle about +Y of the facing direction forward = (left_hip - right_hip) x up,
measured as atan2(forward.x, forward.z): 0 when facing +Z, positive when turned to the LEFT (towards +X).

Every check returns a `Check` (truthy when it passes) carrying the measured value, so a test can assert
`check(...)` and print `.message` on failure. These are also meant for the starter model's tests: run them
on generated motions of "walk forward", "jump", "wave with the right hand", "turn left", "sit down".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .skeleton import CONTACT_JOINTS, J, PARENTS

FPS = 20


@dataclass(frozen=True)
class Check:
    ok: bool
    value: float
    threshold: float
    message: str

    def __bool__(self) -> bool:
        return bool(self.ok)


def _j(joints) -> np.ndarray:
    a = np.asarray(joints, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] != (22, 3) or a.shape[0] < 2:
        raise ValueError(f"joints must be (T>=2, 22, 3), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("joints contain NaN or inf")
    return a


# ------------------------------------------------------------------------------------ measures ---
def root_yaw(joints) -> np.ndarray:
    """(T,) unwrapped facing angle in radians; + = turned left (towards +X) from facing +Z."""
    a = _j(joints)
    across = a[:, J["left_hip"]] - a[:, J["right_hip"]]
    fwd = np.cross(across, np.array([0.0, 1.0, 0.0]))
    return np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))


def bone_length_drift(joints) -> float:
    """Largest change (m) of any bone's length relative to frame 0."""
    a = _j(joints)
    child = np.arange(1, 22)
    par = np.array(PARENTS[1:])
    lengths = np.linalg.norm(a[:, child] - a[:, par], axis=-1)
    return float(np.abs(lengths - lengths[0]).max())


def foot_skate(joints, contacts) -> float:
    """Largest horizontal+vertical drift (m) of a contact joint from where its contact run started.

    contacts: (T, 4) for (left_ankle, left_foot, right_ankle, right_foot) or (T, 2) for (left, right) feet
    (then both joints of a foot use the foot's label)."""
    a = _j(joints)
    c = np.asarray(contacts, bool)
    if c.shape == (a.shape[0], 2):
        c = np.repeat(c, 2, axis=1)
    if c.shape != (a.shape[0], 4):
        raise ValueError(f"contacts must be (T, 2) or (T, 4), got {c.shape}")
    worst = 0.0
    for k, j in enumerate(CONTACT_JOINTS):
        lab = c[:, k]
        start = np.flatnonzero(lab & ~np.r_[False, lab[:-1]])
        end = np.flatnonzero(lab & ~np.r_[lab[1:], False])
        for s, e in zip(start, end):
            d = np.linalg.norm(a[s:e + 1, j] - a[s, j], axis=-1).max()
            worst = max(worst, float(d))
    return worst


def ground_penetration(joints) -> float:
    """How far (m) the lowest joint goes below y = 0 (0 when never)."""
    return float(max(0.0, -_j(joints)[..., 1].min()))


def max_joint_speed(joints, fps: int = FPS) -> float:
    """Largest per-frame displacement of any joint, in m/s."""
    a = _j(joints)
    return float(np.linalg.norm(np.diff(a, axis=0), axis=-1).max() * fps)


def max_joint_accel(joints, fps: int = FPS) -> float:
    """Largest second difference of any joint, in m/s^2 (catches pops even at low speed)."""
    a = _j(joints)
    if a.shape[0] < 3:
        return 0.0
    return float(np.linalg.norm(np.diff(a, 2, axis=0), axis=-1).max() * fps * fps)


# ------------------------------------------------------------------------- plausibility checks ---
def check_bone_lengths(joints, tol: float = 1e-3) -> Check:
    v = bone_length_drift(joints)
    return Check(v < tol, v, tol, f"bone length drift {v * 1000:.3f} mm (limit {tol * 1000:.1f} mm)")


def check_foot_skate(joints, contacts, tol: float = 0.01) -> Check:
    v = foot_skate(joints, contacts)
    return Check(v < tol, v, tol, f"stance foot drift {v * 100:.2f} cm (limit {tol * 100:.1f} cm)")


def check_ground(joints, tol: float = 0.005) -> Check:
    v = ground_penetration(joints)
    return Check(v < tol, v, tol, f"ground penetration {v * 1000:.1f} mm (limit {tol * 1000:.1f} mm)")


def check_speed(joints, max_mps: float = 12.0) -> Check:
    v = max_joint_speed(joints)
    return Check(v < max_mps, v, max_mps, f"max joint speed {v:.2f} m/s (limit {max_mps} m/s)")


def check_accel(joints, max_mps2: float = 250.0) -> Check:
    v = max_joint_accel(joints)
    return Check(v < max_mps2, v, max_mps2, f"max joint acceleration {v:.1f} m/s^2 (limit {max_mps2})")


def plausibility(joints, contacts=None) -> list[Check]:
    out = [check_bone_lengths(joints), check_ground(joints), check_speed(joints), check_accel(joints)]
    if contacts is not None:
        out.append(check_foot_skate(joints, contacts))
    return out


# ----------------------------------------------------------------------------- semantic checks ---
def check_walk_forward(joints, min_m: float = 1.0, within_s: float = 4.0) -> Check:
    """The root moves more than min_m along its initial facing direction within the first within_s."""
    a = _j(joints)
    n = min(a.shape[0], int(round(within_s * FPS)) + 1)
    yaw0 = root_yaw(a[:2])[0]
    fwd = np.array([np.sin(yaw0), 0.0, np.cos(yaw0)])
    disp = (a[:n, 0] - a[0, 0]) @ fwd
    v = float(disp.max())
    return Check(v > min_m, v, min_m, f"forward travel {v:.2f} m in {(n - 1) / FPS:.1f} s (need > {min_m} m)")


def check_jump(joints, min_lift: float = 0.15) -> Check:
    """The pelvis rises more than min_lift above its starting height."""
    a = _j(joints)
    v = float(a[:, 0, 1].max() - a[0, 0, 1])
    return Check(v > min_lift, v, min_lift, f"pelvis lift {v:.3f} m (need > {min_lift} m)")


def check_wave(joints, hand: str = "right") -> Check:
    """The waving wrist gets above the head; the other wrist stays below its shoulder throughout."""
    if hand not in ("left", "right"):
        raise ValueError("hand must be 'left' or 'right'")
    a = _j(joints)
    other = "left" if hand == "right" else "right"
    above = float((a[:, J[f"{hand}_wrist"], 1] - a[:, J["head"], 1]).max())
    below = float((a[:, J[f"{other}_wrist"], 1] - a[:, J[f"{other}_shoulder"], 1]).max())
    ok = above > 0 and below < 0
    return Check(ok, above, 0.0, f"{hand} wrist {above:+.3f} m vs head (need > 0); {other} wrist "
                                 f"{below:+.3f} m vs its shoulder (need < 0)")


def check_turn(joints, direction: str = "left", min_deg: float = 60.0) -> Check:
    """The final root yaw differs from the initial by more than min_deg in the given direction."""
    if direction not in ("left", "right"):
        raise ValueError("direction must be 'left' or 'right'")
    yaw = root_yaw(joints)
    v = float(np.rad2deg(yaw[-1] - yaw[0])) * (1 if direction == "left" else -1)
    return Check(v > min_deg, v, min_deg, f"turned {v:.1f} deg to the {direction} (need > {min_deg})")


def check_sit_down(joints, ratio: float = 0.6) -> Check:
    """The pelvis ends lower than `ratio` of its starting height."""
    a = _j(joints)
    v = float(a[-1, 0, 1] / max(a[0, 0, 1], 1e-6))
    return Check(v < ratio, v, ratio, f"final/initial pelvis height {v:.2f} (need < {ratio})")


def semantic_check(family: str, joints, params: dict | None = None) -> Check | None:
    """The semantic check that applies to a family (None if it has none)."""
    p = params or {}
    if family in ("walk", "jog", "run") and p.get("direction", "forward") == "forward" \
            and p.get("curve", "straight") == "straight":
        return check_walk_forward(joints)
    if family in ("jump_in_place", "jump_forward"):
        return check_jump(joints)
    if family == "wave":
        return check_wave(joints, p.get("hand", "right"))
    if family in ("turn", "spin"):
        return check_turn(joints, p.get("direction", "left"))
    if family == "sit_down":
        return check_sit_down(joints)
    return None
