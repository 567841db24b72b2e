"""Batched refinement of all frames at once (torch), starting from the analytic IK solution.

Loss (lengths in centimetres):
* joint positions: squared distance to the 22 input joints;
* temporal smoothness: squared second difference of the local rotation matrices over time;
* joint limits: knees and elbows bend one way only (and stay close to a hinge);
* foot locking (optional): ankle/foot joints detected in contact with the floor stay at one place per contact;
* shape prior when the SMPL betas are fitted.
The parameters are small corrections ``delta`` on top of the IK rotations (``R = R_ik @ exp(delta)``), the root
translation and, optionally, the betas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import skeleton as sk
from .ik import HINGE_AXES

# Joints whose rotation moves one of the 22 input joints (the leaves' rotations do not).
OPT_JOINTS = tuple(j for j in range(sk.NUM_HML_JOINTS)
                   if any(c < sk.NUM_HML_JOINTS for c in sk.SMPL_CHILDREN[j]))
FOOT_JOINTS = (sk.L_ANKLE, sk.L_FOOT, sk.R_ANKLE, sk.R_FOOT)


@dataclass
class RefineWeights:
    position: float = 1.0        # per cm^2 of joint error
    smooth: float = 20.0         # per squared second difference of rotation matrices
    limit: float = 100.0         # per squared sin of a wrong-way bend
    hinge: float = 0.5           # per squared deviation of the hinge axis
    foot_lock: float = 1.0       # per cm^2 of a locked foot's drift
    betas_prior: float = 0.001   # per squared beta


def detect_contacts(joints: np.ndarray, fps: float = 20.0, speed_mps: float = 0.2,
                    height_m: float = 0.05, reach_m: float = 0.02, model_contacts: np.ndarray | None = None,
                    model_speed_mps: float = 0.5, floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Foot contacts of (T, 22, 3) joints: mask (T, 4) for FOOT_JOINTS and the locked positions (T, 4, 3).

    A contact is a run of at least two frames where the joint is slower than ``speed_mps`` and within
    ``height_m`` of its floor height; it is locked at the run's mean position, except on frames where the input
    is more than ``reach_m`` away from that position (a foot that really moves is not pinned).

    ``model_contacts`` (T, 4) (or (T-1, 4)): the generator's own foot-contact predictions for FOOT_JOINTS (the
    last four HumanML3D feature channels, ~1 = contact); a frame it marks (> 0.5) also counts when the joint is
    slower than ``model_speed_mps`` (and within ``height_m`` of its floor): generated stance feet slide, so
    the speed test alone misses them, while HumanML3D's own labels only mean "slower than ~0.9 m/s".
    ``floor`` (4,): each joint's floor height (default: its 5th percentile over the clip)."""
    j = np.asarray(joints, float)[:, list(FOOT_JOINTS)]
    t = j.shape[0]
    if t < 2:
        return np.zeros((t, 4), bool), j.copy()
    vel = np.gradient(j, axis=0) * fps
    speed = np.linalg.norm(vel, axis=-1)
    floor = np.percentile(j[..., 1], 5, axis=0) if floor is None else np.asarray(floor, float)
    low = j[..., 1] < floor + height_m
    mask = (speed < speed_mps) & low
    if model_contacts is not None:
        c = np.asarray(model_contacts, float)
        if c.shape[0] == t - 1:  # HumanML3D features without the last frame: repeat the last prediction
            c = np.concatenate([c, c[-1:]])
        mask |= (c > 0.5) & (speed < model_speed_mps) & low
    locked = j.copy()
    for k in range(4):
        m = mask[:, k]
        start = None
        for i in range(t + 1):
            on = i < t and m[i]
            if on and start is None:
                start = i
            elif not on and start is not None:
                if i - start >= 2:
                    locked[start:i, k] = j[start:i, k].mean(axis=0)
                else:
                    mask[start:i, k] = False
                start = None
    mask &= np.linalg.norm(locked - j, axis=-1) < reach_m
    return mask, locked


