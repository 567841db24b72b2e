"""Root motion for game engines and in-place loops (numpy only; the Blender side is ``blender/root_motion.py``).

Works on the armature-space pose matrices (4x4, Blender z-up, the floor at z = 0 of the armature) of the rig's
*hips* bone (the topmost bone that carries the travel: ``pelvis`` on the SMPL armature, ``mixamorig:Hips``,
``DEF-spine`` ...), frame by frame. Everything below the hips is local to it, so changing the hips' transform
moves the whole body rigidly and leaves the pose untouched.

* **In place** (``in_place``): the hips' horizontal travel (x, y) since the first frame is removed; height and
  every rotation (turning included) are kept. Every joint keeps its offset from the hips' ground projection.
* **Extract root motion** (``extract_root``): a ground-projected root bone (at the floor, under the hips) carries
  the travel (the hips' x, y) and the facing (the hips' turn about the vertical axis since rest, their "twist"
  about Z), optionally smoothed; the hips get the pose relative to it, so every joint stays where it was in
  the world (exactly, up to float rounding). Engines that use root motion then move the capsule by the root.

Rotations are 3x3 matrices on column vectors; a pose bone's armature-space matrix is
``P = P_parent @ M_parent^-1 @ M @ L`` (M: rest matrix ``bone.matrix_local``, L: the keyed local transform).
"""

from __future__ import annotations

import numpy as np

from . import smpl_rig

#: Name of the root bone added under the hips when a rig has none.
ROOT_BONE_NAME = "root"
#: Modes of the toggle (the copy of the action remembers which one made it).
IN_PLACE, EXTRACT = "IN_PLACE", "EXTRACT"
MODES = (IN_PLACE, EXTRACT)
#: Default smoothing (seconds, Gaussian sigma) of the extracted root's path and facing.
DEFAULT_SMOOTH_S = 0.1


class RootMotionError(ValueError):
    """An action or rig the root-motion tools cannot work on (the message says why)."""


def gaussian_smooth(x, sigma_frames: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 (ends extended by odd reflection), numpy only; ``sigma_frames`` <= 0 returns a copy."""
    x = np.array(x, dtype=np.float64)
    if sigma_frames <= 0 or len(x) < 3:
        return x
    r = int(np.ceil(3.0 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_frames) ** 2)
    k /= k.sum()
    if len(x) > r:   # odd reflection at the ends: a steady drift (walking, turning) is not pulled back there
        pad = np.concatenate([2 * x[:1] - x[r:0:-1], x, 2 * x[-1:] - x[-2:-r - 2:-1]], 0)
    else:
        pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)], 0)
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, c], k, mode="valid") for c in range(flat.shape[1])], -1)
    return out.reshape(x.shape)


def yaw_about_z(rotations) -> np.ndarray:
    """(F,) unwrapped angle (radians) of the twist about +Z of each rotation (F, 3, 3): the turn of a bone about
    the vertical, whatever it leans (swing-twist decomposition)."""
    q = smpl_rig.matrix_to_quaternion(np.asarray(rotations, dtype=np.float64))
    yaw = 2.0 * np.arctan2(q[:, 3], q[:, 0])
    return np.unwrap(np.arctan2(np.sin(yaw), np.cos(yaw)))       # first angle in (-pi, pi]


def rot_z(angles) -> np.ndarray:
    """(F, 3, 3) rotations about +Z."""
    a = np.asarray(angles, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, -s, s, c, 1.0
    return out


def horizontal_travel(hips_pose) -> np.ndarray:
    """(F, 2) the hips' horizontal displacement since the first frame."""
    h = np.asarray(hips_pose, dtype=np.float64)[:, :2, 3]
    return h - h[:1]


def in_place(hips_pose) -> np.ndarray:
    """The hips' pose matrices (F, 4, 4) with the horizontal travel since frame 0 removed (height, rotations
    and the first frame's position kept)."""
    out = np.array(hips_pose, dtype=np.float64)
    out[:, :2, 3] -= horizontal_travel(out)
    return out


def root_track(hips_pose, hips_rest, root_rest, *, fps: float, smooth_s: float = DEFAULT_SMOOTH_S) -> np.ndarray:
    """The root bone's armature-space pose matrices (F, 4, 4): its head at the hips' ground projection (the
    hips' x, y at the root's rest height), turned about Z by the hips' facing change since rest; both smoothed
    with a Gaussian of ``smooth_s`` seconds (0: none)."""
    P = np.asarray(hips_pose, dtype=np.float64)
    Mh = np.asarray(hips_rest, dtype=np.float64)
    Mr = np.asarray(root_rest, dtype=np.float64)
    if P.ndim != 3 or P.shape[1:] != (4, 4) or len(P) == 0:
        raise RootMotionError(f"hips pose must be (F, 4, 4) with F >= 1, got {P.shape}")
    if not (fps > 0):
        raise RootMotionError(f"fps must be positive, got {fps}")
    sigma = max(0.0, float(smooth_s)) * float(fps)
    yaw = gaussian_smooth(yaw_about_z(P[:, :3, :3] @ Mh[:3, :3].T), sigma)
    xy = gaussian_smooth(P[:, :2, 3], sigma)
    out = np.broadcast_to(np.eye(4), P.shape).copy()
    out[:, :3, :3] = rot_z(yaw) @ Mr[:3, :3]
    out[:, :2, 3] = xy
    out[:, 2, 3] = Mr[2, 3]
    return out


def local_transforms(pose, rest, parent_pose=None, parent_rest=None) -> np.ndarray:
    """Keyed local transforms L (F, 4, 4) that give a bone the armature-space ``pose`` (F, 4, 4):
    ``L = (P_parent @ M_parent^-1 @ M)^-1 @ P`` (``M`` alone for a bone without a parent)."""
    P = np.asarray(pose, dtype=np.float64)
    M = np.asarray(rest, dtype=np.float64)
    if parent_pose is None:
        X = np.broadcast_to(M, P.shape)
    else:
        X = np.asarray(parent_pose, dtype=np.float64) @ (np.linalg.inv(np.asarray(parent_rest, np.float64)) @ M)
    return np.linalg.inv(X) @ P


def extract_root(hips_pose, hips_rest, root_rest, *, fps: float, smooth_s: float = DEFAULT_SMOOTH_S):
    """Split the hips' motion into a root bone (parent of the hips) and the hips relative to it.

    Returns ``(root_local, hips_local)``: the keyed local transforms (F, 4, 4) of the root bone (no parent) and
    of the hips under it, such that the hips' armature-space pose is ``hips_pose`` exactly."""
    root_pose = root_track(hips_pose, hips_rest, root_rest, fps=fps, smooth_s=smooth_s)
    root_local = local_transforms(root_pose, root_rest)
    hips_local = local_transforms(hips_pose, hips_rest, root_pose, root_rest)
    return root_local, hips_local


def split_local(L):
    """(location (F, 3), rotation (F, 3, 3)) of rigid local transforms (F, 4, 4)."""
    L = np.asarray(L, dtype=np.float64)
    return L[:, :3, 3].copy(), L[:, :3, :3].copy()
