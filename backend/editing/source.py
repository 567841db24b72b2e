"""The motion an edit starts from: joints (T, 22, 3) and their 263-d features (T, 263), both kept bit for bit.

Where they come from: a motion file written by this project (``.npz``: its ``features`` are used when they
describe its ``joints``), a HumanML3D joints ``.npy`` ((T, 22, 3) or (T, 66)), or joints in memory. Features
are otherwise computed from the joints (``joints_to_features`` of the joints plus one frame extrapolated after
the last, so that every frame has its own row). Anything that is not the 22-joint HumanML3D skeleton in metres, y-up, is refused with one
:class:`EditError` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.motion.features import features_to_joints, joints_to_features
from backend.motion.skeleton import FEATURE_DIM, NUM_JOINTS

__all__ = ["EditError", "Source", "check_skeleton", "source_from_joints", "load_source", "MIN_SOURCE_FRAMES"]

MIN_SOURCE_FRAMES = 8
_CONSISTENT_M = 0.005  # features that rebuild the joints within 5 mm (after placing frame 0) are used as they are


class EditError(ValueError):
    """Bad edit input (source, frames, part, lengths): the message is for people, one line."""


@dataclass
class Source:
    joints: np.ndarray          # (T, 22, 3) float32, metres, y-up, 20 fps
    features: np.ndarray        # (T, 263) float32, de-normalised HumanML3D features
    path: str | None = None
    prompt: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.joints.shape[0])


def check_skeleton(joints, what: str = "source", upright: bool = True) -> np.ndarray:
    """(T, 22, 3) joints of the HumanML3D skeleton in metres, y-up -> float32; EditError otherwise.
    ``upright=False`` (the motion library) also takes a body that lies or crawls the whole clip, which the y-up
    checks (head height, joint order) cannot tell from a file with another up axis: then only the size is
    checked, from the legs' bone lengths (metres, not centimetres)."""
    j = np.asarray(joints)
    if j.ndim != 3 or j.shape[2] != 3:
        raise EditError(f"the {what} must be joints of shape (T, {NUM_JOINTS}, 3); got {j.shape}")
    if j.shape[1] != NUM_JOINTS:
        raise EditError(f"the {what} has {j.shape[1]} joints; editing needs the {NUM_JOINTS}-joint HumanML3D "
                        "skeleton (retarget it first)")
    if j.shape[0] < MIN_SOURCE_FRAMES:
        raise EditError(f"the {what} has {j.shape[0]} frames; at least {MIN_SOURCE_FRAMES} are needed")
    if not np.issubdtype(j.dtype, np.number) or not np.isfinite(j).all():
        raise EditError(f"the {what} holds NaN, infinite or non-numeric joint values")
    j = j.astype(np.float32)
    if not upright:
        legs = np.linalg.norm(j[:, [4, 5]] - j[:, [1, 2]], axis=-1) + np.linalg.norm(j[:, [7, 8]] - j[:, [4, 5]],
                                                                                         axis=-1)
        leg = float(np.median(legs))
        if not 0.3 <= leg <= 1.4:
            raise EditError(f"the {what} is not a body in metres (legs {leg:.2f} long; expected 0.3-1.4 m)")
        return j
    y = j[..., 1].astype(np.float64)
    height = float(np.median(y[:, 15] - y.min(axis=1)))  # head above the lowest joint
    if not 0.5 <= height <= 2.6:
        raise EditError(f"the {what} is not a body in metres with y up (head {height:.2f} above the lowest joint; "
                        "expected 0.5-2.6 m)")
    # HumanML3D joint order: ankles below knees below hips below spine3 below the head, in most frames
    order = [(7, 4), (8, 5), (4, 1), (5, 2), (1, 9), (2, 9), (9, 15)]
    share = np.mean([np.mean(y[:, lo] < y[:, hi]) for lo, hi in order])
    if share < 0.7:
        raise EditError(f"the {what}'s joints are not in the HumanML3D order (ankle < knee < hip < spine < head "
                        f"holds in {share:.0%} of frames)")
    return j


def _yaw_fit(p: np.ndarray, q: np.ndarray) -> float:
    """Angle about +Y that best turns points p (n, 3) onto q (n, 3) in the xz plane (least squares)."""
    s = float(np.sum(q[:, 0] * p[:, 2] - q[:, 2] * p[:, 0]))
    c = float(np.sum(q[:, 0] * p[:, 0] + q[:, 2] * p[:, 2]))
    return float(np.arctan2(s, c))


def _rebuilds(features: np.ndarray, joints: np.ndarray) -> bool:
    """True when features_to_joints(features), placed by frame 0, gives the joints within 5 mm."""
    g = features_to_joints(features).astype(np.float64)
    j = joints.astype(np.float64)
    ang = _yaw_fit(g[0] - g[0, 0], j[0] - j[0, 0])
    c, s = np.cos(ang), np.sin(ang)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    placed = g @ rot.T
    placed += (j[0, 0] - placed[0, 0])
    return bool(np.abs(placed - j).max() < _CONSISTENT_M)


def source_from_joints(joints, features=None, path: str | None = None, prompt: str = "",
                       what: str = "source", upright: bool = True) -> Source:
    """Joints (+ optional features) -> Source. Features of T rows that rebuild the joints are kept as given;
    otherwise they are computed from the joints. ``upright``: see ``check_skeleton``."""
    j = check_skeleton(joints, what, upright)
    f = None
    if features is not None:
        f = np.asarray(features, dtype=np.float32)
        if f.shape != (len(j), FEATURE_DIM) or not np.isfinite(f).all() or not _rebuilds(f, j):
            f = None
    if f is None:
        # one extrapolated frame after the last, so the last frame gets its own row (T rows for T frames)
        ext = np.concatenate([j, 2 * j[-1:] - j[-2:-1]], 0)
        f = joints_to_features(ext).astype(np.float32)
    return Source(joints=j, features=np.ascontiguousarray(f), path=path, prompt=prompt)


def load_source(path, what: str = "source") -> Source:
    """A motion ``.npz`` (this project's format) or a joints ``.npy`` -> Source; EditError when unusable."""
    from backend.motion.motion_file import MotionFileError, load_joints_npy, load_motion

    p = Path(path).expanduser()
    if not p.is_file():
        raise EditError(f"{what} file not found: {p}")
    try:
        if p.suffix.lower() == ".npy":
            return source_from_joints(load_joints_npy(p), path=str(p.resolve()), what=what)
        if p.suffix.lower() != ".npz":
            raise EditError(f"the {what} must be a motion .npz or a joints .npy file, not {p.name}")
        m = load_motion(p)
    except MotionFileError as exc:
        raise EditError(str(exc)) from None
    fps = float(m.get("fps", 20))
    if abs(fps - 20) > 1e-6:
        raise EditError(f"the {what} is at {fps:g} fps; editing works at 20 fps (resample it first)")
    return source_from_joints(m["joints"], m.get("features"), path=str(p.resolve()), prompt=m.get("prompt", ""),
                              what=what)
