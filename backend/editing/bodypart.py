"""Body-part edits: regenerate the tokens that drive a part, then composite per joint so the rest stays exact.

The 2D token columns that drive a part come from the measured table (``backend.editing.token_map``); they are
regenerated over the edited time range together with the 1D tokens there (the 1D stream decodes the whole body;
kept, it pulls the part back towards the source). The decoded motion is stitched in time as any hole
(``backend.editing.stitch``), and then composited joint by joint, down the kinematic tree, over the changed
frames:

- a joint outside the part whose ancestors are all outside it is the source's joint, bit for bit;
- a joint of the part takes the new motion's bone direction, turned from the new motion's body frame into the
  source's (the torso for the arms, the pelvis for the legs and the upper body), with the source's bone length;
- the shared chain where the part meets the rest (the collars for the arms, the hips for the legs, spine1 for
  the upper body) takes half of each direction;
- ``lower`` also takes the new root trajectory; the upper body then keeps its pose relative to the pelvis and
  rides along (so, unlike the other parts, its world positions follow the new hips).

Features of the changed frames are then rebuilt from the composited joints with the facing of the body whose
root is used, so the motion file's features and joints describe the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.features import foot_contacts, joints_to_features
from backend.motion.skeleton import PARENTS

from .limits import PART_NAMES
from .source import EditError
from .stitch import Stitched, rot_y, world_yaw

__all__ = ["PARTS", "Part", "check_part", "part_blocks", "composite"]


@dataclass(frozen=True)
class Part:
    weights: dict           # joint index -> share of the new motion (1 = the part, 0.5 = the shared chain)
    frame: str              # body frame that turns new directions into the source's: torso | pelvis | yaw
    new_root: bool = False  # the root trajectory comes from the new motion (lower body)

    @property
    def joints(self) -> list[int]:
        return sorted(j for j, w in self.weights.items() if w > 0)


_ARM = {16: 1.0, 17: 1.0, 18: 1.0, 19: 1.0, 20: 1.0, 21: 1.0}
_LEG = {4: 1.0, 5: 1.0, 7: 1.0, 8: 1.0, 10: 1.0, 11: 1.0}
PARTS = {
    "arms": Part({13: 0.5, 14: 0.5, **_ARM}, "torso"),
    "legs": Part({1: 0.5, 2: 0.5, **_LEG}, "pelvis"),
    "upper": Part({3: 0.5, 6: 1.0, 9: 1.0, 12: 1.0, 15: 1.0, 13: 1.0, 14: 1.0, **_ARM}, "pelvis"),
    "lower": Part({0: 1.0, 1: 1.0, 2: 1.0, 3: 0.5, **_LEG}, "yaw", new_root=True),
}


assert tuple(PARTS) == PART_NAMES


def check_part(part: str) -> str:
    if part not in PARTS:
        raise EditError(f"unknown body part {part!r}; use one of {', '.join(PARTS)}")
    return part


def part_blocks(pipe, part: str) -> list[int]:
    """The 2D token columns regenerated for ``part`` on ``pipe``'s model."""
    from .token_map import blocks_for, table_for

    table = table_for(pipe)
    named = (table.get("parts") or {}).get(part)
    return list(named) if named else blocks_for(table, PARTS[check_part(part)].joints)


def _frames(j: np.ndarray, kind: str) -> np.ndarray:
    """(T, 22, 3) -> (T, 3, 3) orthonormal body frames (columns: across, up, forward)."""
    across = j[:, 1] - j[:, 2]
    if kind == "torso":
        up = j[:, 12] - j[:, 3]
    elif kind == "pelvis":
        up = j[:, 3] - j[:, 0]
    else:
        up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), across.shape)
    up = up / np.linalg.norm(up, axis=-1, keepdims=True).clip(1e-9)
    x = across - (across * up).sum(-1, keepdims=True) * up
    x = x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-9)
    z = np.cross(x, up)
    return np.stack([x, up, z], -1)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