def temporal_gate(joints: np.ndarray, fps: float = 20.0, lo: float = 30.0, hi: float = 100.0) -> float:
    """1 for a coherent motion, 0 for unrelated frames: from the median joint acceleration (m/s^2)."""
    j = np.asarray(joints, float)
    if j.shape[0] < 3:
        return 0.0
    acc = np.linalg.norm(j[2:] - 2 * j[1:-1] + j[:-2], axis=-1) * fps * fps
    return float(np.clip((hi - np.median(acc)) / (hi - lo), 0.0, 1.0))


def lbfgs(value_and_grad, x0, iterations: int, history: int = 20, tol: float = 1e-4):
    """Minimise with L-BFGS (two-loop recursion, backtracking Armijo line search) on a flat tensor.

    Our own few lines instead of ``torch.optim.LBFGS``: every ``torch.optim`` step imports ``torch._dynamo``
    (seconds on first use), which a one-shot CLI fit should not pay.
    """
    torch = _torch()
    x = x0.clone()
    f, g = value_and_grad(x)
    hist: list = []
    for it in range(iterations):
        q = g.clone()
        alphas = []
        for s_, y_, rho in reversed(hist):
            a = rho * torch.dot(s_, q)
            q -= a * y_
            alphas.append(a)
        if hist:
            s_, y_, _ = hist[-1]
            q *= torch.dot(s_, y_) / torch.dot(y_, y_)
        else:
            q *= min(1.0, 1.0 / max(float(g.abs().sum()), 1e-12))
        for (s_, y_, rho), a in zip(hist, reversed(alphas)):
            b = rho * torch.dot(y_, q)
            q += s_ * (a - b)
        d = -q
        gtd = float(torch.dot(g, d))
        if gtd > -1e-12:
            if not hist:
                break
            hist.clear()  # not a descent direction: restart from steepest descent
            continue
        step = 1.0
        for _ in range(12):
            x_new = x + step * d
            f_new, g_new = value_and_grad(x_new)
            if f_new <= f + 1e-4 * step * gtd:
                break
            step *= 0.5
        else:
            break
        s_, y_ = x_new - x, g_new - g
        ys = float(torch.dot(y_, s_))
        if ys > 1e-12:
            hist.append((s_, y_, 1.0 / ys))
            if len(hist) > history:
                hist.pop(0)
        converged = abs(f - f_new) <= tol * max(10.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if converged or float(g.abs().max()) < 1e-9:
            break
    return x


def _torch():
    import torch  # noqa: PLC0415
    return torch


def rotvec_to_matrix(v):
    """Differentiable axis-angle -> rotation matrix (..., 3) -> (..., 3, 3), safe at zero."""
    torch = _torch()
    theta2 = (v * v).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-24)
    half = 0.5 * theta
    small = theta2 < 1e-8
    k = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(half) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(half))
    x, y, z = (v * k).unbind(-1)
    w = w[..., 0]
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(v.shape[:-1] + (3, 3))


class TorchFK:
    """Forward kinematics in torch, computed one tree level at a time."""

    def __init__(self, device="cpu", dtype=None):
        torch = _torch()
        dtype = dtype or torch.float64
        depth = [0] * sk.NUM_SMPL_JOINTS
        for j in range(1, sk.NUM_SMPL_JOINTS):
            depth[j] = depth[sk.SMPL_PARENTS[j]] + 1
        self.levels = []
        order = []
        pos_in_level = {}
        for d in range(max(depth) + 1):
            idx = [j for j in range(sk.NUM_SMPL_JOINTS) if depth[j] == d]
            for i, j in enumerate(idx):
                pos_in_level[j] = i
            par = [pos_in_level[sk.SMPL_PARENTS[j]] for j in idx] if d else []
            self.levels.append((torch.tensor(idx, device=device),
                                torch.tensor(par, device=device, dtype=torch.long)))
            order += idx
        self.inverse = torch.tensor(np.argsort(order), device=device)
        self.parents = torch.tensor([max(p, 0) for p in sk.SMPL_PARENTS], device=device)

    def __call__(self, rest, local, trans):
        """rest (24, 3), local (T, 24, 3, 3), trans (T, 3) -> joints (T, 24, 3), globals (T, 24, 3, 3)."""
        torch = _torch()
        offsets = rest - rest[self.parents]
        g_levels, p_levels = [], []
        for d, (idx, par) in enumerate(self.levels):
            if d == 0:
                g = local[:, idx]
                p = (rest[idx] + trans[:, None, :]).expand(local.shape[0], -1, -1)
            else:
                gp = g_levels[-1][:, par]
                g = gp @ local[:, idx]
                p = p_levels[-1][:, par] + (gp @ offsets[idx][None, :, :, None])[..., 0]
            g_levels.append(g)
            p_levels.append(p)
        joints = torch.cat(p_levels, 1)[:, self.inverse]
        glob = torch.cat(g_levels, 1)[:, self.inverse]
        return joints, glob


