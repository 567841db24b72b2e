"""The retargeting solver (numpy only): from a source rig's sampled pose to a target rig's local rotations and
root location, frame by frame. ``blender/retarget.py`` reads the rigs and samples the source out of Blender,
calls this, and writes the keys.

Method (all rotations 3x3, acting on column vectors):

* A bone map ``{source_bone: target_bone}`` pairs bones (``core/bone_map.py``).
* Poses are compared in each armature's "character space": its armature space in real-world
  units (the object's scale applied, not its location/rotation), so the motion plays relative to
  the target object wherever it stands, and a centimetre FBX rig with object scale 0.01 works.
* At rest, for every pair, ``Q`` is the smallest rotation turning the target bone's rest
  direction onto the source bone's rest direction (this absorbs T-pose vs A-pose and any small
  difference in limb layout; bone rolls do not matter, whole orientations are used).
* Per frame, the source bone's rotation change from its rest, ``D = W_src(t) @ W_src_rest^T``
  (character space, a "world-space offset"), is applied to the aligned target rest orientation:
  ``W_tgt(t) = D @ Q @ W_tgt_rest``. So the target bone points where the source bone points and
  twists the way it twists.
* World orientations become local pose rotations parent first (unmapped bones stay at rest and
  just carry their children), the way Blender composes a pose:
  ``P_j = P_parent @ M_parent^-1 @ M_j @ L_j`` (M: rest matrices, L: the keyed local transform).
* A target modelled facing another way (its left-right hip axis turned by more than 10 degrees
  from the source's) gets the source turned about Z to match, so it walks the way it faces.
* The root (the target of the topmost mapped source bone) moves by the source root displacement
  scaled by ``target leg length / source leg length`` (leg = hip->knee->ankle, mean of both sides).
* Toes: SMPL's toe bone is a leaf whose tail only continues the ankle->toe direction (it points 24 degrees down,
  3 cm under the floor at rest), so a target toe bone is aligned with the rotation of its foot bone
  (``TOE_ALIGN``): it keeps its own rest angle to the foot, and a rig standing at rest has its toes as modelled.
* Foot grounding (``foot_lift``): "on the floor" is measured at the foot JOINTS, the heads of the bones mapped
  from SMPL's ankles and toes (the joints the SMPL fit grounds; SMPL's toe joint is ~1 cm above its sole): a
  joint stands on the floor when it is at its rest height above the rig's floor, so a rig whose toe joint is
  modelled 3 cm above its sole keeps that sole on the floor. Per frame the lowest joint's height above its rest
  height (its "offset") is never below 0, and, with ``snap_contacts``, on frames where the source's lowest foot
  joint is within ``CONTACT_HEIGHT`` of its own rest height, the target's lowest offset is made the source's.
  Tails are not contact points (a toe bone's tail is the tip of the toes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import foot_lock, smpl_rig
from .bone_map import BoneMap, RetargetError, depths

#: SMPL bones used for the leg length (thigh start, knee, ankle) per side.
LEG_CHAINS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))
#: SMPL bones whose heads are the foot joints (ankles, toes) the grounding measures.
FOOT_BONES = ("left_ankle", "left_foot", "right_ankle", "right_foot")
#: SMPL toe bones (leaves: their tails are a convention) and the foot bone whose rest alignment they take.
TOE_ALIGN = {"left_foot": "left_ankle", "right_foot": "right_ankle"}
#: Half-width (seconds) of the moving average that softens the contact corrections.
CONTACT_SMOOTH_S = 0.05
#: Source foot within this height (metres, source scale) of its ground counts as a contact.
CONTACT_HEIGHT = 0.03
#: Pairs of SMPL bones (left, right) whose rest heads give a rig's left-right axis.
LATERAL_PAIRS = (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"))
#: Facing differences below this (degrees) are left alone (asymmetric rest poses).
FACING_TOLERANCE_DEG = 10.0


# --------------------------------------------------------------------------- rigs
@dataclass
class Rig:
    """An armature as the solver sees it, bones parents first.

    names/parents: bone names and parent indices (-1: a root); rest: (n, 4, 4) armature-space rest matrices
    (``bone.matrix_local``); heads: (n, 3) rest heads (``bone.head_local``); lengths: (n,) bone lengths;
    inherit_rotation: (n,) ``use_inherit_rotation``; scale: the 4x4 "character matrix" (the object's scale)."""

    names: list
    parents: list
    rest: np.ndarray
    heads: np.ndarray
    lengths: np.ndarray
    inherit_rotation: np.ndarray
    scale: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self):
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def from_bones(cls, bones, scale=None) -> "Rig":
        """bones: ``(name, parent_name or None, rest 4x4, head 3, length, inherit_rotation)`` in any order."""
        bones = list(bones)
        by_name = {b[0]: b for b in bones}
        order = topo_order([(b[0], b[1]) for b in bones])
        idx = {n: i for i, n in enumerate(order)}
        rows = [by_name[n] for n in order]
        return cls(names=order, parents=[idx[r[1]] if r[1] is not None else -1 for r in rows],
                   rest=np.array([np.asarray(r[2], dtype=np.float64) for r in rows]).reshape(-1, 4, 4),
                   heads=np.array([np.asarray(r[3], dtype=np.float64) for r in rows]).reshape(-1, 3),
                   lengths=np.array([float(r[4]) for r in rows]),
                   inherit_rotation=np.array([bool(r[5]) for r in rows]),
                   scale=np.eye(4) if scale is None else np.asarray(scale, dtype=np.float64))

    def depth(self) -> dict:
        return depths({n: (self.names[p] if p >= 0 else None) for n, p in zip(self.names, self.parents)})


