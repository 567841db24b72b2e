"""Analytic inverse kinematics: joint positions (T, 22, 3) -> SMPL local rotations, vectorised over frames.

Per joint, the *global* rotation is solved from the positions of its children:

* pelvis and spine3 (three children each): the rigid alignment (batched Kabsch) of the rest offsets to the
  target offsets - hips + spine for the pelvis, neck + collars for spine3;
* spine1, spine2: bone-direction swing applied to a reference frame that interpolates the twist between the
  pelvis and spine3 (so a torso twist is spread over the spine);
* hips and shoulders: bone-direction swing, with the twist about the bone chosen so that the knee / elbow is a
  one-way hinge (exact two-solution solve; blended to the plain swing when the limb is nearly straight, where
  the positions carry no twist information);
* knees / elbows: the hinge angle, then a residual swing; collars, neck, ankles: swing from the parent frame;
* leaves (head, feet, wrists, hands): no rotation relative to the parent (the positions do not determine it).

Local rotations are returned as axis-angle vectors made continuous over time (the angle may exceed pi where
that keeps them continuous).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from . import skeleton as sk

_EPS = 1e-9

#: Hinge axis (positive flexion) of knees and elbows in the rest (T-pose) frame.
HINGE_AXES = {
    sk.L_KNEE: np.array([1.0, 0.0, 0.0]),
    sk.R_KNEE: np.array([1.0, 0.0, 0.0]),
    sk.L_ELBOW: np.array([0.0, -1.0, 0.0]),
    sk.R_ELBOW: np.array([0.0, 1.0, 0.0]),
}
# (upper joint, hinge joint, end joint)
_LIMBS = ((sk.L_HIP, sk.L_KNEE, sk.L_ANKLE), (sk.R_HIP, sk.R_KNEE, sk.R_ANKLE),
          (sk.L_SHOULDER, sk.L_ELBOW, sk.L_WRIST), (sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST))
# Bend (degrees) below which the hinge twist is blended towards the plain swing.
_HINGE_BLEND_DEG = (8.0, 20.0)


# ----------------------------------------------------------------------------------------------- helpers
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotations (..., 3, 3) taking unit vectors a to unit vectors b (broadcast)."""
    a, b = np.broadcast_arrays(_unit(np.asarray(a, float)), _unit(np.asarray(b, float)))
    c = np.sum(a * b, -1)
    k = _skew(np.cross(a, b))
    eye = np.broadcast_to(np.eye(3), k.shape)
    denom = np.where(c > -1 + 1e-8, 1.0 + c, 1.0)
    rot = eye + k + (k @ k) / denom[..., None, None]
    opposite = c <= -1 + 1e-8
    if np.any(opposite):  # 180 degrees about any axis perpendicular to a
        ao = a[opposite]
        helper = np.where(np.abs(ao[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        v = _unit(np.cross(ao, helper))
        rot = rot.copy()
        rot[opposite] = 2 * v[:, :, None] * v[:, None, :] - np.eye(3)
    return rot


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) best mapping the K source offsets (K, 3) onto dst (T, K, 3): dst ~ R @ src."""
    h = np.einsum("ki,tkj->tij", src, dst)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    fix = np.ones(h.shape[:-1])
    fix[:, 2] = d
    return np.swapaxes(vt, -1, -2) @ (fix[:, :, None] * np.swapaxes(u, -1, -2))


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about unit axes (..., 3) by angles (...)."""
    axis = _unit(np.asarray(axis, float))
    angle = np.asarray(angle, float)
    axis, angle = np.broadcast_arrays(axis, angle[..., None])
    return Rotation.from_rotvec((axis * angle).reshape(-1, 3)).as_matrix().reshape(axis.shape[:-1] + (3, 3))


def _signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle about ``axis`` from the projection of a to the projection of b (radians)."""
    a_p = a - np.sum(a * axis, -1, keepdims=True) * axis
    b_p = b - np.sum(b * axis, -1, keepdims=True) * axis
    return np.arctan2(np.sum(axis * np.cross(a_p, b_p), -1), np.sum(a_p * b_p, -1))


def continuous_rotvecs(mats: np.ndarray) -> np.ndarray:
    """(T, J, 3, 3) rotations -> (T, J, 3) axis-angle vectors continuous over time (axis 0).

    Every rotation has the equivalent vectors ``n * (a + 2 pi k)``; frame by frame the one nearest to the
    previous frame's vector is kept, so a rotation passing pi (or a full turn) does not jump to the opposite
    axis. The first frame has an angle <= pi.
    """
    t, j = mats.shape[:2]
    v = Rotation.from_matrix(mats.reshape(-1, 3, 3)).as_rotvec().reshape(t, j, 3)
    angle = np.linalg.norm(v, axis=-1)
    axis = v / np.maximum(angle, 1e-12)[..., None]
    out = v.copy()
    two_pi = 2.0 * np.pi
    for i in range(1, t):
        prev = out[i - 1]
        proj = np.sum(prev * axis[i], -1)
        k = np.round((proj - angle[i]) / two_pi)
        cand = axis[i] * (angle[i] + two_pi * k)[:, None]
        # a (near) identity rotation has no axis of its own: keep the previous axis, whole turns only
        plen = np.linalg.norm(prev, axis=-1)
        still = v[i] + prev / np.maximum(plen, 1e-12)[:, None] * (two_pi * np.round(plen / two_pi))[:, None]
        out[i] = np.where((angle[i] > 1e-6)[:, None], cand, still)
    return out


# ------------------------------------------------------------------------------------------ rest skeleton
def _group_frame(origin: np.ndarray, left: np.ndarray, right: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) (columns x=left, y=up, z=forward) of a three-child joint."""
    x = _unit(left - right)
    y = up - origin
    y = _unit(y - np.sum(y * x, -1, keepdims=True) * x)
    z = np.cross(x, y)
    return np.stack([x, y, z], -1)


_GROUPS = ((sk.PELVIS, (sk.L_HIP, sk.R_HIP, sk.SPINE1), sk.SPINE1),
           (sk.SPINE3, (sk.L_COLLAR, sk.R_COLLAR, sk.NECK), sk.NECK))


def rest_from_joints(joints: np.ndarray, template: np.ndarray | None = None) -> np.ndarray:
    """A rest skeleton (24, 3) built from the input's own proportions.

    Bone lengths are the medians over frames; the rigid offsets of the pelvis (hips, spine) and of spine3
    (collars, neck) are medians in a body frame of the input; other bone directions come from the template
    T-pose. The rest pose stands on y = 0 (its lowest joint) with the pelvis above the origin.
    """
    tmpl = sk.TEMPLATE_REST_JOINTS if template is None else np.asarray(template, float)
    j = np.asarray(joints, float)[:, : sk.NUM_HML_JOINTS]
    lengths = np.median(sk.bone_lengths(j), axis=0)
    offsets = np.diff(np.stack([tmpl[list(sk.SMPL_PARENTS[1:])], tmpl[1:]]), axis=0)[0]  # (23, 3)
    offsets = np.concatenate([np.zeros((1, 3)), offsets])
    for jj in range(1, sk.NUM_HML_JOINTS):
        offsets[jj] = _unit(offsets[jj]) * lengths[jj]
    # hands: the template's hand/forearm ratio
    for hand, wrist in ((sk.L_HAND, sk.L_WRIST), (sk.R_HAND, sk.R_WRIST)):
        ratio = np.linalg.norm(tmpl[hand] - tmpl[wrist]) / np.linalg.norm(tmpl[wrist] - tmpl[sk.SMPL_PARENTS[wrist]])
        offsets[hand] = _unit(offsets[wrist]) * lengths[wrist] * ratio
    for root, (left, right, up), _ in _GROUPS:
        f_data = _group_frame(j[:, root], j[:, left], j[:, right], j[:, up])        # (T, 3, 3)
        f_tmpl = _group_frame(tmpl[root], tmpl[left], tmpl[right], tmpl[up])         # (3, 3)
        for child in (left, right, up):
            local = np.einsum("tji,tj->ti", f_data, j[:, child] - j[:, root])        # F^T d
            offsets[child] = f_tmpl @ np.median(local, axis=0)
    rest = np.zeros((sk.NUM_SMPL_JOINTS, 3))
    for jj in range(1, sk.NUM_SMPL_JOINTS):
        rest[jj] = rest[sk.SMPL_PARENTS[jj]] + offsets[jj]
    rest[:, 1] -= rest[:, 1].min()
    rest[:, [0, 2]] -= rest[0, [0, 2]]
    return rest


# ----------------------------------------------------------------------------------------------------- IK
@dataclass
class IKResult:
    poses: np.ndarray        # (T, 24, 3) continuous local axis-angle
    trans: np.ndarray        # (T, 3)
    local_mats: np.ndarray   # (T, 24, 3, 3)
    global_mats: np.ndarray  # (T, 24, 3, 3)


def _hinge_limb(g_parent, u0, l0, h, u, l):
    """Global rotations of the upper bone and of the hinge joint of one limb (see module docstring)."""
    s = swing(g_parent @ u0, u) @ g_parent                                   # plain swing of the upper bone
    hs = s @ h                                                               # its hinge axis (world)
    p = np.sum(hs * u, -1, keepdims=True)
    q = hs - p * u
    r = np.cross(u, q)
    k = float(h @ l0)                                                        # hinge axis . lower bone (rest)
    b, c = np.sum(q * l, -1), np.sum(r * l, -1)
    a = p[..., 0] * np.sum(u * l, -1)
    rho = np.hypot(b, c)
    psi = np.arctan2(c, b)
    delta = np.arccos(np.clip((k - a) / np.maximum(rho, _EPS), -1.0, 1.0))
    best_phi = np.zeros(len(u))
    best_theta = np.full(len(u), -np.inf)
    for phi in (psi + delta, psi - delta):
        g_up = axis_angle_matrix(u, phi) @ s
        v = np.einsum("tji,tj->ti", g_up, l)                                 # lower bone in the upper frame
        theta = _signed_angle(l0, v, h)
        take = theta > best_theta
        best_phi = np.where(take, phi, best_phi)
        best_theta = np.where(take, theta, best_theta)
    bend = np.degrees(np.arccos(np.clip(np.sum(u * l, -1), -1.0, 1.0)))
    lo, hi = _HINGE_BLEND_DEG
    w = np.clip((bend - lo) / (hi - lo), 0.0, 1.0)
    phi = np.arctan2(np.sin(best_phi), np.cos(best_phi)) * w
    g_up = axis_angle_matrix(u, phi) @ s
    v = np.einsum("tji,tj->ti", g_up, l)
    theta = _signed_angle(l0, v, h)
    hinge = axis_angle_matrix(h, theta)
    g_mid = g_up @ hinge
    g_mid = swing(g_mid @ l0, l) @ g_mid                                     # residual (non-hinge) part
    return g_up, g_mid


def solve_ik(joints: np.ndarray, rest_joints: np.ndarray) -> IKResult:
    """Analytic IK of joint positions (T, 22 or 24, 3) on ``rest_joints`` (24, 3)."""
    p = np.asarray(joints, float)[:, : sk.NUM_HML_JOINTS]
    rest = np.asarray(rest_joints, float)
    t = p.shape[0]
    par = sk.SMPL_PARENTS

    def rest_dir(j):
        return _unit(rest[j] - rest[par[j]])

    def target_dir(j):
        return _unit(p[:, j] - p[:, par[j]])

    g = np.zeros((t, sk.NUM_SMPL_JOINTS, 3, 3))
    # pelvis and spine3: rigid alignment of their three children
    for root, children, _ in _GROUPS:
        src = rest[list(children)] - rest[root]
        dst = p[:, list(children)] - p[:, root, None]
        g[:, root] = kabsch(src, dst)
    # spine1, spine2: twist interpolated between pelvis and spine3
    rel = Rotation.from_matrix(np.einsum("tji,tjk->tik", g[:, sk.PELVIS], g[:, sk.SPINE3])).as_rotvec()
    for j, frac in ((sk.SPINE1, 1 / 3), (sk.SPINE2, 2 / 3)):
        child = sk.SMPL_CHILDREN[j][0]
        ref = g[:, sk.PELVIS] @ Rotation.from_rotvec(rel * frac).as_matrix()
        g[:, j] = swing(ref @ _unit(rest[child] - rest[j]), target_dir(child)) @ ref

    def swing_from_parent(j):
        child = [c for c in sk.SMPL_CHILDREN[j] if c < sk.NUM_HML_JOINTS][0]
        gp = g[:, par[j]]
        g[:, j] = swing(gp @ rest_dir(child), target_dir(child)) @ gp

    for j in (sk.NECK, sk.L_COLLAR, sk.R_COLLAR):
        swing_from_parent(j)
    for upper, mid, end in _LIMBS:
        g[:, upper], g[:, mid] = _hinge_limb(g[:, par[upper]], rest_dir(mid), rest_dir(end), HINGE_AXES[mid],
                                             target_dir(mid), target_dir(end))
    for j in (sk.L_ANKLE, sk.R_ANKLE):
        swing_from_parent(j)
    for j in (sk.HEAD, sk.L_FOOT, sk.R_FOOT, sk.L_WRIST, sk.R_WRIST, sk.L_HAND, sk.R_HAND):
        g[:, j] = g[:, par[j]]
    local = np.empty_like(g)
    local[:, 0] = g[:, 0]
    for j in range(1, sk.NUM_SMPL_JOINTS):
        local[:, j] = np.swapaxes(g[:, par[j]], -1, -2) @ g[:, j]
    trans = p[:, 0] - rest[0]
    return IKResult(poses=continuous_rotvecs(local), trans=trans, local_mats=local, global_mats=g)