def refine(target: np.ndarray, rest0: np.ndarray, local_mats: np.ndarray, trans: np.ndarray, *,
           jdirs: np.ndarray | None = None, betas: np.ndarray | None = None, fit_betas: bool = False,
           foot_lock: bool = True, fps: float = 20.0, iterations: int = 30, device: str = "cpu",
           weights: RefineWeights | None = None, progress=None, dtype: str = "float64"):
    """Refine IK rotations. Returns (local_mats (T,24,3,3), trans (T,3), betas (10,), rest (24,3))."""
    torch = _torch()
    w = weights or RefineWeights()
    dt = torch.float32 if dtype == "float32" else torch.float64
    try:
        dev = torch.device(device)
        torch.zeros(1, device=dev)
    except (RuntimeError, AssertionError) as exc:
        from .errors import FitError  # noqa: PLC0415
        raise FitError(f"torch device {device!r} is not usable here: {exc}") from exc
    tgt = torch.as_tensor(np.asarray(target, float)[:, : sk.NUM_HML_JOINTS], dtype=dt, device=dev)
    t = tgt.shape[0]
    r_ik = torch.as_tensor(local_mats, dtype=dt, device=dev)
    tr0 = torch.as_tensor(trans, dtype=dt, device=dev)
    j0 = torch.as_tensor(rest0, dtype=dt, device=dev)
    jd = torch.as_tensor(jdirs if jdirs is not None else np.zeros((24, 3, 10)), dtype=dt, device=dev)
    b0 = np.zeros(10) if betas is None else np.asarray(betas, float)
    fk = TorchFK(dev, dt)
    opt_idx = torch.tensor(OPT_JOINTS, device=dev)
    delta = torch.zeros((t, len(OPT_JOINTS), 3), dtype=dt, device=dev, requires_grad=True)
    dtrans = torch.zeros((t, 3), dtype=dt, device=dev, requires_grad=True)
    beta = torch.tensor(b0, dtype=dt, device=dev, requires_grad=bool(fit_betas))
    params = [delta, dtrans] + ([beta] if fit_betas else [])

    hinge_j = list(HINGE_AXES)
    hinge_axes = torch.tensor(np.stack([HINGE_AXES[j] for j in hinge_j]), dtype=dt, device=dev)
    r0 = np.asarray(rest0, float)
    lower0 = np.stack([r0[sk.SMPL_CHILDREN[j][0]] - r0[j] for j in hinge_j])
    lower0 = torch.tensor(lower0 / np.linalg.norm(lower0, axis=-1, keepdims=True), dtype=dt, device=dev)
    hinge_idx = torch.tensor(hinge_j, device=dev)

    gate = temporal_gate(target, fps)
    if foot_lock and t >= 3 and gate > 0:
        mask_np, locked_np = detect_contacts(target, fps)
        mask = torch.as_tensor(mask_np, dtype=dt, device=dev)
        locked = torch.as_tensor(locked_np, dtype=dt, device=dev)
        n_contact = float(mask_np.sum())
    else:
        n_contact = 0.0
    foot_idx = torch.tensor(FOOT_JOINTS, device=dev)
    w_smooth = w.smooth * gate
    cm2 = 1.0 / (0.01 ** 2)

    def build_local():
        corr = rotvec_to_matrix(delta)
        full = r_ik.clone()
        full[:, opt_idx] = r_ik[:, opt_idx] @ corr
        return full

    def loss_fn():
        local = build_local()
        rest = j0 + jd @ beta
        joints, _ = fk(rest, local, tr0 + dtrans)
        loss = w.position * cm2 * ((joints[:, : sk.NUM_HML_JOINTS] - tgt) ** 2).sum(-1).mean()
        if t >= 3 and w_smooth > 0:
            lo = local[:, opt_idx]
            acc = lo[2:] - 2 * lo[1:-1] + lo[:-2]
            loss = loss + w_smooth * (acc ** 2).sum((-1, -2)).mean() * len(OPT_JOINTS) / sk.NUM_HML_JOINTS
        hm = local[:, hinge_idx]                                           # (T, 4, 3, 3)
        moved = (hm @ lower0[None, :, :, None])[..., 0]
        bend = (torch.cross(lower0.expand_as(moved), moved, dim=-1) * hinge_axes).sum(-1)
        loss = loss + w.limit * (torch.relu(-bend) ** 2).mean()
        axis_dev = (hm @ hinge_axes[None, :, :, None])[..., 0] - hinge_axes
        loss = loss + w.hinge * (axis_dev ** 2).sum(-1).mean()
        if n_contact > 0:
            feet = joints[:, foot_idx]
            loss = loss + w.foot_lock * cm2 * (((feet - locked) ** 2).sum(-1) * mask).sum() / max(t, 1)
        if fit_betas:
            loss = loss + w.betas_prior * (beta ** 2).sum()
        return loss

    sizes = [p_.numel() for p_ in params]

    def value_and_grad(x):
        parts = torch.split(x, sizes)
        with torch.no_grad():
            for p_, part in zip(params, parts):
                p_.copy_(part.view_as(p_))
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params)
        return float(loss.detach()), torch.cat([g_.reshape(-1) for g_ in grads])

    calls = [0]

    def counted(x):
        calls[0] += 1
        if progress is not None:
            progress("refine", min(1.0, calls[0] / (iterations * 1.25)))
        return value_and_grad(x)

    # Small tensors: one intra-op thread is much faster than several (and than a busy shared CPU).
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        x0 = torch.cat([p_.detach().reshape(-1) for p_ in params])
        x = lbfgs(counted, x0, iterations)
        value_and_grad(x)  # leave the parameters at x
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        local = build_local().cpu().numpy()
        trans_out = (tr0 + dtrans).cpu().numpy()
        beta_out = beta.detach().cpu().numpy()
        rest_out = (j0 + jd @ beta).cpu().numpy()
    # re-orthonormalise (float round-off)
    u, _, vt = np.linalg.svd(local)
    local = u @ vt
    return local, trans_out, beta_out, rest_out


def fit_betas_to_lengths(target: np.ndarray, j0: np.ndarray, jdirs: np.ndarray, prior: float = 1e-3,
                         iterations: int = 50) -> np.ndarray:
    """Betas (10,) whose rest bone lengths best match the input's median bone lengths."""
    torch = _torch()
    lengths = torch.tensor(np.median(sk.bone_lengths(np.asarray(target, float)[:, :22]), axis=0)[1:])
    j0_t = torch.tensor(j0, dtype=torch.float64)
    jd_t = torch.tensor(jdirs, dtype=torch.float64)
    par = torch.tensor(sk.SMPL_PARENTS[1:22])

    def value_and_grad(beta):
        beta = beta.detach().requires_grad_(True)
        rest = j0_t + jd_t @ beta
        bl = (rest[1:22] - rest[par]).norm(dim=-1)
        loss = (((bl - lengths) / 0.01) ** 2).sum() + prior * (beta ** 2).sum()
        (grad,) = torch.autograd.grad(loss, beta)
        return float(loss.detach()), grad

    return lbfgs(value_and_grad, torch.zeros(jdirs.shape[-1], dtype=torch.float64), iterations).numpy()