def topo_order(bones) -> list:
    """Bone names, parents before children, from ``(name, parent_name or None)`` pairs (order otherwise kept)."""
    parent_of = dict(bones)
    order, seen = [], set()

    def visit(n):
        if n in seen:
            return
        p = parent_of.get(n)
        if p is not None:
            visit(p)
        seen.add(n)
        order.append(n)

    for n in parent_of:
        visit(n)
    return order


# --------------------------------------------------------------------------- math helpers
def min_rotation(a, b) -> np.ndarray:
    """Smallest rotation (3x3) turning unit vector a onto unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    c = float(np.dot(a, b))
    if c > 1.0 - 1e-12:
        return np.eye(3)
    if c < -1.0 + 1e-9:
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        return smpl_rig.axis_angle_to_matrix(perp / np.linalg.norm(perp) * np.pi)
    axis = np.cross(a, b)
    axis /= np.linalg.norm(axis)
    return smpl_rig.axis_angle_to_matrix(axis * np.arccos(np.clip(c, -1.0, 1.0)))


def orthonormal(m) -> np.ndarray:
    """Nearest rotation (polar decomposition) of (..., 3, 3) matrices (removes object scale)."""
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64))
    r = u @ vt
    det = np.linalg.det(r)
    if np.any(det < 0):
        u = u.copy()
        u[det < 0, :, -1] *= -1
        r = u @ vt
    return r


def rot_z4(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def facing_yaw(bm, src: Rig, tgt: Rig) -> float:
    """Angle about Z turning the source's left-right axis onto the target's (0 when close)."""
    for left, right in LATERAL_PAIRS:
        if left in bm and right in bm:
            a = (src.scale @ np.append(src.heads[src.index[left]] - src.heads[src.index[right]], 0.0))[:2]
            b = (tgt.scale @ np.append(tgt.heads[tgt.index[bm[left]]] - tgt.heads[tgt.index[bm[right]]], 0.0))[:2]
            if np.linalg.norm(a) < 1e-6 or np.linalg.norm(b) < 1e-6:
                continue
            yaw = float(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b))
            return yaw if abs(np.degrees(yaw)) > FACING_TOLERANCE_DEG else 0.0
    return 0.0


def leg_length(rest_heads: dict, chain_names=LEG_CHAINS) -> float | None:
    lens = []
    for hip, knee, ankle in chain_names:
        if hip in rest_heads and knee in rest_heads and ankle in rest_heads:
            lens.append(np.linalg.norm(rest_heads[knee] - rest_heads[hip]) +
                        np.linalg.norm(rest_heads[ankle] - rest_heads[knee]))
    return float(np.mean(lens)) if lens else None


def check_scale_root(scale_root) -> None:
    """``"leg_length"``, a positive number or None; raises RetargetError otherwise."""
    if isinstance(scale_root, str):
        if scale_root != "leg_length":
            raise RetargetError(f"scale_root must be 'leg_length', a number or None, got {scale_root!r}")
    elif scale_root is not None and not (isinstance(scale_root, (int, float)) and scale_root > 0):
        raise RetargetError(f"scale_root must be positive, got {scale_root!r}")


def ground_rest(motion: dict) -> dict:
    """The same motion with its rest skeleton standing on the ground (lowest rest joint at height 0, y-up).

    SMPL fits put the rest pelvis at the origin and carry the height in ``trans``; retargeting measures the
    root's displacement from its rest, so such a source would lift the target rig by its whole height.
    Shifting rest_joints up by h and trans down by h leaves every posed joint where it was."""
    rest = np.asarray(motion["rest_joints"], dtype=np.float64)
    h = float(rest[:, 1].min())
    if abs(h) < 1e-6:
        return motion
    out = dict(motion)
    out["rest_joints"] = rest - np.array([0.0, h, 0.0])
    out["trans"] = np.asarray(motion["trans"], dtype=np.float64) + np.array([0.0, h, 0.0])
    return out


# --------------------------------------------------------------------------- the solver
@dataclass
class Solution:
    """What to key on the target: ``rotations`` {target bone: (F, 3, 3) local rotation}, in the target's
    parents-first order; ``root_bone`` gets ``root_location`` (F, 3) as its location; ``root_scale`` is the factor
    applied to the source's root displacement."""

    rotations: dict
    root_bone: str
    root_location: np.ndarray
    root_scale: float


