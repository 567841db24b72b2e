"""The action families: parameter sampling and motion planning (-> Controls) for each.

Every family starts in a neutral standing pose at the origin facing +Z (except `stand_up`, which starts
seated) and ends standing still (except `sit_down`, which ends seated), with zero velocity at both ends,
so two clips can be chained smoothly.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .kinematics import FPS
from .plan import (ARM, apply_steps, arm_pair, arm_swing, arms_keys, bump, extend, frames, keys,
                   neutral, neutral_foot, smoothstep, timebase)

G = 9.81
SIDES = ("left", "right")


def _u(rng, a, b):
    return float(rng.uniform(a, b))


# ======================================================================================== gaits ===
GAIT = {  # speed (m/s) ranges, cadence (steps/s), duty factor, heel-off (share of stance), toe-off
    # pitch, foot lift, trunk lean, arm swing, elbow bend, pelvis bob
    "walk": dict(speed={"slow": (0.6, 0.85), "normal": (1.0, 1.3), "fast": (1.4, 1.65)},
                 cadence=(1.65, 2.2), duty=0.62, heel=0.3, toe_off=0.45, lift=0.07, lean=0.03, swing=0.35, bend=0.25, bob=0.0),
    "jog": dict(speed={"slow": (1.5, 1.8), "normal": (1.9, 2.3), "fast": (2.4, 2.7)},
                cadence=(2.4, 2.7), duty=0.45, heel=0.35, toe_off=0.5, lift=0.13, lean=0.08, swing=0.5, bend=1.3, bob=0.025),
    "run": dict(speed={"slow": (2.6, 3.0), "normal": (3.1, 3.6), "fast": (3.6, 4.0)},
                cadence=(2.7, 3.0), duty=0.36, heel=0.4, toe_off=0.55, lift=0.2, lean=0.16, swing=0.7, bend=1.5, bob=0.035),
}


def _sample_gait(kind, rng, max_frames, params):
    speed = params.get("speed") or rng.choice(["slow", "normal", "fast"])
    curving = params.get("curve") in ("left", "right")
    direction = params.get("direction") or (
        rng.choice(["forward", "backward"], p=[0.75, 0.25]) if kind == "walk" and not curving else "forward")
    lo, hi = GAIT[kind]["cadence"]  # faster paces take quicker steps
    cad = lo + (hi - lo) * (("slow", "normal", "fast").index(speed) + _u(rng, 0, 1)) / 3
    if kind == "walk" and direction == "backward":
        cad *= 0.85
    max_steps = int((max_frames / FPS - 0.9) * cad) - 1
    lo = 7 if kind == "walk" else 6
    steps = params.get("steps") or int(rng.integers(min(lo, max_steps), max(min(12, max_steps), lo) + 1))
    curve = params.get("curve") or (
        str(rng.choice(["straight", "left", "right"], p=[0.6, 0.2, 0.2])) if direction == "forward" else "straight")
    if curve not in ("straight", "left", "right"):
        raise ValueError(f"curve={curve!r} is not one of ['straight', 'left', 'right']")
    if curve != "straight" and direction != "forward":
        raise ValueError("only forward gaits can curve")
    return dict(speed=str(speed), direction=str(direction), steps=int(min(steps, max_steps)), curve=curve,
                turn_deg=0.0 if curve == "straight" else _u(rng, 60, 120) * (1 if curve == "left" else -1),
                speed_mps=_u(rng, *GAIT[kind]["speed"][speed]) * (0.7 if direction == "backward" else 1.0),
                cadence=cad)


def _gait(kind, body, rng, p):
    g = GAIT[kind]
    n, h = p["steps"], 1.0 / p["cadence"]
    v = p["speed_mps"] * body.scale
    sw = (1 - g["duty"]) * 2 * h
    sgn = 1.0 if p["direction"] == "forward" else -1.0
    t0 = _u(rng, 0.2, 0.4)
    lifts = t0 + h * np.arange(n)
    t_stop = lifts[-2] + sw
    T = frames(lifts[-1] + sw + _u(rng, 0.25, 0.45)) + 1
    t = timebase(T)
    ramp = min(h * 1.2, (t_stop - t0) / 2.5)
    env = smoothstep((t - t0) / ramp) * (1 - smoothstep((t - (t_stop - ramp)) / ramp))
    dist = np.concatenate([[0.0], np.cumsum(0.5 * (env[1:] + env[:-1])) / FPS]) * v  # path length
    # heading changes in proportion to the distance walked (a circular arc for a curving gait)
    yaw = np.deg2rad(p.get("turn_deg", 0.0)) * dist / max(dist[-1], 1e-6)
    step = np.diff(dist, prepend=0.0) * sgn
    x = np.cumsum(step * np.sin(yaw))
    z = np.cumsum(step * np.cos(yaw))
    c = neutral(T, body)
    c.root[:, 0], c.root[:, 1], c.yaw = x, z, yaw
    first = int(rng.integers(2))
    steps = []
    for i, tl in enumerate(lifts):
        k = (first + i) % 2
        # the pelvis passes over the foot a little before mid-stance (the heel-off extends the late stance)
        t_ref = min(tl + sw + 0.8 * g["duty"] * h, t_stop) if i < n - 2 else t_stop
        xr, zr, yr = (float(np.interp(t_ref, t, a)) for a in (x, z, yaw))
        steps.append((k, tl, tl + sw, neutral_foot(body, k, xr, zr, yr), yr))
    apply_steps(c, body, steps, lift=g["lift"] * body.scale, pitch=0.15, heel=g["heel"] * g["duty"] * 2 * h,
                toe_off=g["toe_off"] if sgn > 0 else 0.0)  # heel-off: a fraction of the stance
    # arms swing against the legs; elbows bend more as the pace rises
    d = c.feet[:, 1] - c.feet[:, 0]
    rel = (d[:, 0] * np.sin(yaw) + d[:, 2] * np.cos(yaw)) / max(v * h, 1e-3)
    ang = g["swing"] * np.clip(rel, -1.2, 1.2) * sgn
    bend = 0.25 + (g["bend"] - 0.25) * env
    c.arms[:, 0] = arm_swing(ang, bend)
    c.arms[:, 1] = arm_swing(-ang, bend)
    c.arms[:, 1, :, 0] *= -1
    c.spine_pitch = g["lean"] * env * sgn
    if g["bob"]:
        c.dy = -g["bob"] * env + g["bob"] * env * np.cos(2 * np.pi * (t - t0 - (sw - h) / 2) / h)
    c.sway = 0.03 if kind == "walk" else 0.015
    return c


# ======================================================================================== jumps ===
def _jump_profile(t, starts, height, depth, crouch, push, land, recover):
    """Pelvis dy for jumps starting their crouch at `starts`; returns (dy, flights[(t_off, t_on)])."""
    dy = np.zeros_like(t)
    v0 = np.sqrt(2 * G * height)
    tf = 2 * v0 / G
    flights = []
    for ts in starts:
        a = ts
        b = a + crouch
        c_ = b + push
        d = c_ + tf
        e = d + land
        f = e + recover
        flights.append((c_, d))
        m = (t >= a) & (t < b)
        dy[m] = -depth * smoothstep((t[m] - a) / (b - a))
        m = (t >= b) & (t < c_)
        s = (t[m] - b) / push
        dy[m] = _hermite(s, -depth, 0.0, 0.0, v0 * push)
        m = (t >= c_) & (t < d)
        tau = t[m] - c_
        dy[m] = v0 * tau - 0.5 * G * tau ** 2
        m = (t >= d) & (t < e)
        s = (t[m] - d) / land
        dy[m] = _hermite(s, 0.0, -depth, -v0 * land, 0.0)
        m = (t >= e) & (t < f)
        dy[m] = -depth * (1 - smoothstep((t[m] - e) / recover))
    return dy, flights


def _hermite(s, p0, p1, m0, m1):
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1


def _jumps(body, rng, count, height, dist, one_leg=None):
    """count jumps (or hops on `one_leg`) of apex `height` m, each moving `dist` m forward."""
    sc = body.scale
    height = height * sc
    crouch = _u(rng, 0.3, 0.4)
    push = _u(rng, 0.16, 0.2) if one_leg is None else 0.14
    land = _u(rng, 0.16, 0.2) if one_leg is None else 0.14
    recover = _u(rng, 0.3, 0.45)
    depth = (_u(rng, 0.1, 0.16) if one_leg is None else 0.07) * sc
    v0 = np.sqrt(2 * G * height)
    tf = 2 * v0 / G
    lead = 0.45 if one_leg is not None else _u(rng, 0.15, 0.3)
    period = crouch + push + tf + land + recover
    starts = lead + period * np.arange(count)
    T = frames(starts[-1] + period + _u(rng, 0.2, 0.4)) + 1
    t = timebase(T)
    dy, flights = _jump_profile(t, starts, height, depth, crouch, push, land, recover)
    c = neutral(T, body)
    c.dy = dy
    # horizontal: the root travels dist per jump from the crouch bottom to the landing
    z = np.zeros(T)
    for i, (t_off, t_on) in enumerate(flights):
        z += dist * smoothstep((t - (t_off - push)) / (t_on + land - (t_off - push)))
    c.root[:, 1] = z
    legs = (0, 1) if one_leg is None else (one_leg,)
    tuck = (0.12 if one_leg is None else 0.05) * sc
    for k in legs:
        base = c.feet[0, k].copy()
        for i, (t_off, t_on) in enumerate(flights):
            m = (t > t_off) & (t < t_on)
            s = (t[m] - t_off) / (t_on - t_off)
            c.feet[m, k, 2] = base[2] + dist * i + dist * smoothstep(s)
            c.feet[m, k, 1] = base[1] + dy[m] + tuck * bump(s)
            c.contact[m, k] = False
            c.feet[t >= t_on, k, 2] = base[2] + dist * (i + 1)
    # arms: swing back in the crouch, up in the flight
    arm_t, arm_p = [0.0], [arm_pair(ARM["down"])]
    for t_off, t_on in flights:
        arm_t += [t_off - push - 0.05, t_off + 0.1, t_on + land]
        arm_p += [arm_pair(ARM["hips_back"]), arm_pair(ARM["forward"] if dist > 0 else ARM["balance"]),
                  arm_pair(ARM["down"])]
    if one_leg is not None:
        arm_p = [arm_pair(ARM["balance"]) for _ in arm_p]
        arm_p[0] = arm_pair(ARM["down"])
    arm_t.append(t[-1] + 1e-3 if t[-1] > arm_t[-1] else arm_t[-1] + 1e-3)
    arm_p.append(arm_pair(ARM["down"]))
    c.arms = arms_keys(t, arm_t, arm_p)
    lean = np.zeros(T)
    for t_off, t_on in flights:
        lean += (0.25 if one_leg is None else 0.1) * bump((t - (t_off - push - crouch)) / (crouch + push))
        lean += 0.2 * bump((t - t_on) / (land + recover))
    c.spine_pitch = lean
    return c, flights


def jump_in_place(body, rng, p):
    c, _ = _jumps(body, rng, p["count"], p["height_m"], 0.0)
    c.sway = 0.0
    return c


def jump_forward(body, rng, p):
    c, _ = _jumps(body, rng, p["count"], p["height_m"], p["distance_m"] * body.scale)
    c.sway = 0.0
    return c


def hop(body, rng, p):
    k = SIDES.index(p["leg"])  # the leg that hops
    free = 1 - k
    c, flights = _jumps(body, rng, p["count"], p["height_m"], p["distance_m"] * body.scale, one_leg=k)
    t = timebase(c.T)
    t_up = (0.05, 0.4)
    t_down = (flights[-1][1] + 0.35, flights[-1][1] + 0.75)
    if t_down[1] > t[-1]:
        c = extend(c, frames(t_down[1] - t[-1]) + 4)
        t = timebase(c.T)
    held = smoothstep((t - t_up[0]) / (t_up[1] - t_up[0])) * (1 - smoothstep((t - t_down[0]) / (t_down[1] - t_down[0])))
    side = 1 if free == 0 else -1
    rest = c.feet[0, free].copy()
    end = rest + np.array([0.0, 0.0, c.root[-1, 1]])
    base = rest[None] + (end - rest)[None] * smoothstep((t - t_down[0]) / (t_down[1] - t_down[0]))[:, None]
    air = np.stack([c.root[:, 0] + side * body.hip_half_width * 0.8,
                    body.ankle_height + c.dy + 0.3 * body.scale,
                    c.root[:, 1] - 0.18 * body.scale], -1)
    c.feet[:, free] = base + held[:, None] * (air - base)
    c.foot_pitch[:, free] = 0.5 * held
    c.contact[:, free] = held < 1e-6
    c.sway = body.hip_half_width * 0.9
    return c


# ==================================================================================== one-offs ===
def _stand(body, rng, duration):
    T = frames(duration) + 1
    return neutral(T, body), timebase(T)


def wave(body, rng, p):
    k = SIDES.index(p["hand"])
    n = p["count"]
    per = _u(rng, 0.45, 0.6)
    t0 = _u(rng, 0.2, 0.4)
    up = _u(rng, 0.45, 0.6)
    dur = t0 + up + n * per + up + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    times = [0.0, t0, t0 + up]
    poses = [ARM["down"], ARM["down"], ARM["wave_base"]]
    for i in range(n):
        times += [t0 + up + (i + 0.25) * per, t0 + up + (i + 0.75) * per]
        poses += [ARM["wave_out"], ARM["wave_in"]]
    times += [t0 + up + n * per, t0 + 2 * up + n * per]
    poses += [ARM["wave_base"], ARM["down"]]
    arm = arms_keys(t, times, poses)
    c.arms[:, k] = arm
    if k == 1:
        c.arms[:, 1, :, 0] *= -1
    c.spine_roll = 0.06 * (1 if k == 0 else -1) * keys(t, [t0, t0 + up, times[-2], times[-1]], [0, 1, 1, 0])
    return c


def clap(body, rng, p):
    n = p["count"]
    per = _u(rng, 0.38, 0.5)
    t0, up = _u(rng, 0.2, 0.4), _u(rng, 0.4, 0.55)
    dur = t0 + up + n * per + up + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    times, poses = [0.0, t0, t0 + up], [arm_pair(ARM["down"])] * 2 + [arm_pair(ARM["clap_open"])]
    for i in range(n):
        times += [t0 + up + (i + 0.5) * per, t0 + up + (i + 1) * per]
        poses += [arm_pair(ARM["clap_closed"]), arm_pair(ARM["clap_open"])]
    times.append(times[-1] + up)
    poses.append(arm_pair(ARM["down"]))
    c.arms = arms_keys(t, times, poses)
    return c


def raise_arms(body, rng, p):
    target = {"overhead": "overhead", "sideways": "sides", "forward": "forward"}[p["style"]]
    n = p["count"]
    t0, up, hold = _u(rng, 0.2, 0.4), _u(rng, 0.6, 0.9), _u(rng, 0.4, 1.0)
    dur = t0 + n * (2 * up + hold) + (n - 1) * 0.2 + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    times, poses, tt = [0.0, t0], [arm_pair(ARM["down"])] * 2, t0
    for _ in range(n):
        times += [tt + up, tt + up + hold, tt + 2 * up + hold]
        poses += [arm_pair(ARM[target])] * 2 + [arm_pair(ARM["down"])]
        tt += 2 * up + hold + 0.2
    c.arms = arms_keys(t, times, poses)
    if target == "overhead":
        c.head_pitch = -0.2 * keys(t, times, [0, 0] + [1, 1, 0] * n)
    return c


def punch(body, rng, p):
    n = p["count"]
    hands = [0, 1] * n if p["hand"] == "both" else [SIDES.index(p["hand"])] * n
    hands = hands[:n]
    t0, guard, per = _u(rng, 0.2, 0.35), _u(rng, 0.4, 0.5), _u(rng, 0.38, 0.5)
    dur = t0 + guard + n * per + guard + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    g = arm_pair(ARM["guard"])
    times, poses, twist = [0.0, t0, t0 + guard], [arm_pair(ARM["down"])] * 2 + [g], [0, 0, 0]
    for i, k in enumerate(hands):
        pp = g.copy()
        pp[k] = arm_pair(ARM["punch"])[k]
        times += [t0 + guard + (i + 0.4) * per, t0 + guard + (i + 1) * per]
        poses += [pp, g]
        twist += [0.3 if k == 1 else -0.3, 0]
    times.append(times[-1] + guard)
    poses.append(arm_pair(ARM["down"]))
    twist.append(0)
    c.arms = arms_keys(t, times, poses)
    c.spine_yaw = keys(t, times, twist)
    # a small fighting stance: feet stay, knees soften
    c.dy = -0.03 * body.scale * keys(t, [t0, t0 + guard, times[-2], times[-1]], [0, 1, 1, 0])
    return c


def bow(body, rng, p):
    depth = {"slight": _u(rng, 0.35, 0.55), "deep": _u(rng, 0.9, 1.15)}[p["depth"]]
    t0, down, hold = _u(rng, 0.2, 0.4), _u(rng, 0.7, 1.0), _u(rng, 0.3, 0.8)
    dur = t0 + 2 * down + hold + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    e = keys(t, [t0, t0 + down, t0 + down + hold, t0 + 2 * down + hold], [0, 1, 1, 0])
    c.pelvis_pitch = 0.35 * depth * e
    c.spine_pitch = 0.65 * depth * e
    c.head_pitch = 0.15 * e
    c.root[:, 1] = -0.1 * depth * body.scale * e
    c.dy = -0.02 * depth * body.scale * e
    return c


def squat(body, rng, p):
    n = p["count"]
    depth = {"shallow": _u(rng, 0.18, 0.25), "deep": _u(rng, 0.32, 0.4)}[p["depth"]] * body.scale
    t0, down, hold = _u(rng, 0.2, 0.4), _u(rng, 0.6, 0.9), _u(rng, 0.1, 0.4)
    dur = t0 + n * (2 * down + hold) + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    times, vals = [0.0, t0], [0, 0]
    for i in range(n):
        s = t0 + i * (2 * down + hold)
        times += [s + down, s + down + hold, s + 2 * down + hold]
        vals += [1, 1, 0]
    e = keys(t, times, vals)
    c.dy = -depth * e
    c.root[:, 1] = -0.35 * depth * e
    c.spine_pitch = (0.5 + 0.6 * depth) * e
    c.pelvis_pitch = 0.25 * e
    c.arms = normalize_arms(arm_pair(ARM["down"]), arm_pair(ARM["forward"]), e)
    return c


def normalize_arms(a, b, e):
    """Arm pairs eased from pose a (e = 0) to pose b (e = 1) along great circles."""
    from .plan import slerp_keys

    return slerp_keys(np.asarray(e, float), [0.0, 1.0], [a, b])


def kick(body, rng, p):
    k = SIDES.index(p["leg"])
    n = p["count"]
    high = p["height"] == "high"
    sc = body.scale
    t0, shift, per = _u(rng, 0.2, 0.35), _u(rng, 0.3, 0.45), _u(rng, 0.8, 1.0)
    dur = t0 + shift + n * per + 0.3 + _u(rng, 0.2, 0.4)
    c, t = _stand(body, rng, dur)
    rest = c.feet[0, k].copy()
    side = 1 if k == 0 else -1
    chamber = rest + np.array([0.0, 0.35 * sc, 0.1 * sc])
    ext = rest + np.array([-side * 0.05 * sc, (0.75 if high else 0.35) * sc, (0.75 if high else 0.7) * sc])
    times, pts, pitch = [t0 + shift], [rest], [0.0]
    for i in range(n):
        s = t0 + shift + i * per
        times += [s + 0.3 * per, s + 0.5 * per, s + 0.7 * per, s + per]
        pts += [chamber, ext, chamber, rest]
        pitch += [0.3, 0.7, 0.3, 0.0]
    c.feet[:, k] = keys(t, times, pts)
    c.foot_pitch[:, k] = keys(t, times, pitch)
    c.contact[:, k] = np.linalg.norm(c.feet[:, k] - rest, axis=-1) < 1e-9
    c.sway = body.hip_half_width * 0.9
    e = keys(t, [t0, t0 + shift, times[-1], times[-1] + 0.3], [0, 1, 1, 0])
    c.arms = normalize_arms(arm_pair(ARM["down"]), arm_pair(ARM["balance"]), e)
    lean = np.zeros(len(t))
    for i in range(n):
        s = t0 + shift + i * per
        lean -= (0.25 if high else 0.1) * bump((t - s) / per)
    c.spine_pitch = lean
    return c


def side_step(body, rng, p):
    d = 1 if p["direction"] == "left" else -1
    lead, trail = (0, 1) if d == 1 else (1, 0)
    n = p["count"]
    w = _u(rng, 0.25, 0.38) * body.scale
    per, sw = _u(rng, 0.7, 0.9), _u(rng, 0.3, 0.38)
    t0 = _u(rng, 0.2, 0.4)
    dur = t0 + n * per + 0.3
    c, t = _stand(body, rng, dur)
    hw = body.hip_half_width
    steps = []
    for i in range(n):
        s = t0 + i * per
        xl = d * (hw + w * (i + 1))
        xt = d * (-hw + w * (i + 1))
        steps.append((lead, s, s + sw, np.array([xl, body.ankle_height, 0.0]), 0.0))
        steps.append((trail, s + 0.45 * per, s + 0.45 * per + sw, np.array([xt, body.ankle_height, 0.0]), 0.0))
    apply_steps(c, body, steps, lift=0.06 * body.scale)
    mid = c.feet[:, :, 0].mean(1)
    c.root[:, 0] = gaussian_filter1d(mid, 3.0, mode="nearest")
    c.sway = 0.02
    return c


def turn(body, rng, p, spin=False):
    sgn = 1.0 if p["direction"] == "left" else -1.0
    angle = np.deg2rad(p["angle"]) * sgn
    n = {90: 2, 180: 4, 360: 6}[p["angle"]] + (int(rng.integers(0, 2)) if not spin else 0)
    per = _u(rng, 0.25, 0.3) if spin else _u(rng, 0.4, 0.5)
    sw = per * 0.85
    t0 = _u(rng, 0.2, 0.4)
    t1 = t0 + n * per + 0.1
    dur = t1 + sw + _u(rng, 0.25, 0.45)
    c, t = _stand(body, rng, dur)
    c.yaw = angle * smoothstep((t - t0) / (t1 - t0))
    first = 0 if sgn > 0 else 1
    steps = []
    for i in range(n):
        k = (first + i) % 2
        tl = t0 + i * per
        yr = float(np.interp(min(tl + sw + 0.5 * per, t1), t, c.yaw)) if i < n - 2 else float(angle)
        steps.append((k, tl, tl + sw, neutral_foot(body, k, 0.0, 0.0, yr), yr))
    apply_steps(c, body, steps, lift=0.05 * body.scale)
    c.sway = 0.02
    c.spine_yaw = 0.25 * sgn * bump((t - t0) / (t1 - t0)) * (0.5 if not spin else 1)
    if spin:
        c.arms = normalize_arms(arm_pair(ARM["down"]), arm_pair(ARM["balance"]),
                                keys(t, [t0, t0 + 0.3, t1, t1 + 0.3], [0, 1, 1, 0]))
    return c


def sit_down(body, rng, p):
    seat = p["seat_ratio"]
    t0, down, settle = _u(rng, 0.2, 0.4), _u(rng, 1.0, 1.4), _u(rng, 0.5, 1.0)
    dur = t0 + down + settle
    c, t = _stand(body, rng, dur)
    e = keys(t, [t0, t0 + down], [0, 1])
    lean = keys(t, [t0, t0 + 0.55 * down, t0 + down, t0 + down + 0.4], [0, 1, 0.35, 0.2])
    c.dy = (seat - 1.0) * body.stand_height * e
    c.root[:, 1] = -0.26 * body.scale * e
    c.spine_pitch = 0.55 * lean
    c.pelvis_pitch = 0.3 * lean
    c.arms = normalize_arms(arm_pair(ARM["down"]), arm_pair(ARM["thighs"]), keys(t, [t0 + 0.3 * down, t0 + down + 0.2], [0, 1]))
    c.sway = 0.0
    return c


def stand_up(body, rng, p):
    c = sit_down(body, rng, p).reversed()
    z0 = c.root[0, 1]
    c.root[:, 1] -= z0  # start seated at the origin, end standing in front of the seat
    c.feet[..., 2] -= z0
    return c


# ======================================================================= parameters per family ===
def _count(rng, lo, hi, params, key="count"):
    return int(params.get(key) or rng.integers(lo, hi + 1))


def _pick(rng, options, params, key):
    v = params.get(key)
    if v is None:
        v = options[int(rng.integers(len(options)))]
    if v not in options:
        raise ValueError(f"{key}={v!r} is not one of {list(options)}")
    return v


def sample_params(family: str, rng: np.random.Generator, params: dict, max_frames: int = 196) -> dict:
    """Fill in the parameters the caller left out (and check the ones given)."""
    p = dict(params)
    if family in ("walk", "jog", "run"):
        p.update(_sample_gait(family, rng, max_frames, params))
    elif family == "jump_in_place":
        p["count"] = _count(rng, 1, 3, params)
        p["height"] = _pick(rng, ("low", "high"), params, "height")
        p["height_m"] = _u(rng, 0.2, 0.27) if p["height"] == "low" else _u(rng, 0.33, 0.45)
    elif family == "jump_forward":
        p["count"] = _count(rng, 1, 2, params)
        p["height"] = "normal"
        p["height_m"] = _u(rng, 0.22, 0.32)
        p["distance"] = _pick(rng, ("short", "far"), params, "distance")
        p["distance_m"] = _u(rng, 0.35, 0.55) if p["distance"] == "short" else _u(rng, 0.8, 1.1)
    elif family == "hop":
        p["count"] = _count(rng, 2, 5, params)
        p["leg"] = _pick(rng, SIDES, params, "leg")
        p["direction"] = _pick(rng, ("in_place", "forward"), params, "direction")
        p["height_m"] = _u(rng, 0.16, 0.22)
        p["distance_m"] = 0.0 if p["direction"] == "in_place" else _u(rng, 0.2, 0.32)
    elif family == "wave":
        p["hand"] = _pick(rng, SIDES, params, "hand")
        p["count"] = _count(rng, 2, 4, params)
    elif family == "clap":
        p["count"] = _count(rng, 2, 6, params)
    elif family == "raise_arms":
        p["style"] = _pick(rng, ("overhead", "sideways", "forward"), params, "style")
        p["count"] = _count(rng, 1, 2, params)
    elif family == "punch":
        p["hand"] = _pick(rng, ("left", "right", "both"), params, "hand")
        p["count"] = _count(rng, 1 if p["hand"] != "both" else 2, 4, params)
    elif family == "bow":
        p["depth"] = _pick(rng, ("slight", "deep"), params, "depth")
    elif family == "squat":
        p["count"] = _count(rng, 1, 3, params)
        p["depth"] = _pick(rng, ("shallow", "deep"), params, "depth")
    elif family == "kick":
        p["leg"] = _pick(rng, SIDES, params, "leg")
        p["count"] = _count(rng, 1, 2, params)
        p["height"] = _pick(rng, ("low", "high"), params, "height")
    elif family == "side_step":
        p["direction"] = _pick(rng, SIDES, params, "direction")
        p["count"] = _count(rng, 2, 4, params)
    elif family == "turn":
        p["direction"] = _pick(rng, SIDES, params, "direction")
        p["angle"] = int(_pick(rng, (90, 180), params, "angle"))
    elif family == "spin":
        p["direction"] = _pick(rng, SIDES, params, "direction")
        p["angle"] = 360
    elif family in ("sit_down", "stand_up"):
        p["seat_ratio"] = float(p.get("seat_ratio") or _u(rng, 0.45, 0.55))
    else:
        raise ValueError(f"unknown family {family!r}")
    return p


PLANNERS = {
    "walk": lambda b, r, p: _gait("walk", b, r, p),
    "jog": lambda b, r, p: _gait("jog", b, r, p),
    "run": lambda b, r, p: _gait("run", b, r, p),
    "jump_in_place": jump_in_place,
    "jump_forward": jump_forward,
    "hop": hop,
    "wave": wave,
    "clap": clap,
    "raise_arms": raise_arms,
    "punch": punch,
    "bow": bow,
    "squat": squat,
    "kick": kick,
    "side_step": side_step,
    "turn": turn,
    "spin": lambda b, r, p: turn(b, r, p, spin=True),
    "sit_down": sit_down,
    "stand_up": stand_up,
}
FAMILIES = tuple(PLANNERS)
START_STATE = {f: ("sit" if f == "stand_up" else "stand") for f in FAMILIES}
END_STATE = {f: ("sit" if f == "sit_down" else "stand") for f in FAMILIES}