def composite_joints(src: np.ndarray, new: np.ndarray, part: Part) -> np.ndarray:
    """Per-joint composite of ``new`` onto ``src`` (both (T, 22, 3)); see the module doc."""
    s = src.astype(np.float64)
    g = new.astype(np.float64)
    fs, fg = _frames(s, part.frame), _frames(g, part.frame)
    if part.new_root:  # source directions turn into the new body's frame
        m = fg @ np.transpose(fs, (0, 2, 1))
    else:  # new directions turn into the source's body frame
        m = fs @ np.transpose(fg, (0, 2, 1))
    out = np.empty_like(s)
    exact = np.zeros(22, bool)
    out[:, 0] = g[:, 0] if part.new_root else s[:, 0]
    exact[0] = not part.new_root
    for j in range(1, 22):
        p = PARENTS[j]
        w = float(part.weights.get(j, 0.0))
        if w == 0.0 and exact[p]:
            out[:, j] = s[:, j]
            exact[j] = True
            continue
        ds = s[:, j] - s[:, p]
        dg = g[:, j] - g[:, p]
        length = np.linalg.norm(ds, axis=-1, keepdims=True)
        if part.new_root:
            ds = np.einsum("tab,tb->ta", m, ds)
        else:
            dg = np.einsum("tab,tb->ta", m, dg)
        d = _unit((1.0 - w) * _unit(ds) + w * _unit(dg)) if w > 0 else _unit(ds)
        out[:, j] = out[:, p] + length * d
    out[:, exact] = s[:, exact]
    return out.astype(np.float32)


def _features_from(joints: np.ndarray, yaw: np.ndarray, y_off: float, around: np.ndarray, lo: int, hi: int,
                   base: np.ndarray) -> np.ndarray:
    """Feature rows [lo, hi) for world ``joints`` (N, 22, 3) given each frame's facing ``yaw`` (N,): the rows
    integrate back to these joints. ``around``: joints_to_features of a window around them (for the 6D
    rotations); ``base``: the rows to start from (kept where a next frame is missing)."""
    out = base[lo:hi].astype(np.float64).copy()
    n = len(joints)
    for t in range(lo, hi):
        r = joints[t].astype(np.float64)
        rel = r - np.array([r[0, 0], 0.0, r[0, 2]])
        body = rel @ rot_y(-yaw[t]).T
        body[:, 1] -= y_off
        i = t - lo
        out[i, 3] = body[0, 1]
        out[i, 4:67] = body[1:].reshape(-1)
        out[i, 67:193] = around[i, 67:193]
        if t + 1 < n:
            nxt = joints[t + 1].astype(np.float64)
            d = float(yaw[t + 1] - yaw[t])
            d = (d + np.pi) % (2 * np.pi) - np.pi
            out[i, 0] = -0.5 * d
            step = rot_y(-yaw[t + 1]) @ (nxt[0] - r[0])
            out[i, 1], out[i, 2] = step[0], step[2]
            out[i, 193:259] = ((nxt - r) @ rot_y(-yaw[t]).T).reshape(-1)
            out[i, 259:263] = foot_contacts(np.stack([r, nxt]))[0]
    return out.astype(np.float32)


def composite(canvas, stitched: Stitched, part: str) -> Stitched:
    """Body-part composite of a time-stitched edit (see the module doc). ``canvas``: the source before the edit."""
    p = PARTS[check_part(part)]
    lo, hi = stitched.changed
    src_j, src_f = canvas.joints, canvas.features
    joints = src_j.copy()
    joints[lo:hi] = composite_joints(src_j[lo:hi], stitched.joints[lo:hi], p)
    # the facing of the body whose root is used, per frame (one beyond the range for the last velocity)
    body_f, body_j = (stitched.features, stitched.joints) if p.new_root else (src_f, src_j)
    top = min(hi + 1, len(joints))
    yaw = np.zeros(len(joints))
    yaw[lo:top] = np.unwrap([world_yaw(body_f[t], body_j[t]) for t in range(lo, top)])
    y_off = float(src_j[lo, 0, 1]) - float(src_f[lo, 3])
    ctx = 20
    a, b = max(0, lo - ctx), min(len(joints), hi + ctx + 1)
    win = np.concatenate([joints[a:b], 2 * joints[b - 1:b] - joints[b - 2:b - 1]])  # + one extrapolated frame
    around = joints_to_features(win)[lo - a:hi - a]
    feats = src_f.copy()
    feats[lo:hi] = _features_from(joints, yaw, y_off, around, lo, hi, stitched.features)
    return Stitched(features=feats, joints=joints, changed=(lo, hi))