class Retargeter:
    """The rest-pose half of a retarget (facing, root, alignments, leg-length scale), ready to solve poses.

    src, tgt: the rigs; bm: a resolved BoneMap (every bone exists in its rig). ``source_bones`` is the order in
    which ``solve`` wants the source's pose matrices."""

    def __init__(self, src: Rig, tgt: Rig, bm: BoneMap, *, scale_root="leg_length"):
        check_scale_root(scale_root)
        self.src, self.tgt, self.bm = src, tgt, bm
        self.source_bones = list(bm.keys())
        names = self.source_bones
        # facing: a rig built facing another way (+Y, +X ...) gets the motion turned to its facing
        self.yaw = facing_yaw(bm, src, tgt)
        self.src_mw = rot_z4(self.yaw) @ src.scale
        self.tgt_mw = tgt.scale
        self.tgt_rw = orthonormal(self.tgt_mw[:3, :3])
        # root: the mapped source bone nearest the top of the hierarchy
        sdepth = src.depth()
        self.src_root = min(names, key=lambda n: (sdepth[n], names.index(n)))
        self.tgt_root = bm[self.src_root]
        # rest data
        self.src_rest = {n: self.src_mw @ src.rest[src.index[n]] for n in names}          # world 4x4
        self.src_rest_rot = {n: orthonormal(self.src_rest[n][:3, :3]) for n in names}
        M = tgt.rest
        self.tgt_rest_world_rot = {t: self.tgt_rw @ M[tgt.index[t], :3, :3] for t in bm.values()}
        self.Q = {s: min_rotation(self.tgt_rest_world_rot[t][:, 1], self.src_rest_rot[s][:, 1])
                  for s, t in bm.items()}
        for toe, foot in TOE_ALIGN.items():
            if toe in self.Q and foot in self.Q:
                self.Q[toe] = self.Q[foot]
        # leg lengths (world units)
        self.src_heads = {n: self.src_rest[n][:3, 3] for n in names}
        self.tgt_heads = {s: (self.tgt_mw @ M[tgt.index[t], :, 3])[:3] for s, t in bm.items()}
        if scale_root == "leg_length":
            ls, lt = leg_length(self.src_heads), leg_length(self.tgt_heads)
            self.k = lt / ls if ls and lt and ls > 1e-6 else 1.0
        else:
            self.k = 1.0 if scale_root is None else float(scale_root)

    def solve(self, source_pose, *, fps: float, keep_feet_on_ground: bool = True,
              snap_contacts: bool = True, lock_feet: bool = False) -> Solution:
        """source_pose: (F, n, 4, 4) armature-space pose matrices of ``source_bones`` (``pose_bone.matrix``).
        lock_feet: pin the target's feet where the source's stand (``core/foot_lock.py``, ``lock_feet``)."""
        S = self.src_mw[None, None] @ np.asarray(source_pose, dtype=np.float64)     # (F, n, 4, 4) world
        P, rotations = self.pose(S)
        root_world = self.root_path(S)
        if keep_feet_on_ground:
            dz = self.foot_lift(P, S, root_world, fps=fps, snap_contacts=snap_contacts)
            if dz is not None:
                root_world = root_world + dz[:, None] * np.array([0.0, 0.0, 1.0])
        if lock_feet:
            rotations, drop = self.lock_feet(P, S, root_world, rotations, fps=fps)
            root_world = root_world - (self.tgt_mw[:3, :3] @ np.array([0.0, 0.0, 1.0]))[None] * drop[:, None]
        if keep_feet_on_ground:
            rotations = self.toes_above_floor(rotations, root_world)
        return Solution(rotations=rotations, root_bone=self.tgt_root,
                        root_location=self.root_location(P, root_world), root_scale=float(self.k))

    def pose(self, S):
        """Desired world rotations of the mapped target bones -> local rotations, parent first. Returns the
        target's armature-space pose matrices P (F, nb, 4, 4) with the root still at rest, and {bone: L}."""
        tgt, M = self.tgt, self.tgt.rest
        F = S.shape[0]
        S_rot = orthonormal(S[:, :, :3, :3])
        P = np.broadcast_to(M, (F, len(tgt.names), 4, 4)).copy()
        rotations = {}
        tgt_to_src = {t: s for s, t in self.bm.items()}
        tgt_rw_T = self.tgt_rw.T
        for j, name in enumerate(tgt.names):
            p = tgt.parents[j]
            rel = M[j] if p < 0 else np.linalg.inv(M[p]) @ M[j]
            X = rel[None] if p < 0 else P[:, p] @ rel[None]              # (F or 1, 4, 4), L = I
            X = np.broadcast_to(X, (F, 4, 4))
            if p >= 0 and not tgt.inherit_rotation[j]:                   # Blender keeps its rest rotation
                X = X.copy()
                X[:, :3, :3] = M[j, :3, :3]
            s = tgt_to_src.get(name)
            if s is None:
                P[:, j] = X
                continue
            i = self.source_bones.index(s)
            D = S_rot[:, i] @ self.src_rest_rot[s].T                     # (F, 3, 3) world delta
            W = D @ (self.Q[s] @ self.tgt_rest_world_rot[name])[None]    # desired world rotation
            A = tgt_rw_T[None] @ W                                       # armature space
            Xr = orthonormal(X[:, :3, :3])
            L = np.swapaxes(Xr, -1, -2) @ A
            rotations[name] = L
            Pj = X.copy()
            Pj[:, :3, :3] = X[:, :3, :3] @ L
            P[:, j] = Pj
        return P, rotations

    def root_path(self, S):
        """World positions (F, 3) of the target root: its rest head plus the scaled source displacement."""
        ri = self.source_bones.index(self.src_root)
        src_disp = S[:, ri, :3, 3] - self.src_heads[self.src_root]
        return self.tgt_heads[self.src_root][None] + self.k * src_disp

    def _root_shift(self, P, root_world):
        """Armature-space shift (F, 3) that puts the target root at ``root_world``."""
        inv_mw = np.linalg.inv(self.tgt_mw)
        h_arm = (inv_mw[:3, :3] @ root_world.T).T + inv_mw[:3, 3]
        return h_arm - P[:, self.tgt.index[self.tgt_root], :3, 3]

    def foot_lift(self, P, S, root_world, *, fps: float, snap_contacts: bool = True):
        """Per-frame lift (F,) along world Z that keeps the target's foot joints at or above their rest heights, and
        with ``snap_contacts`` gives the lowest one the source's offset above its rest height where the source's
        feet touch the source's ground (softened over ``CONTACT_SMOOTH_S``). None when no foot bone is mapped."""
        bm, tgt = self.bm, self.tgt
        foot_src = [s for s in FOOT_BONES if s in bm]
        if not foot_src:
            return None
        M, tgt_mw = tgt.rest, self.tgt_mw
        F = P.shape[0]
        shift = self._root_shift(P, root_world)
        cols = [tgt.index[bm[s]] for s in foot_src]
        pts_w = (P[:, cols][:, :, :3, 3] + shift[:, None]) @ tgt_mw[:3, :3].T + tgt_mw[:3, 3]    # (F, K, 3) joints
        rest_w = M[cols, :3, 3] @ tgt_mw[:3, :3].T + tgt_mw[:3, 3]
        low = (pts_w[:, :, 2] - rest_w[None, :, 2]).min(axis=1)
        dz = np.maximum(0.0, -low)
        if snap_contacts:
            idx = [self.source_bones.index(s) for s in foot_src]
            s_rest = np.array([self.src_rest[s][2, 3] for s in foot_src])
            s_low = (S[:, idx][:, :, 2, 3] - s_rest[None]).min(axis=1)
            contact = (s_low < CONTACT_HEIGHT).astype(np.float64)
            # the contact weight ramps over the frames where a contact starts or ends (a moving average of the
            # mask): inside contacts the lowest offset is the source's (up or down), never below 0
            half = max(1, int(round(CONTACT_SMOOTH_S * fps)))
            w = contact
            if F > 2 * half:
                w = np.convolve(np.pad(contact, half, mode="edge"), np.ones(2 * half + 1) / (2 * half + 1), "valid")
            dz = w * (np.maximum(s_low, 0.0) - low) + (1.0 - w) * dz
        return dz

    def forward(self, rotations):
        """Armature-space pose matrices (F, nb, 4, 4) of the target for local rotations {bone: (F, 3, 3)} (unkeyed
        bones at rest, the root at its rest place), composed the way ``pose`` and Blender compose them."""
        tgt, M = self.tgt, self.tgt.rest
        F = len(next(iter(rotations.values())))
        P = np.broadcast_to(M, (F, len(tgt.names), 4, 4)).copy()
        for j, name in enumerate(tgt.names):
            p = tgt.parents[j]
            X = np.broadcast_to(M[j] if p < 0 else P[:, p] @ (np.linalg.inv(M[p]) @ M[j])[None], (F, 4, 4)).copy()
            if p >= 0 and not tgt.inherit_rotation[j]:
                X[:, :3, :3] = M[j, :3, :3]
            if name in rotations:
                X[:, :3, :3] = X[:, :3, :3] @ rotations[name]
            P[:, j] = X
        return P

    def toes_above_floor(self, rotations, root_world):
        """The toe bones (mapped from SMPL's toes) turned up about their joints on frames where their tails (the
        tips of the toes) would be below their rest height, just enough to put them at it: a foot rolling over its
        toe joint keeps its toes on the floor (SMPL's toe rotation says nothing about the toes' bend)."""
        toes = [self.bm[t] for t in TOE_ALIGN if t in self.bm]
        if not toes:
            return rotations
        tgt, mw = self.tgt, self.tgt_mw
        P = self.forward(rotations)
        shift = self._root_shift(P, root_world)
        R = orthonormal(mw[:3, :3])
        out = dict(rotations)
        for name in toes:
            j = tgt.index[name]
            tip = np.array([0.0, tgt.lengths[j], 0.0, 1.0])
            W = orthonormal(P[:, j, :3, :3])
            head_w = (P[:, j, :3, 3] + shift) @ mw[:3, :3].T + mw[:3, 3]
            v = (P[:, j, :3, :3] @ tip[:3]) @ mw[:3, :3].T                                   # world head -> tail
            floor = float((mw @ (tgt.rest[j] @ tip))[2])
            below = head_w[:, 2] + v[:, 2] < floor
            if not below.any() or name not in rotations:
                continue
            length = np.linalg.norm(v, axis=-1)
            z = np.clip(floor - head_w[:, 2], -length, length)
            flat = np.linalg.norm(v[:, :2], axis=-1)
            heading = np.where(flat[:, None] > 1e-9, v[:, :2] / np.maximum(flat, 1e-12)[:, None], 0.0)
            v_new = np.concatenate([heading * np.sqrt(length ** 2 - z ** 2)[:, None], z[:, None]], axis=1)
            v_new = np.where(below[:, None], v_new, v)
            dR = R.T[None] @ foot_lock.rotation_between(v, v_new) @ R[None]              # armature space
            out[name] = rotations[name] @ np.swapaxes(W, -1, -2) @ dR @ W
        return out

    def root_location(self, P, root_world):
        """The root bone's location channel (F, 3) that puts its head at ``root_world``."""
        tgt = self.tgt
        M = tgt.rest
        F = P.shape[0]
        shift = self._root_shift(P, root_world)
        jr = tgt.index[self.tgt_root]
        pr = tgt.parents[jr]
        rel_r = M[jr] if pr < 0 else np.linalg.inv(M[pr]) @ M[jr]
        Xr = np.broadcast_to(rel_r[None] if pr < 0 else P[:, pr] @ rel_r[None], (F, 4, 4))
        h_target = P[:, jr, :3, 3] + shift
        return np.einsum("fij,fj->fi", np.linalg.inv(Xr[:, :3, :3]), h_target - Xr[:, :3, 3])

    def legs(self):
        """``foot_lock.Leg`` per side whose thigh, shin, foot and toe are all mapped (source names, target legs)."""
        return [(chain, foot_lock.Leg(*(self.bm[b] for b in chain))) for chain in foot_lock.SMPL_LEGS
                if all(b in self.bm for b in chain)]

    def lock_feet(self, P, S, root_world, rotations, *, fps: float):
        """``(rotations, drop)``: the legs' thigh, shin and foot turned so that the target's ankles and toes stay
        put where the source's do (contacts from the source's ankle/toe heights and speeds), and how far (F,)
        (armature units) the root must go down for pinned feet out of reach (``core/foot_lock.py``)."""
        legs = self.legs()
        if not legs:
            return rotations, np.zeros(P.shape[0])
        P = np.array(P)
        P[:, :, :3, 3] += self._root_shift(P, root_world)[:, None]
        # the source's contacts: ankle and toe near their rest height above the source's floor, and slow
        src_joints = [s for chain, _ in legs for s in chain[2:]]                 # ankle, toe per leg
        pos = np.stack([S[:, self.source_bones.index(s), :3, 3] for s in src_joints], 1)
        rest_z = np.array([self.src_rest[s][2, 3] for s in src_joints])
        src_floor = float(rest_z.min())
        contacts = foot_lock.detect_contacts(pos, rest_z - src_floor, src_floor, fps=fps)
        out, drop, _, _ = foot_lock.lock_legs(P, rotations, self.tgt.index, [leg for _, leg in legs],
                                              contacts[:, 0::2], contacts[:, 1::2], fps=fps)
        return out, drop
