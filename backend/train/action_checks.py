"""Does a motion show the action a prompt asks for, and its details? Kinematic checks on joints (T, 22, 3), y-up,
metres, 20 fps, for every family the starter knows: the procedural ones (backend/synthetic) and the captured ones
(backend/mocap). Used by the semantic suites (``backend/train/evaluate.py``, ``backend/train/heldout.py``).

Every threshold comes from how the family is defined (the procedural planners' ranges in
``backend/synthetic/families.py``) or from the body (a hand above the head, hands together); ``tests/train``
checks each action check on the corpus itself: it passes on most clips of its own family and fails on clips of
the families it must not be confused with. ``ACTION_CHECKS[family](joints) -> Check``; detail checks (counts, sides,
directions, speeds, angles) are built by the functions below.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import binary_closing, binary_opening

from backend.synthetic.checks import FPS, Check, _j, check_sit_down, root_yaw
from backend.synthetic.skeleton import J

FEET = [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]]
AIR = 0.04          # m above the floor: a foot this high is off the ground
HAND_MEET = 0.15    # m between the wrists: hands together
SPEEDS = {          # cruising speed (m/s, root_speed): the planners' ranges (families.GAIT), split half-way
    "walk": {"slow": (0.0, 0.93), "normal": (0.93, 1.35), "fast": (1.35, 2.0)},
    "jog": {"slow": (1.2, 1.85), "normal": (1.85, 2.35), "fast": (2.35, 2.9)},
    "run": {"slow": (2.0, 3.05), "normal": (3.05, 3.6), "fast": (3.6, 9.0)},
}
GAIT_SPEED = {"walk": (0.3, 1.85), "jog": (1.3, 2.9), "run": (2.2, 9.0)}  # any pace of each gait


# ------------------------------------------------------------------------------------ measures ---
def floor_of(a: np.ndarray) -> float:
    return float(np.percentile(a[:, FEET, 1].min(axis=1), 2))


def heading_frame(a: np.ndarray, per_frame: bool = False):
    """(forward, left) unit vectors on the floor: of the first frames, or (T, 3) each frame."""
    yaw = root_yaw(a)
    if not per_frame:
        yaw = np.full(len(a), np.median(yaw[: max(2, min(10, len(a)))]))
    fwd = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1)
    left = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], -1)
    return (fwd, left) if per_frame else (fwd[0], left[0])


def flights(a: np.ndarray, min_frames: int = 2) -> list[tuple[int, int]]:
    """Frame ranges where every foot joint is off the floor (both feet in the air), at least min_frames long."""
    air = a[:, FEET, 1].min(axis=1) - floor_of(a) > AIR
    air = binary_opening(air, np.ones(min_frames)) if min_frames > 1 else air
    return _runs(air)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(int))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def root_speed(a: np.ndarray) -> float:
    """Cruising speed (m/s): the 80th percentile of the horizontal pelvis speed averaged over 0.5 s windows (a
    gait's start and stop, and its step-to-step sway, left out)."""
    from scipy.ndimage import uniform_filter1d

    d = np.linalg.norm(np.diff(a[:, 0, [0, 2]], axis=0), axis=-1) * FPS
    if len(d) == 0:
        return 0.0
    return float(np.percentile(uniform_filter1d(d, size=min(10, len(d)), mode="nearest"), 80))


def travel(a: np.ndarray) -> np.ndarray:
    """(forward, left) displacement (m) of the pelvis from the first to the last frame, in the first heading."""
    f, le = heading_frame(a)
    d = a[-1, 0] - a[0, 0]
    return np.array([d @ f, d @ le])


def heading_travel(a: np.ndarray) -> tuple[float, float]:
    """Path length (m) of the pelvis along the body's own forward/backward axis and along its left/right axis,
    frame by frame (a walk that curves is still a walk forward)."""
    fwd, le = heading_frame(a, per_frame=True)
    v = np.diff(a[:, 0], axis=0)
    return float(np.abs(np.einsum("ti,ti->t", v, fwd[1:])).sum()), float(np.abs(np.einsum("ti,ti->t", v, le[1:])).sum())


def turned_deg(a: np.ndarray) -> float:
    """Net turn in degrees, + = to the left (over the whole motion, the ends averaged over 0.25 s)."""
    yaw = root_yaw(a)
    k = max(1, min(5, len(a) // 4))
    return float(np.degrees(yaw[-k:].mean() - yaw[:k].mean()))


def _hands_meet(a: np.ndarray) -> list[tuple[int, int]]:
    d = np.linalg.norm(a[:, J["left_wrist"]] - a[:, J["right_wrist"]], axis=-1)
    front = a[:, [J["left_wrist"], J["right_wrist"]], 1].min(axis=1) > a[:, 0, 1] - 0.05
    meet = binary_closing((d < HAND_MEET) & front, np.ones(2))
    return _runs(meet)


def _extensions(a: np.ndarray, hand: str, reach: float = 0.4, max_s: float = 0.8) -> list[tuple[int, int]]:
    """Strikes: frame ranges where a wrist is out in front of the chest by more than ``reach`` (m), above the
    pelvis, ahead of the other wrist by > 0.15 m, and pulled back within ``max_s`` (an arm held out is no punch)."""
    fwd, _ = heading_frame(a, per_frame=True)
    w = a[:, J[f"{hand}_wrist"]]
    ahead = np.einsum("ti,ti->t", w - a[:, J["spine3"]], fwd)
    other = a[:, J[f"{'right' if hand == 'left' else 'left'}_wrist"]]
    lead = ahead - np.einsum("ti,ti->t", other - a[:, J["spine3"]], fwd) > 0.15  # one fist leads: not a clap
    out = (ahead > reach) & (w[:, 1] > a[:, 0, 1]) & lead
    return [(s, e) for s, e in _runs(binary_opening(out, np.ones(2))) if e - s <= max_s * FPS and e < len(a)]


def _kicks(a: np.ndarray, leg: str, height: float = 0.3) -> list[tuple[int, int]]:
    """Frame ranges where the foot (ankle) is both up (> height above the floor) and out in front of the pelvis."""
    fwd, _ = heading_frame(a, per_frame=True)
    an = a[:, J[f"{leg}_ankle"]]
    ahead = np.einsum("ti,ti->t", an - a[:, 0], fwd)
    up = an[:, 1] - floor_of(a)
    return _runs(binary_opening((up > height) & (ahead > 0.25), np.ones(2)))


def count_of(runs: list, min_gap: int = 2) -> int:
    """Number of ranges, merging ones closer than min_gap frames."""
    n, last = 0, -10 ** 9
    for s, e in runs:
        if s - last >= min_gap:
            n += 1
        last = e
    return n


def _ok(ok, value, threshold, message) -> Check:
    return Check(bool(ok), float(value), float(threshold), message)


# ----------------------------------------------------------------------------- action checks ---
def moves(a, min_m: float = 1.0, direction: str = "forward") -> Check:
    fw, le = travel(a)
    v = {"forward": fw, "backward": -fw, "left": le, "right": -le}[direction]
    return _ok(v > min_m, v, min_m, f"moved {v:.2f} m {direction} (need > {min_m})")


def gait(kind: str):
    """Walking, jogging or running: the pelvis travels > 1 m (any direction) at that gait's speeds."""
    lo, hi = GAIT_SPEED[kind]

    def f(a) -> Check:
        s = root_speed(a)
        fw, le = heading_travel(a)
        d = float(np.linalg.norm(a[-1, 0, [0, 2]] - a[0, 0, [0, 2]]))
        jumps = _jumps(a)
        straight = d / max(fw + le, 1e-6)  # net travel over the path: a dance's back-and-forth steps go nowhere
        ok = d > 1.0 and lo <= s < hi and abs(fw) > abs(le) and not jumps and straight > 0.5
        return _ok(ok, s, lo, f"travelled {d:.2f} m (need > 1, mostly forward or back: {fw:.2f} m vs {le:.2f} m "
                              f"sideways), speed {s:.2f} m/s (need {lo}-{hi} for a {kind}), {len(jumps)} jumps, "
                              f"net/path {straight:.2f} (need > 0.5)")
    return f


def jump(a, min_lift: float = 0.12) -> Check:
    """Both feet leave the floor (not a one-legged hop) and the pelvis rises."""
    f = flights(a, 2)
    lift = float(a[:, 0, 1].max() - np.median(a[: max(2, len(a) // 8), 0, 1]))
    one = raised_foot(a)
    ok = len(f) >= 1 and lift > min_lift and one is None
    return _ok(ok, lift, min_lift, f"{len(f)} flight phases, pelvis lift {lift:.2f} m (need >= 1 and > {min_lift}), "
                                   f"raised foot throughout: {one} (need none)")


def stays(a, max_m: float = 0.5) -> Check:
    v = float(np.linalg.norm(travel(a)))
    return _ok(v < max_m, v, max_m, f"pelvis ended {v:.2f} m from the start (need < {max_m})")


def _jumps(a) -> list[tuple[int, int]]:
    """Flight phases that lift the pelvis > 10 cm above its median height: jumps, not running strides (a stride
    bobs the pelvis 3-5 cm) nor feet that float a little above the floor."""
    med = float(np.median(a[:, 0, 1]))
    return [(s, e) for s, e in flights(a, 2) if a[s:e + 1, 0, 1].max() > med + 0.1]


def hop(a) -> Check:
    """Hops on one leg: pelvis goes up and down with flights, and one foot stays off the floor throughout them."""
    f = flights(a, 1)
    raised = raised_foot(a)
    ok = len(f) >= 1 and raised is not None
    return _ok(ok, len(f), 1, f"{len(f)} flight phases, raised foot: {raised}")


def raised_foot(a) -> str | None:
    """'left'/'right' when that ankle is above the other by > 8 cm on 60 % of the frames, else None."""
    d = a[:, J["left_ankle"], 1] - a[:, J["right_ankle"], 1]
    if (d > 0.08).mean() > 0.6:
        return "left"
    if (d < -0.08).mean() > 0.6:
        return "right"
    return None


def wave(a, hand: str | None = None) -> Check:
    """A wrist above the head (the asked one, or either) going side to side there: at least two turns of its
    sideways motion, over > 8 cm."""
    hands = [hand] if hand else ["left", "right"]
    _, le = heading_frame(a, per_frame=True)
    best = (hands[0], 0, 0.0)
    for h in hands:
        w = a[:, J[f"{h}_wrist"]]
        up = w[:, 1] > a[:, J["head"], 1] - 0.05
        lat = np.einsum("ti,ti->t", w - a[:, J[f"{h}_shoulder"]], le)
        turns, sway = 0, 0.0
        for s0, e0 in _runs(up):
            x = lat[s0:e0]
            if len(x) < 3:
                continue
            sway = max(sway, float(x.max() - x.min()))
            v = np.diff(x)
            sign = np.sign(v[np.abs(v) > 0.004])
            turns += int((np.diff(sign) != 0).sum())
        if (turns, sway) > best[1:]:
            best = (h, turns, sway)
    h, turns, sway = best
    ok = turns >= 2 and sway > 0.08
    return _ok(ok, turns, 2, f"{h} wrist above the head turning side to side {turns} times over {sway:.2f} m "
                             f"(need >= 2, > 0.08)")


def waving_hand(a) -> str | None:
    up = {h: float((a[:, J[f"{h}_wrist"], 1] - a[:, J["head"], 1]).max()) for h in ("left", "right")}
    h = max(up, key=up.get)
    other = "right" if h == "left" else "left"
    return h if up[h] > -0.05 and up[other] < up[h] - 0.15 else None


def clap(a) -> Check:
    n = count_of(_hands_meet(a))
    return _ok(n >= 1, n, 1, f"hands met {n} times (wrists within {HAND_MEET} m, above the pelvis)")


def raise_arms(a, style: str = "overhead") -> Check:
    lw, rw = a[:, J["left_wrist"]], a[:, J["right_wrist"]]
    if style == "overhead":
        v = float(np.minimum(lw[:, 1], rw[:, 1]).max() - a[:, J["head"], 1].max())
        return _ok(v > 0, v, 0, f"both wrists above the head by {v:+.2f} m at best (need > 0)")
    fwd, le = heading_frame(a, per_frame=True)
    sh = a[:, [J["left_shoulder"], J["right_shoulder"]], 1].mean(axis=1)
    level = (np.abs(lw[:, 1] - sh) < 0.2) & (np.abs(rw[:, 1] - sh) < 0.2)
    if style == "sideways":
        span = np.einsum("ti,ti->t", lw - rw, le)
        v = float(np.where(level, span, 0).max())
        return _ok(v > 1.0, v, 1.0, f"wrists {v:.2f} m apart sideways at shoulder height (need > 1.0)")
    reach = np.minimum(np.einsum("ti,ti->t", lw - a[:, J["spine3"]], fwd),
                       np.einsum("ti,ti->t", rw - a[:, J["spine3"]], fwd))
    v = float(np.where(level, reach, 0).max())
    return _ok(v > 0.4, v, 0.4, f"both wrists {v:.2f} m in front at shoulder height (need > 0.4)")


def punch(a) -> Check:
    n = {h: count_of(_extensions(a, h)) for h in ("left", "right")}
    feet = min(_path(a, J["left_ankle"]), _path(a, J["right_ankle"]))
    return _ok(sum(n.values()) >= 1 and feet < 0.5, sum(n.values()), 1,
               f"punches (wrist > 0.4 m in front of the chest and back): {n}, feet {feet:.2f} m/s (need < 0.5: "
               f"not running)")


def punching_hands(a) -> dict:
    return {h: count_of(_extensions(a, h)) for h in ("left", "right")}


def bow(a) -> Check:
    """The head goes forward and down, then comes back up."""
    fwd, _ = heading_frame(a)
    head = a[:, J["head"]] - a[:, 0]  # relative to the pelvis: a bow bends the trunk, a squat lowers the pelvis
    ahead = head @ fwd
    h0 = max(np.median(a[: max(2, len(a) // 8), 0, 1]), 1e-6)
    pelvis = float(a[:, 0, 1].min() / h0)
    rise = float(a[:, 0, 1].max() / h0)
    fw = float(ahead.max() - ahead[0])
    back = float(ahead[-1] - ahead[0])
    ok = fw > 0.15 and back < 0.5 * fw and pelvis > 0.85 and rise < 1.15
    return _ok(ok, fw, 0.15, f"head went {fw:.2f} m forward of the pelvis (need > 0.15) and came back to {back:.2f} "
                             f"(need < half), pelvis stayed at {pelvis:.2f} of its height (need > 0.85)")


def squat(a) -> Check:
    h0 = max(np.median(a[: max(2, len(a) // 8), 0, 1]), 1e-6)
    low, end = float(a[:, 0, 1].min() / h0), float(a[-1, 0, 1] / h0)
    ok = low < 0.85 and end > 0.9 and float(np.linalg.norm(travel(a))) < 0.5
    return _ok(ok, low, 0.85, f"lowest pelvis {low:.2f} of start (need < 0.85), final {end:.2f} (need > 0.9)")


def kick(a, leg: str | None = None) -> Check:
    legs = [leg] if leg else ["left", "right"]
    n = {g: count_of(_kicks(a, g)) for g in legs}
    return _ok(sum(n.values()) >= 1, sum(n.values()), 1,
               f"kicks (ankle > 0.3 m up and > 0.25 m in front of the pelvis): {n}")


def side_step(a, direction: str | None = None) -> Check:
    fw, le = travel(a)
    t = abs(turned_deg(a))
    lat = le if direction in (None, "left") else -le
    if direction is None:
        lat = abs(le)
    ok = lat > 0.3 and abs(fw) < max(0.3, 0.6 * abs(le)) and t < 35
    return _ok(ok, lat, 0.3, f"moved {le:+.2f} m to the left, {fw:+.2f} m forward, turned {t:.0f} deg "
                             f"(need sideways > 0.3 m, little forward, < 35 deg)")


def turn(a, direction: str | None = None, min_deg: float = 60.0, max_deg: float | None = None) -> Check:
    t = turned_deg(a)
    v = abs(t) if direction is None else (t if direction == "left" else -t)
    ok = v > min_deg and (max_deg is None or v < max_deg)
    rng = f"{min_deg:.0f}-{max_deg:.0f}" if max_deg else f"> {min_deg:.0f}"
    return _ok(ok, v, min_deg, f"turned {t:+.0f} deg (+ = left; need {rng} {'to the ' + direction if direction else ''})")


def sit_down(a) -> Check:
    return check_sit_down(a)


def stand_up(a) -> Check:
    v = float(a[-1, 0, 1] / max(a[0, 0, 1], 1e-6))
    return _ok(v > 1.4, v, 1.4, f"final/initial pelvis height {v:.2f} (need > 1.4)")


# real-motion families (thresholds from the measures of the captured clips and the procedural ones; tests/train
# checks them on both)
def energetic(a) -> float:
    """Mean speed (m/s) of the joints relative to the pelvis: how much the limbs move."""
    return float(np.linalg.norm(np.diff(a - a[:, :1], axis=0), axis=-1).mean() * FPS)


def _path(a, j) -> float:
    """Path length (m) of joint j per second."""
    return float(np.linalg.norm(np.diff(a[:, j], axis=0), axis=-1).sum() / max(len(a) / FPS, 1e-6))


def _standing(a) -> float:
    """Median pelvis height above the floor (m)."""
    return float(np.median(a[:, 0, 1] - floor_of(a)))


def _net(a) -> float:
    """Net horizontal pelvis travel per second (m/s)."""
    return float(np.linalg.norm(a[-1, 0, [0, 2]] - a[0, 0, [0, 2]]) / max(len(a) / FPS, 1e-6))


def dance(a) -> Check:
    """Dancing: standing, the limbs keep moving (> 0.2 m/s relative to the pelvis), the feet step or the hands
    move (> 0.25 / 0.7 m/s), and it does not go anywhere (net travel < 0.5 m/s)."""
    e, h, net = energetic(a), _standing(a), _net(a)
    feet = min(_path(a, J["left_ankle"]), _path(a, J["right_ankle"]))
    hands = max(_path(a, J["left_wrist"]), _path(a, J["right_wrist"]))
    ok = e > 0.2 and h > 0.6 and (feet > 0.25 or hands > 0.7) and net < 0.5
    return _ok(ok, e, 0.2, f"limb speed {e:.2f} m/s (need > 0.2), pelvis {h:.2f} m up (need > 0.6), feet "
                           f"{feet:.2f} m/s or hands {hands:.2f} m/s (need > 0.25 or > 0.7), net travel {net:.2f} "
                           f"m/s (need < 0.5)")


def martial_arts(a) -> Check:
    """Strikes and stances: standing, limbs moving (> 0.18 m/s), a wrist out in front of the chest (> 0.35 m) or a
    foot up (> 0.3 m) at some point."""
    fwd, _ = heading_frame(a, per_frame=True)
    reach = max(float(np.einsum("ti,ti->t", a[:, J[f"{h}_wrist"]] - a[:, J["spine3"]], fwd).max())
                for h in ("left", "right"))
    foot = max(float((a[:, J[f"{g}_ankle"], 1] - floor_of(a)).max()) for g in ("left", "right"))
    e = energetic(a)
    ok = e > 0.18 and _standing(a) > 0.6 and (reach > 0.35 or foot > 0.3)
    return _ok(ok, e, 0.18, f"limb speed {e:.2f} m/s (need > 0.18), reach {reach:.2f} m (need > 0.35) or foot "
                            f"{foot:.2f} m up (need > 0.3)")


def jab(a) -> Check:
    n = {h: count_of(_extensions(a, h, reach=0.3)) for h in ("left", "right")}
    feet = min(_path(a, J["left_ankle"]), _path(a, J["right_ankle"]))
    return _ok(sum(n.values()) >= 1 and feet < 0.5, sum(n.values()), 1,
               f"jabs (wrist > 0.3 m in front of the chest and back): {n}, feet {feet:.2f} m/s (need < 0.5)")


def push_ups(a) -> Check:
    """Body low and flat (pelvis < 0.6 m, head < 0.7 m) on most frames, the chest going up and down by > 8 cm,
    the hands staying put (< 0.2 m/s: a crawl moves them)."""
    fl = floor_of(a)
    low = (a[:, 0, 1] - fl < 0.6) & (a[:, J["head"], 1] - fl < 0.7)
    chest = a[:, J["spine3"], 1]
    rng = float(np.percentile(chest, 95) - np.percentile(chest, 5))
    hands = max(_path(a, J["left_wrist"]), _path(a, J["right_wrist"]))
    ok = low.mean() > 0.6 and rng > 0.08 and hands < 0.2
    return _ok(ok, low.mean(), 0.6, f"low and flat on {low.mean():.0%} of frames (need > 60 %), chest range "
                                    f"{rng:.2f} m (need > 0.08), hands {hands:.2f} m/s (need < 0.2)")


def crawl(a) -> Check:
    """On hands and knees (pelvis < 0.75 m, a hand near the floor) on most frames, the hands moving (> 0.3 m/s)."""
    fl = floor_of(a)
    low = (a[:, 0, 1] - fl < 0.75) & (a[:, [J["left_wrist"], J["right_wrist"]], 1].min(axis=1) - fl < 0.2)
    hands = min(_path(a, J["left_wrist"]), _path(a, J["right_wrist"]))
    ok = low.mean() > 0.5 and hands > 0.3
    return _ok(ok, low.mean(), 0.5, f"on all fours on {low.mean():.0%} of frames (need > 50 %), hands moving "
                                    f"{hands:.2f} m/s (need > 0.3)")


def jumping_jacks(a) -> Check:
    """Jumps with the hands going above the head and the feet apart."""
    f = len(flights(a, 1))
    hands = float((np.minimum(a[:, J["left_wrist"], 1], a[:, J["right_wrist"], 1]) - a[:, J["head"], 1]).max())
    feet = float(np.linalg.norm(a[:, J["left_ankle"], [0, 2]] - a[:, J["right_ankle"], [0, 2]], axis=-1).max())
    ok = f >= 2 and hands > 0 and feet > 0.45
    return _ok(ok, f, 2, f"{f} flights (need >= 2), hands {hands:+.2f} m above the head (need > 0), feet up to "
                         f"{feet:.2f} m apart (need > 0.45)")


def backflip(a) -> Check:
    """Upside down at some point: the head below the pelvis, off the ground."""
    inv = float((a[:, 0, 1] - a[:, J["head"], 1]).max())
    return _ok(inv > 0.1 and len(flights(a, 1)) >= 1, inv, 0.1,
               f"head {inv:.2f} m below the pelvis at most (need > 0.1), {len(flights(a, 1))} flights (need >= 1)")


def meditate(a) -> Check:
    """Sitting upright on the floor (pelvis < 0.35 m, head > 0.4 m above it) on most frames, nearly still."""
    fl = floor_of(a)
    seated = ((a[:, 0, 1] - fl) < 0.35) & ((a[:, J["head"], 1] - a[:, 0, 1]) > 0.4)
    e = energetic(a)
    ok = seated.mean() > 0.6 and e < 0.3
    return _ok(ok, seated.mean(), 0.6, f"seated upright on the floor on {seated.mean():.0%} of frames (need > 60 %), "
                                       f"limb speed {e:.2f} m/s (need < 0.3)")


def throw(a) -> Check:
    """A hand moves fast (> 4 m/s) while out in front of the chest and above the pelvis, feet on the floor."""
    fwd, _ = heading_frame(a, per_frame=True)
    best = 0.0
    for h in ("left", "right"):
        w = a[:, J[f"{h}_wrist"]]
        sp = np.linalg.norm(np.diff(w, axis=0), axis=-1) * FPS
        front = (np.einsum("ti,ti->t", w - a[:, J["spine3"]], fwd)[1:] > 0.2) & (w[1:, 1] > a[1:, 0, 1])
        if front.any():
            best = max(best, float(sp[front].max()))
    ok = best > 4.0 and not flights(a, 2)
    return _ok(ok, best, 4.0, f"fastest hand in front {best:.1f} m/s (need > 4), feet on the floor")


def celebrate(a) -> Check:
    """A fist above the head (cheering, pumping), limbs moving."""
    v = float((np.maximum(a[:, J["left_wrist"], 1], a[:, J["right_wrist"], 1]) - a[:, J["head"], 1]).max())
    e = energetic(a)
    return _ok(v > 0 and e > 0.15, v, 0, f"a fist {v:+.2f} m above the head at best (need > 0), limb speed {e:.2f} "
                                         f"m/s (need > 0.15)")


def run_in_style(a) -> Check:
    """Running, possibly on the spot (the captured anime run is keyed in place): feet moving > 1.5 m/s."""
    feet = min(_path(a, J["left_ankle"]), _path(a, J["right_ankle"]))
    return _ok(feet > 1.5, feet, 1.5, f"each foot moves {feet:.2f} m/s (need > 1.5)")


ACTION_CHECKS = {
    "walk": gait("walk"), "jog": gait("jog"), "run": gait("run"), "jump_in_place": lambda a: _all(jump(a), stays(a)),
    "jump_forward": lambda a: _all(jump(a), moves(a, 0.3)), "hop": hop, "wave": wave, "clap": clap,
    "raise_arms": lambda a: _any(raise_arms(a, "overhead"), raise_arms(a, "sideways"),
                                 _all(raise_arms(a, "forward"), _steady(a))),
    "punch": punch, "bow": bow, "squat": squat, "kick": kick, "side_step": side_step,
    "turn": lambda a: turn(a, None, 60.0), "spin": lambda a: turn(a, None, 270.0), "sit_down": sit_down,
    "stand_up": stand_up,
    "dance_salsa": dance, "dance_indian": dance, "dance_charleston": dance, "dance_body_roll": dance,
    "dance_generic": dance, "martial_arts": martial_arts, "jab": jab, "push_ups": push_ups, "crawl": crawl,
    "jumping_jacks": jumping_jacks, "backflip": backflip, "meditate": meditate, "throw": throw,
    "celebrate": celebrate, "run_stylised": run_in_style,
}


def _steady(a) -> Check:
    """Standing still: pelvis within 10 % of its height, no flights, hands apart (not clapping)."""
    h0 = max(np.median(a[: max(2, len(a) // 8), 0, 1]), 1e-6)
    r = float(np.abs(a[:, 0, 1] / h0 - 1).max())
    ok = r < 0.1 and not flights(a, 2) and not _hands_meet(a)
    return _ok(ok, r, 0.1, f"pelvis height within {r:.0%} (need < 10 %), no jumps, no claps")


def _any(*checks: Check) -> Check:
    for c in checks:
        if c:
            return c
    return Check(False, checks[0].value, checks[0].threshold, " | ".join(c.message for c in checks))


def both(*fns: Callable) -> Callable:
    """A check of joints that passes when every one of ``fns`` does (the first one's value and threshold)."""
    return lambda joints: _all(*(fn(joints) for fn in fns))


def then(first: Callable, second: Callable) -> Callable:
    """A two-part prompt ("X, then Y"): ``first`` holds on the first half of the motion, ``second`` on the
    second half."""
    def f(joints) -> Check:
        a = np.asarray(joints)
        h = len(a) // 2
        r1, r2 = first(a[:h]), second(a[h:])
        return Check(bool(r1) and bool(r2), r2.value, r2.threshold,
                     f"first half: {r1.message}; second half: {r2.message}")
    return f


def _all(*checks: Check) -> Check:
    return Check(all(checks), checks[0].value, checks[0].threshold, "; ".join(c.message for c in checks))


def check_action(family: str, joints) -> Check:
    a = _j(joints)
    if family not in ACTION_CHECKS:
        raise ValueError(f"no action check for {family!r}; known: {', '.join(ACTION_CHECKS)}")
    return ACTION_CHECKS[family](a)


# ----------------------------------------------------------------------------- detail checks ---
def detail_count(kind: str, n: int):
    """Counts: 'jumps' (flight phases), 'hops', 'claps' (hands meeting), 'punches', 'kicks', 'squats'."""
    def f(joints) -> Check:
        a = _j(joints)
        got = {"jumps": lambda: len(flights(a, 2)), "hops": lambda: len(flights(a, 1)),
               "claps": lambda: count_of(_hands_meet(a)), "punches": lambda: sum(punching_hands(a).values()),
               "kicks": lambda: count_of(_kicks(a, "left")) + count_of(_kicks(a, "right")),
               "squats": lambda: _dips(a)}[kind]()
        return _ok(got == n, got, n, f"{got} {kind} (asked {n})")
    return f


def _dips(a) -> int:
    h0 = max(np.median(a[: max(2, len(a) // 8), 0, 1]), 1e-6)
    return len(_runs(binary_opening(a[:, 0, 1] / h0 < 0.85, np.ones(2))))


def detail_side(kind: str, side: str):
    """Which side: 'wave' (the hand up), 'punch' (the hand that punches most), 'kick' (the kicking leg),
    'hop' (the standing leg: the other foot is the raised one)."""
    def f(joints) -> Check:
        a = _j(joints)
        if kind == "wave":
            got = waving_hand(a)
        elif kind == "punch":
            n = punching_hands(a)
            got = max(n, key=n.get) if max(n.values()) > 0 and n["left"] != n["right"] else None
        elif kind == "kick":
            n = {g: count_of(_kicks(a, g)) for g in ("left", "right")}
            got = max(n, key=n.get) if max(n.values()) > 0 and n["left"] != n["right"] else None
        elif kind == "hop":
            r = raised_foot(a)
            got = None if r is None else ("right" if r == "left" else "left")
        else:
            raise ValueError(kind)
        return _ok(got == side, float(got == side), 1, f"{kind} side: {got} (asked {side})")
    return f


def detail_direction(direction: str, min_m: float = 0.5):
    return lambda joints: moves(_j(joints), min_m, direction)


def detail_turn(direction: str, degrees: float):
    """Turned the asked way by about the asked angle (within 45 degrees; 360: more than 270)."""
    if degrees >= 360:
        return lambda joints: turn(_j(joints), direction, 270.0)
    return lambda joints: turn(_j(joints), direction, degrees - 45.0, degrees + 45.0)


def detail_speed(gait: str, pace: str):
    lo, hi = SPEEDS[gait][pace]

    def f(joints) -> Check:
        s = root_speed(_j(joints))
        return _ok(lo <= s < hi, s, lo, f"speed {s:.2f} m/s (asked {pace} {gait}: {lo}-{hi})")
    return f


def detail_raised_style(style: str):
    return lambda joints: raise_arms(_j(joints), style)
